"""The Bedrock backend against the fake runtime, one scenario per way a call can go."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from opx.agents.base import AgentContext, AgentOutput, SpentAttemptError
from opx.agents.bedrock.backend import BedrockBackend, session_id
from opx.agents.bedrock.citations import PENALTY
from opx.agents.runner import RetryPolicy, RunOutcome, run_agent
from opx.domain.errors import ErrorCode, OpxError
from opx.domain.hypothesis import HypothesisStatus
from opx.reasoning.cost import compute_cost
from opx.reasoning.pricing import load_pricing
from tests.agents.bedrock import eventstream as es
from tests.agents.bedrock.conftest import EXECUTION, REFS, BackendFactory
from tests.agents.bedrock.fake_agent import (
    MODEL,
    Behaviour,
    FakeAgent,
    Reply,
    Request,
    answer,
    data_block,
    restated,
    usage_trace,
)

SIGNAL = "signal-intelligence"
ORCH = (1200, 300)
PRE = (150, 20)


def invoke(
    backend: BedrockBackend, ctx: AgentContext, agent: str = SIGNAL, attempt: int = 1
) -> AgentOutput:
    return asyncio.run(backend.invoke(agent, ctx, attempt))


def restating(
    mutate: Callable[[dict[str, Any]], None] | None = None, *, prose: str = "", pieces: int = 1
) -> Behaviour:
    """A behaviour that restates the evidence, optionally changed by ``mutate``."""

    def behaviour(request: Request, fake: FakeAgent) -> Reply:
        first = fake.first_text(request.session_id)
        hypothesis = restated(data_block(first), SIGNAL)
        if mutate is not None:
            mutate(hypothesis)
        text = json.dumps(hypothesis, ensure_ascii=False)
        text = prose.format(json=text) if prose else text
        return answer(text, request.agent_id, request.session_id, ORCH, pieces)

    return behaviour


def test_normal_answer_counts_usage_from_every_trace_step(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    out = invoke(make_backend(), ctx)
    assert out.hypothesis.status is HypothesisStatus.SUCCESS
    assert out.hypothesis.root_cause is not None
    assert out.hypothesis.root_cause.service == "checkout-handler_AWS::Lambda::Function"
    assert out.hypothesis.error is None
    assert out.hypothesis.agent_version == "bedrock/1.1.0"
    assert (out.input_tokens, out.output_tokens) == (PRE[0] + ORCH[0], PRE[1] + ORCH[1])
    assert out.model == MODEL
    (request,) = fake.requests
    assert (request.agent_id, request.alias_id) == (REFS[SIGNAL].agent_id, REFS[SIGNAL].alias_id)
    assert request.session_id == session_id(EXECUTION, SIGNAL, 1, run=1)
    assert request.body["enableTrace"] is True
    attributes = request.body["sessionState"]["sessionAttributes"]
    assert attributes["incident_window_start"] == ctx.incident.window_start.isoformat()
    assert attributes["incident_service"] == ctx.incident.service


def test_answer_split_over_many_chunks_is_reassembled(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    def accent(h: dict[str, Any]) -> None:
        h["description"] = "Déploiement → erreurs: " + str(h["description"])

    fake.behaviour = restating(accent, pieces=97)
    out = invoke(make_backend(), ctx)
    assert out.hypothesis.description.startswith("Déploiement → erreurs: Restated: ")
    assert out.hypothesis.status is HypothesisStatus.SUCCESS


def test_guardrail_intervention_is_a_blocked_hypothesis(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    def blocked(request: Request, _: FakeAgent) -> Reply:
        frames = usage_trace("orchestrationTrace", request.agent_id, request.session_id, ORCH)
        guardrail = {
            "guardrailTrace": {
                "action": "INTERVENED",
                "outputAssessments": [
                    {
                        "topicPolicy": {
                            "topics": [
                                {"name": "DESTRUCTIVE_ACTIONS", "type": "DENY", "action": "BLOCKED"}
                            ]
                        }
                    }
                ],
            }
        }
        frames.append(es.trace(guardrail, agent_id=request.agent_id, session_id=request.session_id))
        frames.append(es.chunk("This response was blocked due to safety guardrails."))
        return Reply(frames=frames)

    fake.behaviour = blocked
    out = invoke(make_backend(), ctx)
    assert out.hypothesis.status is HypothesisStatus.BLOCKED
    assert out.hypothesis.error is not None
    assert out.hypothesis.error.code is ErrorCode.GUARDRAIL_INTERVENTION
    assert "topic DESTRUCTIVE_ACTIONS (output)" in out.hypothesis.error.message
    assert (out.input_tokens, out.output_tokens) == ORCH  # the blocked call still cost tokens
    assert len(fake.requests) == 1  # not mistaken for a parse error: no correction sent


def _run(backend: BedrockBackend, ctx: AgentContext, attempts: int = 3) -> RunOutcome:
    async def no_wait(_: float) -> None:
        return None

    return asyncio.run(
        run_agent(
            SIGNAL,
            backend,
            ctx,
            deadline_s=30.0,
            policy=RetryPolicy(attempts, 0.0),
            sleep=no_wait,
            rng=random.Random(1),
        )
    )


def test_throttling_then_success_is_retried_by_the_runner(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    fake.script = [Reply(status=429, error_type="ThrottlingException")]
    outcome = _run(make_backend(), ctx)
    assert outcome.hypothesis.status is HypothesisStatus.SUCCESS
    first, second = outcome.hypothesis.attempts
    assert first.error is not None and first.error.code is ErrorCode.BEDROCK_THROTTLING
    assert first.error.retryable
    assert (second.input_tokens, second.output_tokens, second.model) == (1350, 320, MODEL)
    sessions = [r.session_id for r in fake.requests]
    assert sessions == [session_id(EXECUTION, SIGNAL, a, run=1) for a in (1, 2)]


def test_throttling_until_give_up_is_a_failure(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    fake.script = [Reply(status=429, error_type="ThrottlingException")] * 3
    outcome = _run(make_backend(), ctx)
    assert outcome.hypothesis.status is HypothesisStatus.FAILURE
    assert outcome.hypothesis.error is not None
    assert outcome.hypothesis.error.code is ErrorCode.BEDROCK_THROTTLING
    assert len(fake.requests) == 3 and len(outcome.errors) == 3


@pytest.mark.parametrize(
    ("name", "code", "retryable"),
    [
        ("dependencyFailedException", ErrorCode.DATA_SOURCE_UNAVAILABLE, True),
        ("throttlingException", ErrorCode.BEDROCK_THROTTLING, True),
        ("accessDeniedException", ErrorCode.ACCESS_DENIED, False),
        ("modelNotReadyException", ErrorCode.BEDROCK_MODEL_ERROR, True),
    ],
)
def test_in_stream_error_keeps_the_usage_seen_before_it(
    fake: FakeAgent,
    make_backend: BackendFactory,
    ctx: AgentContext,
    name: str,
    code: ErrorCode,
    retryable: bool,
) -> None:
    def broken(request: Request, _: FakeAgent) -> Reply:
        frames = usage_trace("orchestrationTrace", request.agent_id, request.session_id, ORCH)
        frames.append(es.chunk('{"agent_id": "sig'))
        frames.append(es.exception(name, "stream broke"))
        return Reply(frames=frames)

    fake.behaviour = broken
    with pytest.raises(SpentAttemptError) as caught:
        invoke(make_backend(), ctx)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert (caught.value.input_tokens, caught.value.output_tokens) == ORCH
    assert caught.value.model == MODEL


def test_prose_around_the_json_is_accepted(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    fake.behaviour = restating(prose="Here is my analysis {{brief}}:\n{json}\nHope it helps.")
    out = invoke(make_backend(), ctx)
    assert out.hypothesis.status is HypothesisStatus.SUCCESS
    assert len(fake.requests) == 1


def test_invalid_json_then_corrected_in_the_same_session(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    def invalid(request: Request, _: FakeAgent) -> Reply:
        return answer(
            '{"agent_id": "signal-intelligence", "confidence": 7}',
            request.agent_id,
            request.session_id,
            (900, 40),
        )

    fake.script = [invalid]
    out = invoke(make_backend(), ctx)
    assert out.hypothesis.status is HypothesisStatus.SUCCESS
    first, second = fake.requests
    assert first.session_id == second.session_id
    assert "could not be used" in second.text and "confidence" in second.text
    assert out.input_tokens == (150 + 900) + (150 + 1200)
    assert out.output_tokens == (20 + 40) + (20 + 300)


def test_invalid_twice_is_output_validation_failed_with_its_usage(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    def prose_only(request: Request, _: FakeAgent) -> Reply:
        return answer(
            "I think it is the checkout handler.", request.agent_id, request.session_id, (800, 30)
        )

    fake.behaviour = prose_only
    out = invoke(make_backend(), ctx)
    assert out.hypothesis.status is HypothesisStatus.FAILURE
    assert out.hypothesis.error is not None
    assert out.hypothesis.error.code is ErrorCode.OUTPUT_VALIDATION_FAILED
    assert not out.hypothesis.error.retryable
    assert len(fake.requests) == 2
    assert (out.input_tokens, out.output_tokens) == (2 * 950, 2 * 50)


def test_citing_a_record_that_does_not_exist_is_flagged_and_lowered(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    def invent(h: dict[str, Any]) -> None:
        evidence = list(h["evidence"])
        evidence.append(
            {
                "tool": "search_logs",
                "record_ids": ["log-999999"],
                "summary": "an error that never happened",
            }
        )
        h["evidence"] = evidence

    fake.behaviour = restating(invent)
    out = invoke(make_backend(), ctx)
    h = out.hypothesis
    assert h.status is HypothesisStatus.PARTIAL
    assert h.error is not None and h.error.code is ErrorCode.HALLUCINATION_DETECTED
    assert "log-999999" in h.error.message
    check = h.findings["citation_check"]
    assert check["unknown_record_ids"] == ["log-999999"]
    stated = check["confidence_as_stated"]
    assert (check["items"] - check["verified"]) == 1
    share = check["verified"] / check["items"]
    assert h.confidence == pytest.approx(stated * PENALTY * share, abs=1e-4)
    assert 0 < h.confidence < stated / 2


def test_a_record_returned_by_a_tool_in_the_trace_is_a_valid_citation(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    def fetched(request: Request, fake_agent: FakeAgent) -> Reply:
        hypothesis = restated(data_block(fake_agent.first_text(request.session_id)), SIGNAL)
        hypothesis["evidence"].append(
            {
                "tool": "search_logs",
                "record_ids": ["log-777777"],
                "summary": "fetched by the agent itself",
            }
        )
        tool = {
            "orchestrationTrace": {
                "observation": {
                    "type": "ACTION_GROUP",
                    "actionGroupInvocationOutput": {
                        "text": json.dumps(
                            {"status": "SUCCESS", "data": {"events": [{"id": "log-777777"}]}}
                        )
                    },
                }
            }
        }
        reply = answer(json.dumps(hypothesis), request.agent_id, request.session_id)
        reply.frames.insert(
            0, es.trace(tool, agent_id=request.agent_id, session_id=request.session_id)
        )
        return reply

    fake.behaviour = fetched
    out = invoke(make_backend(), ctx)
    assert out.hypothesis.status is HypothesisStatus.SUCCESS
    assert out.hypothesis.error is None


def test_raised_errors_before_the_stream_are_not_spent_calls(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    fake.script = [Reply(status=403, error_type="AccessDeniedException")]
    with pytest.raises(OpxError) as caught:
        invoke(make_backend(), ctx)
    assert caught.value.code is ErrorCode.ACCESS_DENIED and not caught.value.retryable
    # Refused before any model ran: no usage to carry, so not a spent attempt.
    assert not isinstance(caught.value, SpentAttemptError)


@pytest.mark.parametrize(
    ("model", "unknown"),
    [
        ("us.anthropic.claude-haiku-4-5-20251001-v1:0", False),
        (
            "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/"
            "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
            False,
        ),
        ("vendor.brand-new-model-v1:0", True),
    ],
)
def test_the_model_from_the_trace_prices_the_attempt_or_flags_it_unknown(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext, model: str, unknown: bool
) -> None:
    def on_model(request: Request, fake_agent: FakeAgent) -> Reply:
        hypothesis = restated(data_block(fake_agent.first_text(request.session_id)), SIGNAL)
        return answer(
            json.dumps(hypothesis), request.agent_id, request.session_id, ORCH, model=model
        )

    fake.behaviour = on_model
    outcome = _run(make_backend(), ctx)
    report = compute_cost({SIGNAL: outcome.hypothesis}, pricing=load_pricing(), budget_usd=1.0)
    (attempt,) = report.per_agent[SIGNAL].attempts
    assert attempt.model == model
    assert attempt.cost_unknown is unknown and report.cost_unknown is unknown
    assert (attempt.usd == 0.0) is unknown
    if unknown:
        assert report.unknown_models == [model]


def test_a_new_run_of_the_execution_starts_fresh_sessions(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    backend = make_backend()
    invoke(backend, ctx)
    invoke(backend, replace(ctx, attempt=2))
    first, second = (r.session_id for r in fake.requests)
    assert first == session_id(EXECUTION, SIGNAL, 1, run=1)
    assert second == session_id(EXECUTION, SIGNAL, 1, run=2) != first
