"""A Bedrock stream that stalls or breaks after it started: a retryable error that keeps the
tokens the trace already reported, so the runner retries and the cost counts the lost attempt."""

from __future__ import annotations

import asyncio
import random

import pytest

from opx.agents.base import AgentContext, SpentAttemptError
from opx.agents.bedrock.backend import BedrockBackend
from opx.agents.runner import RetryPolicy, RunOutcome, run_agent
from opx.domain.errors import ErrorCode
from opx.domain.hypothesis import HypothesisStatus
from tests.agents.bedrock import eventstream as es
from tests.agents.bedrock.conftest import BackendFactory
from tests.agents.bedrock.fake_agent import (
    CLOSE,
    MODEL,
    RESET,
    STALL,
    Behaviour,
    FakeAgent,
    Reply,
    Request,
    usage_trace,
)

SIGNAL = "signal-intelligence"
ORCH = (1200, 300)
READ_TIMEOUT_S = 0.5


def _frames(request: Request) -> list[bytes]:
    frames = usage_trace("orchestrationTrace", request.agent_id, request.session_id, ORCH)
    frames.append(es.chunk('{"root_cause": {"service": "checkout'))
    return frames


def _breaks(ending: str) -> Behaviour:
    """Usage for one model call and the start of an answer, then ``ending``."""

    def behaviour(request: Request, _: FakeAgent) -> Reply:
        return Reply(frames=_frames(request), ending=ending)

    return behaviour


def _corrupt(request: Request, _: FakeAgent) -> Reply:
    frames = _frames(request)
    bad = bytearray(es.chunk("more of the answer"))
    bad[-1] ^= 0xFF  # the message CRC no longer matches
    return Reply(frames=[*frames, bytes(bad)])


def _invoke(backend: BedrockBackend, ctx: AgentContext) -> None:
    asyncio.run(backend.invoke(SIGNAL, ctx, 1))


@pytest.mark.parametrize(
    ("behaviour", "code"),
    [
        (_breaks(STALL), ErrorCode.TIMEOUT),
        (_breaks(CLOSE), ErrorCode.DATA_SOURCE_UNAVAILABLE),
        (_breaks(RESET), ErrorCode.DATA_SOURCE_UNAVAILABLE),
        (_corrupt, ErrorCode.DATA_SOURCE_UNAVAILABLE),
    ],
    ids=["stall", "close", "reset", "checksum"],
)
def test_a_broken_stream_is_retryable_and_keeps_its_usage(
    fake: FakeAgent,
    make_backend: BackendFactory,
    ctx: AgentContext,
    behaviour: Behaviour,
    code: ErrorCode,
) -> None:
    fake.behaviour = behaviour
    with pytest.raises(SpentAttemptError) as caught:
        _invoke(make_backend(read_timeout_s=READ_TIMEOUT_S), ctx)
    assert (caught.value.code, caught.value.retryable) == (code, True)
    assert (caught.value.input_tokens, caught.value.output_tokens) == ORCH
    assert caught.value.model == MODEL
    assert len(fake.requests) == 1


def test_the_runner_retries_a_stalled_stream_and_counts_its_tokens(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    fake.script = [_breaks(STALL)]

    async def no_wait(_: float) -> None:
        return None

    outcome: RunOutcome = asyncio.run(
        run_agent(
            SIGNAL,
            make_backend(read_timeout_s=READ_TIMEOUT_S),
            ctx,
            deadline_s=30.0,
            policy=RetryPolicy(3, 0.0),
            sleep=no_wait,
            rng=random.Random(1),
        )
    )
    assert outcome.hypothesis.status is HypothesisStatus.SUCCESS
    first, second = outcome.hypothesis.attempts
    assert first.error is not None and first.error.code is ErrorCode.TIMEOUT
    assert first.error.retryable
    assert (first.input_tokens, first.output_tokens, first.model) == (*ORCH, MODEL)
    assert second.error is None and second.input_tokens > 0
    first_session, second_session = (r.session_id for r in fake.requests)
    assert first_session != second_session
