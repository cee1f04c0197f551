"""The agent runner: the kill switch checked first, then one deadline per agent over all
attempts, bounded retries, every attempt recorded. It serves every reasoning backend, and never
raises."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from opx.agents.backend import ReasoningBackend
from opx.agents.base import AgentContext, AgentOutput, SpentAttemptError
from opx.domain.errors import ErrorCode, ErrorInfo, OpxError
from opx.domain.hypothesis import AgentCost, AttemptRecord, Hypothesis, HypothesisStatus
from opx.domain.result import TraceEntry

Sleep = Callable[[float], Awaitable[None]]
# Whether the kill switch stops an agent (True: do not run it).
Stopped = Callable[[str], bool]
KILL_SWITCH = "KILL_SWITCH"


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_attempts`` tries; waits of about base, 2*base, … with ±20 % jitter."""

    max_attempts: int = 3
    base_delay_s: float = 1.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random) -> float:
        spread = 1.0 + rng.uniform(-self.jitter, self.jitter)
        return float(self.base_delay_s * (2 ** (attempt - 1)) * spread)


@dataclass
class RunOutcome:
    """What the graph node writes back: the hypothesis, its trace, errors and wall times."""

    hypothesis: Hypothesis
    trace: list[TraceEntry] = field(default_factory=list)
    errors: list[ErrorInfo] = field(default_factory=list)
    started_at: float = 0.0
    finished_at: float = 0.0


@dataclass
class _Attempts:
    records: list[AttemptRecord] = field(default_factory=list)
    trace: list[TraceEntry] = field(default_factory=list)
    errors: list[ErrorInfo] = field(default_factory=list)

    def fail(
        self,
        agent_id: str,
        attempt: int,
        status: HypothesisStatus,
        err: ErrorInfo,
        spent: SpentAttemptError | None = None,
    ) -> None:
        usage = (
            {}
            if spent is None
            else {
                "input_tokens": spent.input_tokens,
                "output_tokens": spent.output_tokens,
                "model": spent.model,
            }
        )
        self.records.append(AttemptRecord(attempt=attempt, status=status, error=err, **usage))
        self.trace.append(
            TraceEntry(node=agent_id, status=status.value, attempt=attempt, detail=err.code.value)
        )
        self.errors.append(err)


async def run_agent(
    agent_id: str,
    backend: ReasoningBackend,
    ctx: AgentContext,
    *,
    deadline_s: float,
    policy: RetryPolicy,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
    stopped: Stopped | None = None,
) -> RunOutcome:
    """Run one agent to a hypothesis: success, or a FAILURE/TIMEOUT hypothesis saying why, or,
    when ``stopped`` says the kill switch is on for it, SKIPPED without calling the agent."""
    rng = rng or random.Random()
    log = _Attempts()
    started = time.time()
    if _is_stopped(stopped, agent_id):
        return _skipped(agent_id, backend, started)
    try:
        async with asyncio.timeout(deadline_s):
            hypothesis = await _attempt_loop(agent_id, backend, ctx, policy, sleep, rng, log)
    except TimeoutError:
        err = ErrorInfo.of(ErrorCode.TIMEOUT, f"{agent_id} did not finish within {deadline_s:g} s")
        log.fail(agent_id, len(log.records) + 1, HypothesisStatus.TIMEOUT, err)
        hypothesis = Hypothesis.failed(
            agent_id, HypothesisStatus.TIMEOUT, err, _version(backend, agent_id)
        )
    hypothesis = hypothesis.model_copy(
        update={"attempts": log.records, "cost": _usage(log.records)}
    )
    return RunOutcome(hypothesis, log.trace, log.errors, started, time.time())


async def _attempt_loop(
    agent_id: str,
    backend: ReasoningBackend,
    ctx: AgentContext,
    policy: RetryPolicy,
    sleep: Sleep,
    rng: random.Random,
    log: _Attempts,
) -> Hypothesis:
    for attempt in range(1, policy.max_attempts + 1):
        spent: SpentAttemptError | None = None
        try:
            output = await backend.invoke(agent_id, ctx, attempt)
        except OpxError as exc:
            err = exc.info
            spent = exc if isinstance(exc, SpentAttemptError) else None
        except Exception as exc:  # a backend bug must not take the execution down
            err = ErrorInfo(
                code=ErrorCode.UNKNOWN_ERROR,
                message=f"{type(exc).__name__}: {exc}",
                retryable=False,
            )
        else:
            _record_success(agent_id, attempt, output, log)
            return output.hypothesis
        log.fail(agent_id, attempt, HypothesisStatus.FAILURE, err, spent)
        if not err.retryable or attempt == policy.max_attempts:
            return Hypothesis.failed(
                agent_id, HypothesisStatus.FAILURE, err, _version(backend, agent_id)
            )
        await sleep(policy.delay(attempt, rng))
    raise AssertionError("unreachable: the loop returns on its last attempt")


def _is_stopped(stopped: Stopped | None, agent_id: str) -> bool:
    if stopped is None:
        return False
    try:
        return stopped(agent_id)
    except Exception:  # unreadable now: the execution-level check passed moments ago
        return False


def _skipped(agent_id: str, backend: ReasoningBackend, started: float) -> RunOutcome:
    hypothesis = Hypothesis(
        agent_id=agent_id,
        agent_version=_version(backend, agent_id),
        status=HypothesisStatus.SKIPPED,
        description=f"{agent_id} was not run: the kill switch is on for it",
        findings={"reason": KILL_SWITCH},
    )
    trace = [TraceEntry(node=agent_id, status=HypothesisStatus.SKIPPED.value, detail=KILL_SWITCH)]
    return RunOutcome(hypothesis, trace, [], started, time.time())


def _record_success(agent_id: str, attempt: int, output: AgentOutput, log: _Attempts) -> None:
    status = output.hypothesis.status
    log.records.append(
        AttemptRecord(
            attempt=attempt,
            status=status,
            input_tokens=output.input_tokens,
            output_tokens=output.output_tokens,
            model=output.model,
        )
    )
    log.trace.append(TraceEntry(node=agent_id, status=status.value, attempt=attempt))


def _usage(records: list[AttemptRecord]) -> AgentCost:
    models = sorted({r.model for r in records if r.model})
    return AgentCost(
        input_tokens=sum(r.input_tokens for r in records),
        output_tokens=sum(r.output_tokens for r in records),
        model=",".join(models) or None,
    )


def _version(backend: ReasoningBackend, agent_id: str) -> str:
    try:
        return backend.version_of(agent_id)
    except OpxError:
        return "unknown"
