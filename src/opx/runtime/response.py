"""The handler's structured response (pure): what happened, in a few fields that an invoker,
a test or an operator reads without the full result."""

from __future__ import annotations

from typing import Any

from opx.delivery.message import cost_brief, summary_of
from opx.domain.errors import ErrorInfo
from opx.domain.result import ExecutionResult, ExecutionStatus, Reason

RESPONSE_KEYS = (
    "status",
    "reason",
    "incident_id",
    "execution_id",
    "recommendation",
    "cost",
    "summary",
    "error",
)


def rejected() -> ExecutionResult:
    """The result of an event that was not analysed; it is never stored."""
    return ExecutionResult(
        incident_id=None,
        execution_id=None,
        status=ExecutionStatus.REJECTED,
        reason=Reason.INVALID_EVENT,
    )


def killed(incident_id: str, execution_id: str) -> ExecutionResult:
    """The result when the kill switch stops every analysis; it is never stored."""
    return ExecutionResult(
        incident_id=incident_id,
        execution_id=execution_id,
        status=ExecutionStatus.SKIPPED,
        reason=Reason.KILL_SWITCH,
    )


def response_of(result: ExecutionResult, error: ErrorInfo | None) -> dict[str, Any]:
    summary = summary_of(result)
    if result.status is ExecutionStatus.REJECTED and error is not None:
        summary = f"The event was rejected: {error.message}"
    return {
        "status": result.status.value,
        "reason": None if result.reason is None else result.reason.value,
        "incident_id": result.incident_id,
        "execution_id": result.execution_id,
        "recommendation": None
        if result.recommendation is None
        else result.recommendation.model_dump(mode="json"),
        "cost": cost_brief(result),
        "summary": summary,
        "error": None if error is None else {"code": error.code.value, "message": error.message},
    }
