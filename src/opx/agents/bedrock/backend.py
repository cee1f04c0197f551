"""The Bedrock reasoning backend: each agent is a Bedrock Agent called with ``InvokeAgent``.

Hybrid evidence: the agent's deterministic local analyst runs first and its findings go into the
request as pre-computed evidence; the Bedrock agent may fetch more through its action groups.
One attempt is one session (``sessionId`` derived from execution, agent and attempt), with at
most one corrective message in the same session when the answer is not a valid hypothesis.
Errors are raised as ``OpxError`` with their retry decision; the shared agent runner retries.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opx.agents.backend import ReasoningBackend
from opx.agents.base import AgentContext, AgentOutput, SpentAttemptError
from opx.agents.bedrock.citations import check_citations
from opx.agents.bedrock.client import invoke_once
from opx.agents.bedrock.parsing import parse_answer
from opx.agents.bedrock.prompt import AgentRequest, build_request, correction
from opx.agents.bedrock.prompt_files import load_prompt
from opx.agents.bedrock.stream import StreamResult
from opx.agents.bedrock.tool_failures import degraded, tool_failures
from opx.config import BedrockAgentRef
from opx.domain.errors import ErrorCode, ErrorInfo, OpxError
from opx.domain.hypothesis import Hypothesis, HypothesisStatus
from opx.security.redaction import Redactor

# Bedrock's sessionId: [0-9a-zA-Z._:-]+, at most 100 characters.
_SESSION_OK = re.compile(r"^[0-9a-zA-Z._:-]{2,100}$")
MODEL_PREFIX = "bedrock-agent/"


def session_id(execution_id: str, agent_id: str, attempt: int, *, run: int) -> str:
    """Deterministic per (execution, run of it, agent, agent attempt): a retried agent and a new
    run of the execution (forced, or a redelivery) each start a fresh conversation, while a
    resumed run asks the same session again."""
    plain = f"opx-{execution_id or 'none'}-r{run}-{agent_id}-{attempt}"
    if _SESSION_OK.match(plain):
        return plain
    digest = hashlib.sha256(f"{execution_id}|{run}|{agent_id}|{attempt}".encode()).hexdigest()
    return f"opx-{digest[:40]}-r{run}-{attempt}"


@dataclass
class _Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    model: str | None = None

    def add(self, result: StreamResult) -> None:
        self.input_tokens += result.input_tokens
        self.output_tokens += result.output_tokens
        self.model = self.model or result.model

    def output(self, hypothesis: Hypothesis) -> AgentOutput:
        return AgentOutput(hypothesis, self.input_tokens, self.output_tokens, self.model)

    def spent(self, error: OpxError) -> OpxError:
        """``error`` carrying this attempt's usage; as it is when no model call used tokens (a
        call refused before it started spent nothing)."""
        if not (self.input_tokens or self.output_tokens):
            return error
        return SpentAttemptError(
            error,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            model=self.model,
        )


class BedrockBackend:
    """Runs agents on Bedrock Agents; ``local`` supplies the pre-computed evidence."""

    name = "bedrock"

    def __init__(
        self,
        agents: Mapping[str, BedrockAgentRef],
        local: ReasoningBackend,
        client_factory: Callable[[], Any],
        redactor: Redactor | None = None,
        planned_model: str | None = None,
    ) -> None:
        self._agents = dict(agents)
        self._planned_model = planned_model
        self._local = local
        self._client_factory = client_factory
        self._client: Any = None
        self._redactor = redactor or Redactor()
        self._versions = {a: f"bedrock/{load_prompt(a).version}" for a in self._agents}

    def version_of(self, agent_id: str) -> str:
        self._ref(agent_id)
        return self._versions[agent_id]

    def model_of(self, agent_id: str) -> str:
        # Which model an agent runs is the agent's configuration in Bedrock; OPX learns it from
        # the trace of each call. Before a call, only the deployment's declared model (if given)
        # or the agent itself is known (priced as unknown).
        ref = self._ref(agent_id)
        return self._planned_model or MODEL_PREFIX + ref.agent_id

    async def invoke(self, agent_id: str, ctx: AgentContext, attempt: int) -> AgentOutput:
        ref = self._ref(agent_id)
        request = await self._request(agent_id, ctx, attempt)
        session = session_id(ctx.execution_id, agent_id, attempt, run=ctx.attempt)
        usage = _Usage()
        first = await self._call(ref, session, request.text, request, usage)
        if first.blocked:
            return usage.output(self._blocked(agent_id, first))
        parsed = parse_answer(first.text, agent_id, self._versions[agent_id])
        outputs, calls = list(first.tool_outputs), list(first.tool_calls)
        hypothesis = parsed.hypothesis
        if hypothesis is None:
            second = await self._call(ref, session, correction(parsed.problem), request, usage)
            if second.blocked:
                return usage.output(self._blocked(agent_id, second))
            outputs += second.tool_outputs
            calls += second.tool_calls
            retry = parse_answer(second.text, agent_id, self._versions[agent_id])
            if retry.hypothesis is None:
                return usage.output(self._invalid(agent_id, parsed.problem, retry.problem))
            hypothesis = retry.hypothesis
        checked, _ = check_citations(hypothesis, request.given, outputs)
        return usage.output(degraded(checked, tool_failures(calls)))

    async def _request(self, agent_id: str, ctx: AgentContext, attempt: int) -> AgentRequest:
        """The request, with the local analyst's hypothesis as pre-computed evidence (or why
        there is none: the Bedrock agent can still use its tools)."""
        try:
            local = (await self._local.invoke(agent_id, ctx, attempt)).hypothesis
        except OpxError as exc:
            return build_request(agent_id, ctx, None, exc.info, self._redactor)
        return build_request(agent_id, ctx, local, None, self._redactor)

    async def _call(
        self, ref: BedrockAgentRef, session: str, text: str, request: AgentRequest, usage: _Usage
    ) -> StreamResult:
        client = self._get_client()
        result = await asyncio.to_thread(
            invoke_once, client, ref, session, text, request.session_attributes
        )
        usage.add(result)
        if result.error is not None:
            raise usage.spent(result.error)
        if result.return_control:
            error = OpxError(
                ErrorCode.BEDROCK_MODEL_ERROR,
                f"agent {ref.agent_id} returned control; OPX agents use Lambda action groups",
                retryable=False,
            )
            raise usage.spent(error)
        if result.failures and not result.text.strip() and not result.blocked:
            error = OpxError(
                ErrorCode.BEDROCK_MODEL_ERROR,
                "agent failed: " + "; ".join(result.failures),
                retryable=True,
            )
            raise usage.spent(error)
        return result

    def _blocked(self, agent_id: str, result: StreamResult) -> Hypothesis:
        error = ErrorInfo.of(
            ErrorCode.GUARDRAIL_INTERVENTION,
            "Bedrock guardrail intervened: " + ", ".join(result.guardrail),
        )
        return Hypothesis.failed(
            agent_id, HypothesisStatus.BLOCKED, error, self._versions[agent_id]
        )

    def _invalid(self, agent_id: str, first: str, second: str) -> Hypothesis:
        # Not raised: the attempt used tokens, and a returned hypothesis keeps them accounted.
        error = ErrorInfo.of(
            ErrorCode.OUTPUT_VALIDATION_FAILED,
            f"no valid hypothesis after one correction: first {first}; then {second}",
        )
        return Hypothesis.failed(
            agent_id, HypothesisStatus.FAILURE, error, self._versions[agent_id]
        )

    def _get_client(self) -> Any:
        # Created on first use (boto3 clients are thread-safe), so a run whose agents are all
        # skipped or replayed never builds one.
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def _ref(self, agent_id: str) -> BedrockAgentRef:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise OpxError(
                ErrorCode.INTERNAL_ERROR,
                f"no Bedrock agent configured for {agent_id}",
                retryable=False,
            ) from None
