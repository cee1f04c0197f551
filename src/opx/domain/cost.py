"""What an execution cost, per agent and attempt, against its budget."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AttemptCost(BaseModel):
    model_config = ConfigDict(frozen=True)

    attempt: int
    input_tokens: int = 0
    output_tokens: int = 0
    model: str | None = None
    usd: float = 0.0
    cost_unknown: bool = False


class AgentCostReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    models: list[str] = Field(default_factory=list)
    cost_unknown: bool = False
    attempts: list[AttemptCost] = Field(default_factory=list)


class CostProjection(BaseModel):
    model_config = ConfigDict(frozen=True)

    incidents_per_day: float
    monthly_usd: float
    executions_left_in_budget: int | None


class CostReport(BaseModel):
    """Authoritative accounting; ``budget_exceeded`` is a signal, never a stop."""

    model_config = ConfigDict(frozen=True)

    pricing_version: str
    per_agent: dict[str, AgentCostReport] = Field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    total_usd: float = 0.0
    budget_usd: float
    budget_remaining_usd: float
    budget_exceeded: bool
    budget_warning: bool
    cost_unknown: bool
    unknown_models: list[str] = Field(default_factory=list)
    projection: CostProjection
