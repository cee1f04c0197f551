"""Every CloudWatch metric OPX emits: name, unit and dimension set. The code that emits a metric
and the infrastructure that charts it or alarms on it both take them from here, so they cannot
drift apart."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from opx.domain.result import ExecutionStatus

DEFAULT_NAMESPACE = "Phase6"
NAMESPACE_VARIABLE = "OPX_METRICS_NAMESPACE"
NAMESPACE = DEFAULT_NAMESPACE  # kept for callers that predate the configurable namespace

STATUS = "Status"
AGENT_ID = "AgentId"


@dataclass(frozen=True)
class Metric:
    """One metric. ``unit`` is a CloudWatch unit name; ``dimensions`` is the exact (and only)
    dimension set it is published with, empty for a metric without dimensions."""

    name: str
    unit: str
    description: str
    dimensions: tuple[str, ...] = ()


EXECUTION_COUNT = Metric(
    "Execution/Count", "Count", "executions that ended, one per outcome", (STATUS,)
)
EXECUTION_DURATION = Metric(
    "Execution/DurationMs", "Milliseconds", "wall time of one execution (one invocation)"
)
EXECUTION_RETRIES = Metric(
    "Execution/Retries", "Count", "agent attempts beyond the first, summed over one execution"
)
AGENT_DURATION = Metric(
    "Agent/DurationMs", "Milliseconds", "wall time of one agent, all attempts", (AGENT_ID,)
)
AGENT_FAILURE_RATE = Metric(
    "Agent/FailureRate",
    "Percent",
    "100 when the agent produced no opinion (failure, timeout, blocked), else 0",
    (AGENT_ID,),
)
COST_TOTAL = Metric("Cost/TotalUSD", "None", "model cost of one execution in US dollars")
REPLAY_COUNT = Metric(
    "Replay/Count", "Count", "`opx replay` runs that reached a verdict (identical or not)"
)

ALL_METRICS: tuple[Metric, ...] = (
    EXECUTION_COUNT,
    EXECUTION_DURATION,
    EXECUTION_RETRIES,
    AGENT_DURATION,
    AGENT_FAILURE_RATE,
    COST_TOTAL,
    REPLAY_COUNT,
)
BY_NAME: Mapping[str, Metric] = {m.name: m for m in ALL_METRICS}

# The Status of an invocation that raised (an infrastructure failure such as the store, SSM or
# publishing being down, or an unexpected error): its execution did not end with a result.
ERROR_STATUS = "ERROR"
# Every Status value Execution/Count is published with: each way an execution ends, and ERROR.
# Alarms and charts that sum Execution/Count over its statuses must use all of them.
EXECUTION_STATUSES: tuple[str, ...] = (*(s.value for s in ExecutionStatus), ERROR_STATUS)
# The statuses the failure rate counts as failed: a fail-closed result, and an invocation that
# raised (whose event Lambda retries, then dead-letters).
FAILURE_STATUSES: tuple[str, ...] = (ExecutionStatus.FAILED.value, ERROR_STATUS)


def namespace(env: Mapping[str, str]) -> str:
    """The namespace metrics go to: ``OPX_METRICS_NAMESPACE`` or ``Phase6``."""
    return env.get(NAMESPACE_VARIABLE) or DEFAULT_NAMESPACE
