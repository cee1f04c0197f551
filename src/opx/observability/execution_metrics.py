"""The metric lines one invocation reports about its execution (pure: no I/O).

``Execution/Count`` (with its Status) and ``Execution/DurationMs`` are reported for every outcome,
a rejected event included. What the agents did (``Agent/*``, ``Execution/Retries``,
``Cost/TotalUSD``) is reported only by the invocation that ran them: a redelivery answered from
the stored result ran nothing, and counting its agents again would double every figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opx.domain.hypothesis import Hypothesis, HypothesisStatus
from opx.domain.result import ExecutionResult
from opx.observability.metrics import (
    AGENT_DURATION,
    AGENT_FAILURE_RATE,
    AGENT_ID,
    COST_TOTAL,
    EXECUTION_COUNT,
    EXECUTION_DURATION,
    EXECUTION_RETRIES,
    STATUS,
    Metric,
)


@dataclass(frozen=True)
class MetricLine:
    """Metrics that share one dimension set, published together."""

    values: dict[Metric, float]
    dimensions: dict[str, str] = field(default_factory=dict)


def execution_lines(result: ExecutionResult, duration_ms: float, *, ran: bool) -> list[MetricLine]:
    """The lines for one invocation's outcome; ``ran`` says whether it ran agents."""
    lines = [
        MetricLine({EXECUTION_COUNT: 1}, {STATUS: result.status.value}),
    ]
    plain: dict[Metric, float] = {EXECUTION_DURATION: round(max(duration_ms, 0.0), 3)}
    if ran and result.hypotheses:
        plain[EXECUTION_RETRIES] = retries(result)
        if result.cost is not None:
            plain[COST_TOTAL] = result.cost.total_usd
        lines.extend(agent_lines(result))
    lines.insert(1, MetricLine(plain))
    return lines


def retries(result: ExecutionResult) -> int:
    """Agent attempts beyond each agent's first, over the whole execution."""
    return sum(max(len(h.attempts) - 1, 0) for h in result.hypotheses.values())


def agent_lines(result: ExecutionResult) -> list[MetricLine]:
    """One line per agent that ran: its wall time and whether it failed (100) or not (0).
    An agent the kill switch skipped did not run, so it reports nothing."""
    seconds = result.timings.get("agents", {})
    lines = []
    for agent_id, hypothesis in sorted(result.hypotheses.items()):
        if hypothesis.status is HypothesisStatus.SKIPPED:
            continue
        values: dict[Metric, float] = {AGENT_FAILURE_RATE: failure_rate(hypothesis)}
        if agent_id in seconds:
            values[AGENT_DURATION] = round(float(seconds[agent_id]["seconds"]) * 1000, 3)
        lines.append(MetricLine(values, {AGENT_ID: agent_id}))
    return lines


def failure_rate(hypothesis: Hypothesis) -> float:
    return 0.0 if hypothesis.status.produced else 100.0
