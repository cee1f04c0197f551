"""What an agent is given and what it must return, whatever does its reasoning."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

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


@dataclass(frozen=True)
class AgentOutput:
    """A hypothesis plus the usage of the attempt that produced it."""

    hypothesis: Hypothesis
    input_tokens: int = 0
    output_tokens: int = 0
    model: str | None = None


class Analyst(Protocol):
    """A deterministic local analyst: same context, same hypothesis. Raises only on bugs or
    unavailable data (an ``OpxError`` with a canonical code)."""

    agent_id: str
    version: str

    def analyze(self, ctx: AgentContext) -> Hypothesis: ...
