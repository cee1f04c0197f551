"""execute(): one incident event to one result, idempotently, resuming where it stopped."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

from opx.domain.incident import Incident
from opx.domain.result import ExecutionResult, ExecutionStatus, Reason
from opx.durability.store import Claim, ClaimOutcome, ExecutionStore, Lease, StoreUnavailable
from opx.graph.build import GraphDeps, build_graph
from opx.graph.state import GraphState
from opx.runtime.intake import Accepted, AlarmNotFiring

Progress = Callable[[str, dict[str, Any]], None]
Clock = Callable[[], float]


@dataclass(frozen=True)
class Execution:
    """The result; whether it was a stored one returned unchanged; which attempt produced it and
    whether that attempt picked up from its checkpoints."""

    result: ExecutionResult
    reused: bool = False
    attempt: int = 1
    resumed: bool = False
    # False when the lease was taken over before the result could be stored.
    stored: bool = True


def thread_id(execution_id: str, attempt: int) -> str:
    """Checkpoint thread of an attempt: the execution id, then ``#2``, ``#3`` for later attempts."""
    return execution_id if attempt == 1 else f"{execution_id}#{attempt}"


def graph_config(execution_id: str, attempt: int, incident_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id(execution_id, attempt),
            "incident_id": incident_id,
        }
    }


def graph_input(incident: Incident, execution_id: str, attempt: int) -> GraphState:
    return {
        "incident": incident.model_dump(mode="json"),
        "execution_id": execution_id,
        "attempt": attempt,
    }


def skipped(event: AlarmNotFiring) -> Execution:
    return Execution(
        ExecutionResult(
            incident_id=event.incident_id,
            execution_id=event.execution_id,
            status=ExecutionStatus.SKIPPED,
            reason=Reason.ALARM_NOT_FIRING,
        )
    )


def _unfinished(accepted: Accepted, status: ExecutionStatus, reason: Reason) -> ExecutionResult:
    return ExecutionResult(
        incident_id=accepted.incident.incident_id,
        execution_id=accepted.execution_id,
        status=status,
        reason=reason,
    )


async def execute(
    accepted: Accepted,
    *,
    deps: GraphDeps,
    store: ExecutionStore,
    checkpointer: BaseCheckpointSaver[Any],
    owner: str | None = None,
    on_progress: Progress | None = None,
    force: bool = False,
    deadline: float | None = None,
    bundle: str | None = None,
    clock: Clock = time.time,
) -> Execution:
    """Run (or resume, or return the stored result of) the execution for one incident.

    ``deadline`` (epoch seconds; default now + ``lease_seconds``) is both the lease expiry and the
    moment this call stops: an attempt still running then is released INCOMPLETE, to be resumed
    by a later delivery. ``force`` starts a new attempt even when a final result is stored."""
    owner = owner or uuid.uuid4().hex
    now = clock()
    expires = now + deps.settings.lease_seconds if deadline is None else deadline
    if expires <= now:
        return Execution(_unfinished(accepted, ExecutionStatus.INCOMPLETE, Reason.DEADLINE))
    claim = store.claim(
        accepted.execution_id,
        accepted.incident.incident_id,
        owner,
        now=now,
        expires_at=expires,
        force=force,
        bundle=bundle,
    )
    if claim.outcome is ClaimOutcome.FINISHED and claim.record.result is not None:
        return Execution(claim.record.result, reused=True, attempt=claim.record.attempt)
    if claim.outcome is not ClaimOutcome.CLAIMED:
        return Execution(
            _unfinished(accepted, ExecutionStatus.IN_PROGRESS, Reason.LEASE_HELD),
            attempt=claim.record.attempt,
        )
    return await _run_claimed(accepted, claim, deps, store, checkpointer, on_progress, clock)


async def _run_claimed(
    accepted: Accepted,
    claim: Claim,
    deps: GraphDeps,
    store: ExecutionStore,
    checkpointer: BaseCheckpointSaver[Any],
    on_progress: Progress | None,
    clock: Clock,
) -> Execution:
    lease, attempt, started = claim.lease, claim.record.attempt, clock()
    graph = build_graph(deps, checkpointer)
    config = graph_config(accepted.execution_id, attempt, accepted.incident.incident_id)
    snapshot = await graph.aget_state(config)
    # A thread with pending nodes resumes from its last checkpoint and the writes saved with it;
    # a finished thread (stopped before its result was stored) only needs storing.
    finished = not snapshot.next and "result" in snapshot.values
    resumed = bool(snapshot.next) or finished
    if not finished:
        first = None if resumed else graph_input(accepted.incident, accepted.execution_id, attempt)

        def release(status: ExecutionStatus, reason: Reason) -> None:
            # Best effort: when the store itself is down, the lease simply expires.
            with contextlib.suppress(StoreUnavailable):
                store.release(accepted.execution_id, lease, status, reason, clock())

        if not await _run_until_deadline(graph, first, config, on_progress, lease, release, clock):
            result = _unfinished(accepted, ExecutionStatus.INCOMPLETE, Reason.DEADLINE)
            return Execution(result, attempt=attempt, resumed=resumed, stored=False)
    final = (await graph.aget_state(config)).values
    result = ExecutionResult.model_validate(final["result"]).model_copy(
        update={"timings": _timings(final, started, clock())}
    )
    stored = store.finish(accepted.execution_id, lease, result, clock())
    return Execution(result, attempt=attempt, resumed=resumed, stored=stored)


async def _run_until_deadline(
    graph: Any,
    first: GraphState | None,
    config: RunnableConfig,
    on_progress: Progress | None,
    lease: Lease,
    release: Callable[[ExecutionStatus, Reason], None],
    clock: Clock,
) -> bool:
    """Run the graph to its end (True) or to the lease's deadline (False, released INCOMPLETE);
    anything else that stops it releases the lease as :func:`_interrupted` says and propagates."""
    limit = asyncio.timeout(max(lease.expires_at - clock(), 0.0))
    try:
        async with limit:
            await _stream(graph, first, config, on_progress)
    except BaseException as exc:
        if isinstance(exc, TimeoutError) and limit.expired():  # our own deadline
            release(ExecutionStatus.INCOMPLETE, Reason.DEADLINE)
            return False
        release(*_interrupted(exc))
        raise
    return True


async def _stream(
    graph: Any, first: GraphState | None, config: RunnableConfig, on_progress: Progress | None
) -> None:
    # "sync": every checkpoint is saved before the next step starts, so a crash loses at most the
    # step that was running (and not the writes its finished nodes already saved).
    async for update in graph.astream(first, config, stream_mode="updates", durability="sync"):
        for node, values in update.items():
            if on_progress is not None:
                on_progress(node, values or {})


def _interrupted(exc: BaseException) -> tuple[ExecutionStatus, Reason]:
    """An interruption (cancel, ^C, an unreachable store) leaves the attempt to be resumed; any
    other error fails it, so the next delivery starts a fresh attempt on a new thread."""
    if isinstance(exc, Exception) and not isinstance(exc, StoreUnavailable | OSError):
        return ExecutionStatus.FAILED, Reason.INTERNAL_ERROR
    return ExecutionStatus.INCOMPLETE, Reason.INTERNAL_ERROR


def _timings(state: dict[str, Any], started: float, finished: float) -> dict[str, Any]:
    """Wall-clock figures, kept apart from everything replay compares."""
    agents = state.get("timings") or {}
    spans = sorted((t["started_at"], t["finished_at"]) for t in agents.values())
    busy, cursor = 0.0, started
    for begin, end in spans:  # union of agent intervals: parallel agents count once
        counted_from = max(begin, cursor)
        if end > counted_from:
            busy += end - counted_from
            cursor = end
    total = finished - started
    return {
        "started_at": started,
        "total_s": round(total, 6),
        "agent_work_s": round(busy, 6),
        "overhead_s": round(max(total - busy, 0.0), 6),
        "agents": {
            a: {"seconds": round(t["finished_at"] - t["started_at"], 6)}
            for a, t in sorted(agents.items())
        },
    }
