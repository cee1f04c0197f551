"""What an agent is given and what it must return, whatever does its reasoning."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from opx.domain.errors import OpxError
from opx.domain.hypothesis import Hypothesis
from opx.domain.incident import Incident
from opx.tools.base import TelemetryTools


@dataclass(frozen=True)
class AgentContext:
    """The incident, read-only tools, and (for knowledge and response) the earlier hypotheses."""

    incident: Incident
    tools: TelemetryTools
    prior: dict[str, Hypothesis] = field(default_factory=dict)
    # Which execution asks: a remote backend derives its deterministic session ids from it.
    execution_id: str = ""
    # Which run of that execution (a forced re-run or a retried delivery starts the next one), so
    # a new run never continues an earlier run's remote conversation.
    attempt: int = 1


@dataclass(frozen=True)
class AgentOutput:
    """A hypothesis plus the usage of the attempt that produced it."""

    hypothesis: Hypothesis
    input_tokens: int = 0
    output_tokens: int = 0
    model: str | None = None


class SpentAttemptError(OpxError):
    """An attempt that failed after its model calls had already used tokens. It carries that
    usage, so the runner records (and the cost guardian prices) what the failed attempt spent."""

    def __init__(
        self, error: OpxError, *, input_tokens: int, output_tokens: int, model: str | None
    ) -> None:
        super().__init__(error.code, error.message, retryable=error.retryable)
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.model = model


class Analyst(Protocol):
    """A deterministic local analyst: same context, same hypothesis. Raises only on bugs or
    unavailable data (an ``OpxError`` with a canonical code)."""

    agent_id: str
    version: str

    def analyze(self, ctx: AgentContext) -> Hypothesis: ...
