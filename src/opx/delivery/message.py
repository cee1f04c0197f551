"""The AnalysisCompleted message: the EventBridge detail and the short human summary that SNS
carries too (pure: built from the stored result only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opx.domain.result import ExecutionResult, ExecutionStatus

SOURCE = "opx.intelligence"
DETAIL_TYPE = "AnalysisCompleted"
TOP_CANDIDATES = 3
MAX_SUMMARY = 1000
MAX_SUBJECT = 100  # SNS refuses longer subjects
# Statuses of a finished execution: each gets exactly one AnalysisCompleted per stored result.
DELIVERED_STATUSES = frozenset(
    {ExecutionStatus.COMPLETED, ExecutionStatus.NO_RECOMMENDATION, ExecutionStatus.FAILED}
)


@dataclass(frozen=True)
class Message:
    detail: dict[str, Any]
    subject: str
    summary: str


_NOT_ANALYSED = {
    ExecutionStatus.REJECTED: "The event was rejected; nothing was analysed.",
    ExecutionStatus.SKIPPED: "Not analysed.",
    ExecutionStatus.INCOMPLETE: "Stopped before the end; the next delivery resumes it.",
    ExecutionStatus.IN_PROGRESS: "Another worker is analysing this incident.",
}


def summary_of(result: ExecutionResult) -> str:
    """A few sentences an on-call engineer can act on, without opening the full result."""
    if result.status in _NOT_ANALYSED:
        why = f" ({result.reason.value})" if result.reason else ""
        return f"OPX {result.status.value}{why}: {_NOT_ANALYSED[result.status]}"
    head = f"OPX analysis of {result.incident_id}: {result.status.value}"
    if result.reason is not None:
        head += f" ({result.reason.value})"
    parts = [head + "."]
    rec = result.recommendation
    if rec is not None:
        where = rec.root_cause.service + (
            f"/{rec.root_cause.component}" if rec.root_cause.component else ""
        )
        parts.append(f"Likely root cause: {where} (confidence {rec.confidence:.2f}).")
        if rec.actions:
            step = rec.actions[0].description.strip()
            parts.append(f"First step: {step}" + ("" if step.endswith((".", "!", "?")) else "."))
    elif result.consensus is not None:
        parts.append(result.consensus.summary)
    else:
        parts.append("No recommendation: the analysis could not reach a consensus.")
    if result.cost is not None:
        parts.append(f"Cost ${result.cost.total_usd:.4f}.")
    parts.append("Advisory only: a human decides.")
    text = " ".join(parts)
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1] + "…"


def cost_brief(result: ExecutionResult) -> dict[str, Any] | None:
    """What a reader needs of the cost: total, budget, and whether the budget was exceeded."""
    cost = result.cost
    if cost is None:
        return None
    return {
        "total_usd": cost.total_usd,
        "budget_usd": cost.budget_usd,
        "budget_exceeded": cost.budget_exceeded,
    }


def detail_of(result: ExecutionResult, attempt: int) -> dict[str, Any]:
    consensus = result.consensus
    rec = result.recommendation
    root = rec.root_cause if rec is not None else None
    candidates = [] if consensus is None else consensus.candidates[:TOP_CANDIDATES]
    return {
        "status": result.status.value,
        "reason": None if result.reason is None else result.reason.value,
        "incident_id": result.incident_id,
        "execution_id": result.execution_id,
        "attempt": attempt,
        "root_cause": None if root is None else root.model_dump(mode="json"),
        "confidence": None if consensus is None else consensus.confidence,
        "top_candidates": [
            {
                "service": c.service,
                "component": c.component,
                "score": c.score,
                "supporting_agents": c.supporting_agents,
            }
            for c in candidates
        ],
        "cost": cost_brief(result),
        "summary": summary_of(result),
        "disclaimer": result.disclaimer,
    }


def message_of(result: ExecutionResult, attempt: int) -> Message:
    subject = f"OPX {result.status.value}: {result.incident_id}"
    return Message(
        detail=detail_of(result, attempt),
        subject=subject[:MAX_SUBJECT],
        summary=summary_of(result),
    )
