"""The metric lines one invocation reports about its execution (pure: no I/O).

``Execution/Count`` (with its Status) and ``Execution/DurationMs`` are reported exactly once per
invocation, whatever its outcome: a rejected event included, and an invocation that raised
(Status ERROR). What the agents did (``Agent/*``, ``Execution/Retries``,
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
    ERROR_STATUS,
    EXECUTION_COUNT,
    EXECUTION_DURATION,
    EXECUTION_RETRIES,
    EXECUTION_STATUSES,
    STATUS,
    Metric,
)


@dataclass(frozen=True)
class MetricLine:
    """Metrics that share one dimension set, published together."""

    values: dict[Metric, float]
    dimensions: dict[str, str] = field(default_factory=dict)


def execution_lines(
    result: ExecutionResult | None,
    duration_ms: float,
    *,
    ran: bool,
    status: str | None = None,
) -> list[MetricLine]:
    """The lines for one invocation's outcome; ``ran`` says whether it ran agents. ``status``
    (one of :data:`EXECUTION_STATUSES`) overrides the result's: ERROR for an invocation that
    raised, which has no result or whose result was not delivered."""
    counted = status or (result.status.value if result is not None else ERROR_STATUS)
    if counted not in EXECUTION_STATUSES:
        raise ValueError(f"{counted!r} is not a status Execution/Count is published with")
    lines = [MetricLine({EXECUTION_COUNT: 1}, {STATUS: counted})]
    plain: dict[Metric, float] = {EXECUTION_DURATION: round(max(duration_ms, 0.0), 3)}
    if ran and result is not None and result.hypotheses:
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
