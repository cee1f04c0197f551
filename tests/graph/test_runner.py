"""The agent runner: retries, attempts, one deadline over all attempts, never raising."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opx.agents.base import AgentContext, AgentOutput, SpentAttemptError
from opx.agents.recorded import RecordedBackend
from opx.agents.runner import RetryPolicy, run_agent
from opx.domain.errors import ErrorCode, OpxError
from opx.domain.hypothesis import Hypothesis, HypothesisStatus, RootCause
from opx.domain.incident import EvidenceBundle, Incident, Severity


def make_ctx() -> AgentContext:
    start = datetime(2026, 10, 1, 10, tzinfo=UTC)
    incident = Incident(
        incident_id="INC-1",
        service="svc",
        severity=Severity.SEV2,
        window_start=start,
        window_end=start + timedelta(minutes=30),
        evidence_bundle=EvidenceBundle(evidence_id="e"),
    )
    return AgentContext(incident=incident, tools=None)  # type: ignore[arg-type]


class ScriptedBackend:
    """Fails with the scripted errors, then succeeds; counts calls."""

    name = "scripted"

    def __init__(self, failures: list[OpxError | Exception], hang_s: float = 0.0) -> None:
        self.failures = list(failures)
        self.calls = 0
        self.hang_s = hang_s

    def version_of(self, agent_id: str) -> str:
        return "v-test"

    def model_of(self, agent_id: str) -> str:
        return "m"

    async def invoke(self, agent_id: str, ctx: AgentContext, attempt: int) -> AgentOutput:
        self.calls += 1
        if self.hang_s:
            await asyncio.sleep(self.hang_s)
        if self.failures:
            raise self.failures.pop(0)
        hypothesis = Hypothesis(
            agent_id=agent_id, root_cause=RootCause(service="db"), confidence=0.7
        )
        return AgentOutput(hypothesis, input_tokens=100 * attempt, output_tokens=10, model="m")


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def run(backend: Any, deadline: float = 5.0, attempts: int = 3) -> tuple[Any, Sleeps]:
    sleeps = Sleeps()
    outcome = await run_agent(
        "signal-intelligence",
        backend,
        make_ctx(),
        deadline_s=deadline,
        policy=RetryPolicy(attempts, 1.0),
        sleep=sleeps,
        rng=random.Random(0),
    )
    return outcome, sleeps


async def test_success_on_first_attempt_records_one_attempt() -> None:
    outcome, sleeps = await run(ScriptedBackend([]))
    h = outcome.hypothesis
    assert h.status is HypothesisStatus.SUCCESS
    assert [a.attempt for a in h.attempts] == [1]
    assert h.cost.input_tokens == 100
    assert [t.status for t in outcome.trace] == ["SUCCESS"]
    assert sleeps.waits == []


async def test_retryable_errors_are_retried_with_growing_waits() -> None:
    backend = ScriptedBackend([OpxError(ErrorCode.BEDROCK_THROTTLING, "slow down")] * 2)
    outcome, sleeps = await run(backend)
    h = outcome.hypothesis
    assert h.status is HypothesisStatus.SUCCESS and backend.calls == 3
    assert [a.status for a in h.attempts] == ["FAILURE", "FAILURE", "SUCCESS"]
    assert [(t.attempt, t.status) for t in outcome.trace] == [
        (1, "FAILURE"),
        (2, "FAILURE"),
        (3, "SUCCESS"),
    ]
    assert 0.8 <= sleeps.waits[0] <= 1.2 and 1.6 <= sleeps.waits[1] <= 2.4
    assert h.cost.input_tokens == 300  # only the successful attempt used tokens here


async def test_non_retryable_error_fails_at_once() -> None:
    backend = ScriptedBackend([OpxError(ErrorCode.INVALID_INPUT, "bad")])
    outcome, sleeps = await run(backend)
    assert outcome.hypothesis.status is HypothesisStatus.FAILURE
    assert outcome.hypothesis.error is not None
    assert outcome.hypothesis.error.code is ErrorCode.INVALID_INPUT
    assert backend.calls == 1 and sleeps.waits == []


async def test_attempts_are_bounded() -> None:
    backend = ScriptedBackend([OpxError(ErrorCode.DATA_SOURCE_UNAVAILABLE, "down")] * 5)
    outcome, _ = await run(backend)
    assert outcome.hypothesis.status is HypothesisStatus.FAILURE
    assert backend.calls == 3 and len(outcome.hypothesis.attempts) == 3
    assert len(outcome.errors) == 3


async def test_unexpected_exception_becomes_a_failure_not_a_crash() -> None:
    outcome, _ = await run(ScriptedBackend([RuntimeError("boom")]))
    assert outcome.hypothesis.status is HypothesisStatus.FAILURE
    assert outcome.hypothesis.error is not None
    assert "boom" in outcome.hypothesis.error.message


async def test_deadline_covers_all_attempts() -> None:
    backend = ScriptedBackend([], hang_s=10)
    outcome, _ = await run(backend, deadline=0.05)
    h = outcome.hypothesis
    assert h.status is HypothesisStatus.TIMEOUT
    assert h.error is not None and h.error.code is ErrorCode.TIMEOUT
    assert [t.status for t in outcome.trace] == ["TIMEOUT"]


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_backoff_doubles(attempt: int) -> None:
    policy = RetryPolicy(3, 1.0, jitter=0.0)
    assert policy.delay(attempt, random.Random(1)) == 2 ** (attempt - 1)


async def test_a_failed_attempt_that_spent_tokens_is_recorded_with_them() -> None:
    throttled = OpxError(ErrorCode.BEDROCK_THROTTLING, "mid-stream throttling")
    spent = SpentAttemptError(throttled, input_tokens=700, output_tokens=40, model="m-spent")
    outcome, _ = await run(ScriptedBackend([spent]))
    first, second = outcome.hypothesis.attempts
    assert (first.status, first.input_tokens, first.output_tokens, first.model) == (
        HypothesisStatus.FAILURE,
        700,
        40,
        "m-spent",
    )
    assert first.error is not None and first.error.code is ErrorCode.BEDROCK_THROTTLING
    assert (second.input_tokens, second.output_tokens) == (200, 10)
    assert outcome.hypothesis.cost.input_tokens == 900
    assert outcome.hypothesis.cost.model == "m,m-spent"


async def test_replay_raises_a_spent_failure_with_its_recorded_usage() -> None:
    throttled = OpxError(ErrorCode.BEDROCK_THROTTLING, "mid-stream throttling")
    spent = SpentAttemptError(throttled, input_tokens=700, output_tokens=40, model="m-spent")
    original, _ = await run(ScriptedBackend([spent]))
    replayed, _ = await run(RecordedBackend({"signal-intelligence": original.hypothesis}))
    assert replayed.hypothesis.attempts == original.hypothesis.attempts
    assert replayed.hypothesis.cost == original.hypothesis.cost
