"""A reasoning backend that plays back the hypotheses an execution recorded, attempt by attempt.

Driven by the ordinary agent runner, it reproduces every recorded attempt: a failed attempt raises
its recorded error (code, message, retryable), a timed-out attempt stalls until the runner's own
deadline fires, and the last attempt returns the recorded hypothesis with its recorded token
usage and model. No model and no tool is called.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping

from opx.agents.backend import LOCAL_MODEL
from opx.agents.base import AgentContext, AgentOutput, SpentAttemptError
from opx.domain.errors import ErrorCode, OpxError
from opx.domain.hypothesis import AttemptRecord, Hypothesis, HypothesisStatus

# What a recorded TIMEOUT attempt does: wait until the runner's deadline for that agent fires.
Stall = Callable[[str], Awaitable[None]]


async def wait_for_deadline(agent_id: str) -> None:
    """Wait forever: the runner's deadline cancels the wait, as it cancelled the original."""
    await asyncio.get_running_loop().create_future()


class RecordedBackend:
    """Plays back ``hypotheses`` (agent id → the final hypothesis, with its ``attempts``)."""

    name = "recorded"

    def __init__(
        self,
        hypotheses: Mapping[str, Hypothesis],
        *,
        model: str | None = None,
        stall: Stall = wait_for_deadline,
    ) -> None:
        """``model`` is what :meth:`model_of` answers, as the original backend did (the graph's
        budget check records it); without it, the agent's last recorded model."""
        self._hypotheses = dict(hypotheses)
        self._model = model
        self._stall = stall
        self.calls: Counter[str] = Counter()  # attempts played back, per agent

    def version_of(self, agent_id: str) -> str:
        return self._recorded(agent_id).agent_version

    def model_of(self, agent_id: str) -> str:
        if self._model is not None:
            return self._model
        hypothesis = self._hypotheses.get(agent_id)
        models = [] if hypothesis is None else [a.model for a in hypothesis.attempts if a.model]
        return models[-1] if models else LOCAL_MODEL

    async def invoke(self, agent_id: str, ctx: AgentContext, attempt: int) -> AgentOutput:
        self.calls[agent_id] += 1
        hypothesis = self._recorded(agent_id)
        record = _attempt(hypothesis, attempt)
        if record.error is None:
            return AgentOutput(
                hypothesis=hypothesis,
                input_tokens=record.input_tokens,
                output_tokens=record.output_tokens,
                model=record.model,
            )
        if record.status is HypothesisStatus.TIMEOUT:
            await self._stall(agent_id)
        error = OpxError(record.error.code, record.error.message, retryable=record.error.retryable)
        if record.input_tokens or record.output_tokens:
            raise SpentAttemptError(
                error,
                input_tokens=record.input_tokens,
                output_tokens=record.output_tokens,
                model=record.model,
            )
        raise error

    def _recorded(self, agent_id: str) -> Hypothesis:
        try:
            return self._hypotheses[agent_id]
        except KeyError:
            raise OpxError(
                ErrorCode.INTERNAL_ERROR, f"no recorded output for {agent_id}", retryable=False
            ) from None


def _attempt(hypothesis: Hypothesis, attempt: int) -> AttemptRecord:
    for record in hypothesis.attempts:
        if record.attempt == attempt:
            return record
    raise OpxError(
        ErrorCode.INTERNAL_ERROR,
        f"{hypothesis.agent_id} has no recorded attempt {attempt}",
        retryable=False,
    )
