"""execute() against the stored record: duplicates, attempts, leases, deadlines and fencing."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from opx.agents.roster import ALL_AGENTS, CORE_AGENTS, KNOWLEDGE, RESPONSE, SIGNAL
from opx.domain.errors import ErrorCode
from opx.domain.result import ExecutionResult
from opx.durability.sqlite_store import SqliteExecutionStore
from opx.durability.store import Lease
from opx.runtime.execute import Execution, execute, thread_id
from opx.runtime.intake import Accepted
from tests.runtime.builders import (
    ScriptedBackend,
    accepted,
    assert_exactly_one_ran,
    deliver_at_once,
    make_deps,
)


class Crash(BaseException):
    """Stands for the process dying (not an ordinary exception the runner would contain)."""


def comparable(result: ExecutionResult) -> dict[str, Any]:
    return result.model_dump(mode="json", exclude={"timings"})


@pytest.fixture
async def saver(tmp_path: Path) -> AsyncIterator[AsyncSqliteSaver]:
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "cp.sqlite")) as s:
        yield s


@pytest.fixture
def store(tmp_path: Path) -> SqliteExecutionStore:
    return SqliteExecutionStore(tmp_path / "ex.sqlite")


async def deliver(
    backend: Any,
    tmp_path: Path,
    saver: AsyncSqliteSaver,
    store: Any,
    event: Accepted | None = None,
    **kw: Any,
) -> Execution:
    deps = make_deps(backend, tmp_path)
    return await execute(event or accepted(), deps=deps, store=store, checkpointer=saver, **kw)


def threads(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return sorted(r[0] for r in db.execute("SELECT DISTINCT thread_id FROM checkpoints"))


def test_thread_ids_keep_attempts_apart() -> None:
    assert thread_id("abc", 1) == "abc"
    assert thread_id("abc", 3) == "abc#3"


async def test_ten_deliveries_in_a_row_run_once(
    tmp_path: Path, saver: AsyncSqliteSaver, store: SqliteExecutionStore
) -> None:
    backend = ScriptedBackend()
    runs = [await deliver(backend, tmp_path, saver, store) for _ in range(10)]
    assert [r.reused for r in runs] == [False] + [True] * 9
    assert all(r.result == runs[0].result for r in runs)
    assert backend.calls == dict.fromkeys(ALL_AGENTS, 1)
    (record,) = store.list()
    assert (record.attempt, record.fencing_token) == (1, 1)


def test_ten_concurrent_deliveries_run_once(tmp_path: Path) -> None:
    backend = ScriptedBackend(delay_s=0.05)

    async def one(barrier: threading.Barrier) -> Execution:
        async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "cp.sqlite")) as s:
            store = SqliteExecutionStore(tmp_path / "ex.sqlite")
            barrier.wait()  # every worker claims at the same moment
            return await execute(
                accepted(), deps=make_deps(backend, tmp_path), store=store, checkpointer=s
            )

    runs = deliver_at_once(10, one)
    assert len(runs) == 10
    assert_exactly_one_ran(runs, backend)
    (record,) = SqliteExecutionStore(tmp_path / "ex.sqlite").list()
    assert (record.status, record.attempt, record.fencing_token) == ("COMPLETED", 1, 1)


async def test_a_live_lease_gives_in_progress_without_running(
    tmp_path: Path, saver: AsyncSqliteSaver, store: SqliteExecutionStore
) -> None:
    event = accepted()
    store.claim(event.execution_id, "INC-7", "other", now=time.time(), expires_at=time.time() + 600)
    backend = ScriptedBackend()
    execution = await deliver(backend, tmp_path, saver, store, event)
    assert (execution.result.status, execution.result.reason) == ("IN_PROGRESS", "LEASE_HELD")
    assert sum(backend.calls.values()) == 0


async def test_all_core_agents_failed_retries_on_a_new_thread(
    tmp_path: Path, saver: AsyncSqliteSaver, store: SqliteExecutionStore
) -> None:
    failing = ScriptedBackend(scripts={a: [ErrorCode.INVALID_INPUT] for a in CORE_AGENTS})
    first = await deliver(failing, tmp_path, saver, store)
    assert first.result.reason == "ALL_CORE_AGENTS_FAILED" and first.attempt == 1
    second = await deliver(ScriptedBackend(), tmp_path, saver, store)
    assert second.attempt == 2 and not second.reused and not second.resumed
    assert second.result.status == "COMPLETED"
    # The retried attempt has its own trace: nothing of attempt 1 leaks into it.
    assert [t.node for t in second.result.execution_trace].count(SIGNAL) == 1
    event_id = accepted().execution_id
    assert threads(tmp_path / "cp.sqlite") == [event_id, f"{event_id}#2"]
    third = await deliver(ScriptedBackend(), tmp_path, saver, store)
    assert third.reused and third.result == second.result


async def test_force_starts_a_new_attempt(
    tmp_path: Path, saver: AsyncSqliteSaver, store: SqliteExecutionStore
) -> None:
    first = await deliver(ScriptedBackend(), tmp_path, saver, store)
    backend = ScriptedBackend()
    forced = await deliver(backend, tmp_path, saver, store, force=True)
    assert forced.attempt == 2 and not forced.reused
    assert backend.calls == dict.fromkeys(ALL_AGENTS, 1)
    assert comparable(forced.result) == comparable(first.result)
    assert store.get(accepted().execution_id).result_attempt == 2  # type: ignore[union-attr]


async def test_the_deadline_stops_the_attempt_and_a_redelivery_resumes_it(
    tmp_path: Path, saver: AsyncSqliteSaver, store: SqliteExecutionStore
) -> None:
    slow = ScriptedBackend(scripts={SIGNAL: ["hang"]})
    stopped = await deliver(slow, tmp_path, saver, store, deadline=time.time() + 0.5)
    assert (stopped.result.status, stopped.result.reason) == ("INCOMPLETE", "DEADLINE")
    record = store.get(accepted().execution_id)
    assert record is not None and (record.status, record.lease_owner) == ("INCOMPLETE", None)
    resumed_backend = ScriptedBackend()
    resumed = await deliver(resumed_backend, tmp_path, saver, store)
    assert resumed.resumed and resumed.attempt == 1 and resumed.result.status == "COMPLETED"
    # Only the agent cut off by the deadline (and those after it) ran again.
    assert resumed_backend.calls == {SIGNAL: 1, KNOWLEDGE: 1, RESPONSE: 1}


async def test_a_deadline_already_past_claims_nothing(
    tmp_path: Path, saver: AsyncSqliteSaver, store: SqliteExecutionStore
) -> None:
    execution = await deliver(ScriptedBackend(), tmp_path, saver, store, deadline=time.time() - 1)
    assert execution.result.status == "INCOMPLETE" and store.list() == []


async def test_a_crash_releases_incomplete_and_the_next_delivery_resumes(
    tmp_path: Path, saver: AsyncSqliteSaver, store: SqliteExecutionStore
) -> None:
    def crash_on_risk(agent_id: str) -> None:
        if agent_id == "risk-blast-radius":
            raise Crash(agent_id)

    with pytest.raises(Crash):
        await deliver(ScriptedBackend(on_invoke=crash_on_risk), tmp_path, saver, store)
    assert store.get(accepted().execution_id).status == "INCOMPLETE"  # type: ignore[union-attr]
    backend = ScriptedBackend()
    resumed = await deliver(backend, tmp_path, saver, store)
    assert resumed.resumed and resumed.result.status == "COMPLETED"
    assert backend.calls["risk-blast-radius"] == 1 and backend.calls[SIGNAL] == 0


@pytest.mark.parametrize(
    ("error", "status", "next_attempt"),
    [
        (RuntimeError("a bug"), "FAILED", 2),  # an error: the next delivery starts over
        (OSError("disk unreadable"), "INCOMPLETE", 1),  # infrastructure: it resumes
        (TimeoutError("a call timed out"), "INCOMPLETE", 1),  # not our own deadline
    ],
)
async def test_an_error_releases_the_lease_for_the_next_delivery(
    error: Exception,
    status: str,
    next_attempt: int,
    tmp_path: Path,
    saver: AsyncSqliteSaver,
    store: SqliteExecutionStore,
) -> None:
    class BrokenPricing:
        version = "broken"

        def price(self, model: str | None) -> None:
            raise error

    deps = make_deps(ScriptedBackend(), tmp_path)
    broken = replace(deps, pricing=BrokenPricing())  # type: ignore[arg-type]
    with pytest.raises(type(error)):
        await execute(accepted(), deps=broken, store=store, checkpointer=saver)
    record = store.get(accepted().execution_id)
    assert record is not None and (record.status, record.reason) == (status, "INTERNAL_ERROR")
    assert record.lease_owner is None
    retried = await deliver(ScriptedBackend(), tmp_path, saver, store)
    assert retried.attempt == next_attempt and retried.result.status == "COMPLETED"


async def test_a_finished_graph_whose_result_was_not_stored_is_only_stored(
    tmp_path: Path, saver: AsyncSqliteSaver, store: SqliteExecutionStore
) -> None:
    class CrashingFinish:
        def __init__(self, inner: SqliteExecutionStore) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def finish(self, *args: Any) -> bool:
            raise Crash("died before storing the result")

    with pytest.raises(Crash):
        await deliver(ScriptedBackend(), tmp_path, saver, CrashingFinish(store))
    backend = ScriptedBackend()
    assert (await deliver(backend, tmp_path, saver, store)).result.status == "IN_PROGRESS"
    # Delivered again after the dead holder's lease expired.
    stored = await deliver(backend, tmp_path, saver, store, clock=lambda: time.time() + 10_000)
    assert stored.resumed and stored.result.status == "COMPLETED"
    assert sum(backend.calls.values()) == 0
    uninterrupted = await deliver(
        ScriptedBackend(),
        tmp_path / "other",
        saver,
        SqliteExecutionStore(tmp_path / "other.sqlite"),
        accepted("INC-8"),
    )
    expected = comparable(uninterrupted.result)
    expected.update(incident_id="INC-7", execution_id=accepted().execution_id)
    assert comparable(stored.result) == expected


async def test_a_holder_whose_lease_was_taken_over_cannot_store(
    tmp_path: Path, saver: AsyncSqliteSaver, store: SqliteExecutionStore
) -> None:
    event = accepted()
    taken: list[Lease] = []

    def take_over(agent_id: str) -> None:
        if agent_id == SIGNAL and not taken:  # another worker, long after our deadline
            claim = store.claim(
                event.execution_id, "INC-7", "usurper", now=1e12, expires_at=1e12 + 60
            )
            taken.append(claim.lease)

    execution = await deliver(ScriptedBackend(on_invoke=take_over), tmp_path, saver, store, event)
    assert execution.result.status == "COMPLETED" and not execution.stored
    record = store.get(event.execution_id)
    assert record is not None and record.status == "IN_PROGRESS" and record.result is None
    assert (record.lease_owner, record.fencing_token) == ("usurper", taken[0].token)
