"""execute(): one incident event to one result, idempotently, resuming where it stopped."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

from opx.domain.result import ExecutionResult, ExecutionStatus, Reason
from opx.durability.store import ClaimOutcome, ExecutionStore
from opx.graph.build import GraphDeps, build_graph
from opx.graph.state import GraphState
from opx.runtime.intake import Accepted, AlarmNotFiring

Progress = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Execution:
    """The result, and whether it was a stored one returned unchanged."""

    result: ExecutionResult
    reused: bool = False


def thread_id(execution_id: str, attempt: int) -> str:
    """Checkpoint thread of an attempt: the execution id, then ``#2``, ``#3`` for later attempts."""
    return execution_id if attempt == 1 else f"{execution_id}#{attempt}"


def skipped(event: AlarmNotFiring) -> Execution:
    return Execution(
        ExecutionResult(
            incident_id=event.incident_id,
            execution_id=event.execution_id,
            status=ExecutionStatus.SKIPPED,
            reason=Reason.ALARM_NOT_FIRING,
        )
    )


async def execute(
    accepted: Accepted,
    *,
    deps: GraphDeps,
    store: ExecutionStore,
    checkpointer: BaseCheckpointSaver[Any],
    owner: str | None = None,
    on_progress: Progress | None = None,
) -> Execution:
    """Run (or resume, or return the stored result of) the execution for one incident."""
    owner = owner or uuid.uuid4().hex
    incident, execution_id = accepted.incident, accepted.execution_id
    started = time.time()
    claim = store.claim(
        execution_id, incident.incident_id, owner, deps.settings.lease_seconds, started
    )
    if claim.outcome is ClaimOutcome.FINISHED and claim.record.result is not None:
        return Execution(claim.record.result, reused=True)
    if claim.outcome is ClaimOutcome.LEASE_HELD:
        return Execution(
            ExecutionResult(
                incident_id=incident.incident_id,
                execution_id=execution_id,
                status=ExecutionStatus.IN_PROGRESS,
                reason=Reason.LEASE_HELD,
            )
        )
    graph = build_graph(deps, checkpointer)
    config: RunnableConfig = {
        "configurable": {
            "thread_id": thread_id(execution_id, claim.record.attempt),
            "incident_id": incident.incident_id,
        }
    }
    graph_input: GraphState | None = {
        "incident": incident.model_dump(mode="json"),
        "execution_id": execution_id,
        "attempt": claim.record.attempt,
    }
    if claim.resume and (await graph.aget_state(config)).next:
        graph_input = None  # pick up from the last checkpoint and its pending writes
    try:
        async for update in graph.astream(graph_input, config, stream_mode="updates"):
            for node, values in update.items():
                if on_progress is not None:
                    on_progress(node, values or {})
    except BaseException:
        store.release(
            execution_id,
            owner,
            ExecutionStatus.INCOMPLETE.value,
            Reason.INTERNAL_ERROR.value,
            time.time(),
        )
        raise
    final = (await graph.aget_state(config)).values
    result = ExecutionResult.model_validate(final["result"]).model_copy(
        update={"timings": _timings(final, started, time.time())}
    )
    store.finish(execution_id, owner, result, time.time())
    return Execution(result)


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
