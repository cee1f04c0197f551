"""The answer of one execution: status, recommendation (or none), and how it was reached."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from opx.domain.consensus import ConsensusResult
from opx.domain.cost import CostReport
from opx.domain.hypothesis import (
    ConfidenceBasis,
    Hypothesis,
    HypothesisStatus,
    Recommendation,
    RootCause,
)

SCHEMA_VERSION = "1.0"


class ExecutionStatus(StrEnum):
    COMPLETED = "COMPLETED"
    NO_RECOMMENDATION = "NO_RECOMMENDATION"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    REJECTED = "REJECTED"
    INCOMPLETE = "INCOMPLETE"
    IN_PROGRESS = "IN_PROGRESS"


class Reason(StrEnum):
    ROOT_CAUSE_IDENTIFIED = "ROOT_CAUSE_IDENTIFIED"
    NO_CONFIDENT_ROOT_CAUSE = "NO_CONFIDENT_ROOT_CAUSE"
    ALL_CORE_AGENTS_FAILED = "ALL_CORE_AGENTS_FAILED"
    ALARM_NOT_FIRING = "ALARM_NOT_FIRING"
    KILL_SWITCH = "KILL_SWITCH"
    BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"
    INVALID_EVENT = "INVALID_EVENT"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    LEASE_HELD = "LEASE_HELD"
    DEADLINE = "DEADLINE"


def is_final(status: str, reason: str | None) -> bool:
    """A final result is stored and returned unchanged to later deliveries of the same event.

    A run in which every core agent failed is not final: a redelivery tries again."""
    if status == ExecutionStatus.COMPLETED:
        return True
    return status == ExecutionStatus.NO_RECOMMENDATION and reason != Reason.ALL_CORE_AGENTS_FAILED


class TraceEntry(BaseModel):
    """One step of the execution, in order: node, outcome and attempt; never a time."""

    model_config = ConfigDict(frozen=True)

    node: str
    status: str
    attempt: int = 1
    detail: str | None = None


class ActionableRecommendation(BaseModel):
    """What a human should look at first; advice only."""

    model_config = ConfigDict(frozen=True)

    root_cause: RootCause
    confidence: float
    confidence_basis: list[ConfidenceBasis]
    actions: list[Recommendation]
    summary: str


class Versions(BaseModel):
    model_config = ConfigDict(frozen=True)

    opx: str
    analysts: dict[str, str] = Field(default_factory=dict)
    prompts: dict[str, str] = Field(default_factory=dict)
    models: dict[str, str] = Field(default_factory=dict)
    pricing: str


class ExecutionResult(BaseModel):
    """Everything an on-call engineer (or an auditor) needs about one execution."""

    model_config = ConfigDict(frozen=True)

    schema_version: str = SCHEMA_VERSION
    incident_id: str | None
    execution_id: str | None
    status: ExecutionStatus
    reason: Reason | None = None
    recommendation: ActionableRecommendation | None = None
    consensus: ConsensusResult | None = None
    hypotheses: dict[str, Hypothesis] = Field(default_factory=dict)
    cost: CostReport | None = None
    execution_trace: list[TraceEntry] = Field(default_factory=list)
    errors: list[dict[str, Any]] = Field(default_factory=list)
    versions: Versions | None = None
    disclaimer: str = "Advisory only: hypotheses for a human to verify, never actions taken."
    # The only wall-clock field; excluded from every replay comparison.
    timings: dict[str, Any] = Field(default_factory=dict)

    @property
    def kill_switched(self) -> list[str]:
        """Agents the kill switch held back in this execution."""
        return sorted(
            agent
            for agent, h in self.hypotheses.items()
            if h.status is HypothesisStatus.SKIPPED
            and h.findings.get("reason") == Reason.KILL_SWITCH
        )

    @property
    def final(self) -> bool:
        """Final by :func:`is_final`, and with the whole panel heard: a result an agent's kill
        switch cut short is kept and shown, but a later delivery (switch off) runs again."""
        return is_final(self.status, self.reason) and not self.kill_switched
