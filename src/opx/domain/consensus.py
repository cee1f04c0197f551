"""The merged opinion of the agents: ranked candidates, agreement, conflicts and quality."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from opx.domain.hypothesis import RootCause


class Candidate(BaseModel):
    """A root cause some agents support, with its normalised support score (0..1)."""

    model_config = ConfigDict(frozen=True)

    service: str
    component: str | None = None
    category: str = "UNKNOWN"
    score: float = Field(ge=0.0, le=1.0)
    supporting_agents: list[str] = Field(default_factory=list)


class Conflict(BaseModel):
    """Two root causes with comparable support: a human should look at both."""

    model_config = ConfigDict(frozen=True)

    services: list[str]
    scores: list[float]
    agents: list[list[str]]
    description: str


class MinorityOpinion(BaseModel):
    model_config = ConfigDict(frozen=True)

    agent_id: str
    root_cause: RootCause
    confidence: float


class QualityMetrics(BaseModel):
    model_config = ConfigDict(frozen=True)

    data_completeness: float = Field(ge=0.0, le=1.0)
    evidence_coverage: float = Field(ge=0.0, le=1.0)
    agreement: float = Field(ge=0.0, le=1.0)


class ConsensusResult(BaseModel):
    """Consensus over the agents' hypotheses; ``root_cause`` is null below the threshold."""

    model_config = ConfigDict(frozen=True)

    root_cause: RootCause | None = None
    confidence: float = Field(ge=0.0, le=1.0)
    threshold: float
    agreement_level: float = Field(ge=0.0, le=1.0)
    candidates: list[Candidate] = Field(default_factory=list)
    conflicts: list[Conflict] = Field(default_factory=list)
    minority_opinions: list[MinorityOpinion] = Field(default_factory=list)
    participating_agents: list[str] = Field(default_factory=list)
    failed_agents: list[str] = Field(default_factory=list)
    quality: QualityMetrics
    summary: str
