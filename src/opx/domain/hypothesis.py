"""The single agent output contract: one hypothesis per agent, never authoritative."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from opx.domain.errors import ErrorInfo

DISCLAIMER = "HYPOTHESIS_ONLY_NOT_AUTHORITATIVE"


class HypothesisStatus(StrEnum):
    SUCCESS = "SUCCESS"
    PARTIAL = "PARTIAL"
    TIMEOUT = "TIMEOUT"
    FAILURE = "FAILURE"
    BLOCKED = "BLOCKED"
    SKIPPED = "SKIPPED"

    @property
    def produced(self) -> bool:
        """True when the agent produced an opinion that consensus may weigh."""
        return self in (HypothesisStatus.SUCCESS, HypothesisStatus.PARTIAL)


class ConfidenceBasis(StrEnum):
    DATA = "data"
    PATTERN = "pattern"
    ASSUMPTION = "assumption"


class RecommendationType(StrEnum):
    INVESTIGATION = "INVESTIGATION"
    ROLLBACK = "ROLLBACK"
    MITIGATION = "MITIGATION"


class Risk(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


class RootCause(BaseModel):
    """Root-cause identity: ``service`` is the node exactly as the telemetry names it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    service: str = Field(min_length=1)
    component: str | None = None
    category: str = "UNKNOWN"


class AlternativeCause(BaseModel):
    """A lower-ranked root cause the agent also considers possible."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    service: str = Field(min_length=1)
    component: str | None = None
    category: str = "UNKNOWN"
    confidence: float = Field(ge=0.0, le=1.0)


class Evidence(BaseModel):
    """One piece of evidence, naming where it came from so a human can check it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tool: str
    query: str = ""
    record_ids: list[str] = Field(default_factory=list)
    summary: str


class Recommendation(BaseModel):
    """An action a human may consider; advice only, never an execution step."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: RecommendationType
    description: str = Field(max_length=600)
    risk: Risk = Risk.LOW


class AttemptRecord(BaseModel):
    """One try of an agent: its outcome and what it cost."""

    model_config = ConfigDict(frozen=True)

    attempt: int = Field(ge=1)
    status: HypothesisStatus
    error: ErrorInfo | None = None
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    model: str | None = None


class AgentCost(BaseModel):
    """Tokens an agent used across all its attempts, by model."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    model: str | None = None


class Hypothesis(BaseModel):
    """What one agent believes about the incident, with its evidence and its doubts."""

    model_config = ConfigDict(extra="ignore")

    agent_id: str
    agent_version: str = "unknown"
    status: HypothesisStatus = HypothesisStatus.SUCCESS
    root_cause: RootCause | None = None
    description: str = ""
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    confidence_basis: list[ConfidenceBasis] = Field(default_factory=list)
    alternatives: list[AlternativeCause] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    contradicting_evidence: list[Evidence] = Field(default_factory=list)
    recommendations: list[Recommendation] = Field(default_factory=list)
    findings: dict[str, Any] = Field(default_factory=dict)
    disclaimer: str = DISCLAIMER
    # Filled in by OPX itself, so a model's output validates without them.
    attempts: list[AttemptRecord] = Field(default_factory=list)
    cost: AgentCost = Field(default_factory=AgentCost)
    error: ErrorInfo | None = None

    @classmethod
    def failed(
        cls, agent_id: str, status: HypothesisStatus, error: ErrorInfo, version: str = "unknown"
    ) -> Hypothesis:
        """A hypothesis that records why the agent has no opinion."""
        return cls(
            agent_id=agent_id,
            agent_version=version,
            status=status,
            description=error.message,
            error=error,
        )
