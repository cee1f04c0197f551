"""The reasoning backend interface, and the local backend that runs deterministic analysts."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

from opx.agents.base import AgentContext, AgentOutput, Analyst
from opx.domain.errors import ErrorCode, OpxError

LOCAL_MODEL = "local-analyst"


class ReasoningBackend(Protocol):
    """Produces one agent's hypothesis for one attempt. Raises ``OpxError`` on failure."""

    name: str

    def version_of(self, agent_id: str) -> str: ...

    def model_of(self, agent_id: str) -> str: ...

    async def invoke(self, agent_id: str, ctx: AgentContext, attempt: int) -> AgentOutput: ...


class LocalBackend:
    """Runs the deterministic local analysts in a worker thread, so deadlines can fire."""

    name = "local"

    def __init__(self, analysts: Mapping[str, Analyst]) -> None:
        self._analysts = dict(analysts)

    def version_of(self, agent_id: str) -> str:
        return self._analyst(agent_id).version

    def model_of(self, agent_id: str) -> str:
        return LOCAL_MODEL

    async def invoke(self, agent_id: str, ctx: AgentContext, attempt: int) -> AgentOutput:
        analyst = self._analyst(agent_id)
        try:
            hypothesis = await asyncio.to_thread(analyst.analyze, ctx)
        except OpxError:
            raise
        except Exception as exc:
            # A deterministic analyst fails the same way every time: not worth a retry.
            raise OpxError(
                ErrorCode.INTERNAL_ERROR,
                f"{agent_id} failed: {type(exc).__name__}: {exc}",
                retryable=False,
            ) from exc
        update = {"agent_id": agent_id, "agent_version": analyst.version}
        return AgentOutput(hypothesis=hypothesis.model_copy(update=update), model=LOCAL_MODEL)

    def _analyst(self, agent_id: str) -> Analyst:
        try:
            return self._analysts[agent_id]
        except KeyError:
            raise OpxError(ErrorCode.INTERNAL_ERROR, f"no local analyst for {agent_id}") from None
