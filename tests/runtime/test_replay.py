"""Replay from recorded agent outputs, re-runs, the comparison and the checkpoint listing."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from opx.agents.base import AgentContext
from opx.agents.recorded import RecordedBackend
from opx.agents.roster import CHANGE, CORE_AGENTS, HISTORICAL, KNOWLEDGE, RISK, SIGNAL
from opx.agents.runner import RetryPolicy, run_agent
from opx.domain.errors import ErrorCode, ErrorInfo
from opx.domain.hypothesis import AttemptRecord, Hypothesis, HypothesisStatus
from opx.durability.sqlite_store import SqliteExecutionStore
from opx.graph.build import GraphDeps
from opx.runtime.execute import Execution, execute
from opx.runtime.replay import (
    REPLAY_COUNT_METRIC,
    ReplayRejected,
    ReplayReport,
    differences,
    list_checkpoints,
    replay,
    run_in_replay_loop,
    skip_to_deadline,
)
from opx.tools.memory import InMemoryTools
from tests.runtime.builders import PRICED_MODEL, ScriptedBackend, Step, accepted, make_deps


class Crash(BaseException):
    """Stands for the process dying."""


@pytest.fixture
async def saver(tmp_path: Path) -> AsyncIterator[AsyncSqliteSaver]:
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "cp.sqlite")) as s:
        yield s


@pytest.fixture
def store(tmp_path: Path) -> SqliteExecutionStore:
    return SqliteExecutionStore(tmp_path / "ex.sqlite")


async def original(
    deps: GraphDeps, saver: AsyncSqliteSaver, store: SqliteExecutionStore, **kw: Any
) -> Execution:
    return await execute(accepted(), deps=deps, store=store, checkpointer=saver, **kw)


async def replayed(
    deps: GraphDeps, saver: AsyncSqliteSaver, store: SqliteExecutionStore, **kw: Any
) -> ReplayReport:
    return await replay(store, saver, deps.settings, deps.pricing, accepted().execution_id, **kw)


# A run with everything replay must reproduce: retried failures with their codes, a non-retryable
# failure, one whose retryable flag is not its code's default, a timeout after a failed attempt,
# and tokens on a priced model (so cost is not zero).
MIXED_SCRIPTS: dict[str, list[Step]] = {
    KNOWLEDGE: [(ErrorCode.INTERNAL_ERROR, False)],
    SIGNAL: [ErrorCode.RATE_LIMIT_EXCEEDED, ErrorCode.BEDROCK_THROTTLING, "ok"],
    HISTORICAL: [ErrorCode.ACCESS_DENIED],
    CHANGE: [ErrorCode.DATA_SOURCE_UNAVAILABLE, "hang"],
}


async def test_replay_of_a_mixed_run_is_identical_with_zero_external_calls(
    tmp_path: Path, saver: AsyncSqliteSaver, store: SqliteExecutionStore
) -> None:
    backend = ScriptedBackend(scripts=MIXED_SCRIPTS, model=PRICED_MODEL, tokens=(1200, 300))
    deps = make_deps(backend, tmp_path, env={"OPX_DEADLINE_CHANGE_INTELLIGENCE_S": "0.3"})
    first = (await original(deps, saver, store)).result
    statuses = {a: h.status for a, h in first.hypotheses.items()}
    assert statuses[CHANGE] == "TIMEOUT" and statuses[HISTORICAL] == "FAILURE"
    assert len(first.hypotheses[KNOWLEDGE].attempts) == 1
    assert [a.status for a in first.hypotheses[SIGNAL].attempts] == [
        "FAILURE",
        "FAILURE",
        "SUCCESS",
    ]
    assert first.cost.total_usd > 0  # type: ignore[union-attr]
    counted: list[tuple[str, float]] = []
    report = await replayed(deps, saver, store, metrics=lambda n, v: counted.append((n, v)))
    assert report.identical, report.differences
    assert report.external_calls == 0 and report.attempt == 1 and not report.rerun
    assert counted == [(REPLAY_COUNT_METRIC, 1.0)]


async def test_replay_does_not_touch_the_original_checkpoints(
    tmp_path: Path, saver: AsyncSqliteSaver, store: SqliteExecutionStore
) -> None:
    deps = make_deps(ScriptedBackend(), tmp_path)
    await original(deps, saver, store)

    def rows() -> tuple[int, int]:
        with sqlite3.connect(tmp_path / "cp.sqlite") as db:
            return (
                db.execute("SELECT count(*) FROM checkpoints").fetchone()[0],
                db.execute("SELECT count(*) FROM writes").fetchone()[0],
            )

    before = rows()
    assert (await replayed(deps, saver, store)).identical
    assert rows() == before


async def test_a_changed_threshold_is_reported_with_paths(
    tmp_path: Path, saver: AsyncSqliteSaver, store: SqliteExecutionStore
) -> None:
    deps = make_deps(ScriptedBackend(), tmp_path)
    await original(deps, saver, store)
    strict = replace(deps, settings=replace(deps.settings, confidence_threshold=0.99))
    report = await replayed(strict, saver, store)
    assert not report.identical
    paths = {d.path: d for d in report.differences}
    assert paths["consensus.threshold"].original == 0.45
    assert paths["consensus.threshold"].replayed == 0.99
    assert paths["status"].original == "COMPLETED"
    assert report.to_json()["identical"] is False


async def test_a_tampered_stored_result_is_caught(
    tmp_path: Path, saver: AsyncSqliteSaver, store: SqliteExecutionStore
) -> None:
    deps = make_deps(ScriptedBackend(), tmp_path)
    await original(deps, saver, store)
    with sqlite3.connect(tmp_path / "ex.sqlite") as db:
        (raw,) = db.execute("SELECT result_json FROM executions").fetchone()
        doc = json.loads(raw)
        doc["consensus"]["confidence"] = 0.123
        db.execute("UPDATE executions SET result_json = ?", (json.dumps(doc),))
    report = await replayed(deps, saver, store)
    assert [d.path for d in report.differences] == ["consensus.confidence"]
    assert report.differences[0].original == 0.123


async def test_rerun_calls_the_agents_and_shows_what_changed(
    tmp_path: Path, saver: AsyncSqliteSaver, store: SqliteExecutionStore
) -> None:
    deps = make_deps(ScriptedBackend(), tmp_path)
    await original(deps, saver, store)
    again = ScriptedBackend()
    same = await replayed(deps, saver, store, rerun=make_deps(again, tmp_path))
    assert same.identical and same.rerun and same.external_calls == 6 == sum(again.calls.values())
    changed = ScriptedBackend({**ScriptedBackend().causes, RISK: "cache"})
    report = await replayed(deps, saver, store, rerun=make_deps(changed, tmp_path))
    paths = [d.path for d in report.differences]
    assert "hypotheses.risk-blast-radius.root_cause.service" in paths


async def test_attempts_are_replayed_by_number(
    tmp_path: Path, saver: AsyncSqliteSaver, store: SqliteExecutionStore
) -> None:
    failing = ScriptedBackend(scripts={a: [ErrorCode.INVALID_INPUT] for a in CORE_AGENTS})
    first = await original(make_deps(failing, tmp_path), saver, store)
    second = await original(make_deps(ScriptedBackend(), tmp_path), saver, store)
    assert (first.attempt, second.attempt) == (1, 2)
    deps = make_deps(ScriptedBackend(), tmp_path)
    latest = await replayed(deps, saver, store)
    earlier = await replayed(deps, saver, store, attempt=1)
    assert latest.attempt == 2 and latest.identical
    assert earlier.attempt == 1 and earlier.identical  # the short cut is reproduced too
    with pytest.raises(ReplayRejected, match="no attempt 3"):
        await replayed(deps, saver, store, attempt=3)


async def test_the_budget_check_sees_the_original_model_even_when_no_agent_recorded_one(
    tmp_path: Path, saver: AsyncSqliteSaver, store: SqliteExecutionStore
) -> None:
    failing = ScriptedBackend(
        scripts={a: [ErrorCode.INVALID_INPUT] for a in CORE_AGENTS}, model="unpriced-model"
    )
    deps = make_deps(failing, tmp_path)
    first = (await original(deps, saver, store)).result
    budget = next(t for t in first.execution_trace if t.node == "budget_check")
    assert budget.status == "UNKNOWN_PRICE"
    assert (await replayed(deps, saver, store)).identical


async def test_unknown_and_unfinished_executions_are_rejected(
    tmp_path: Path, saver: AsyncSqliteSaver, store: SqliteExecutionStore
) -> None:
    deps = make_deps(ScriptedBackend(), tmp_path)
    with pytest.raises(ReplayRejected, match="unknown execution id"):
        await replayed(deps, saver, store)

    def crash(agent_id: str) -> None:
        raise Crash(agent_id)

    with pytest.raises(Crash):
        await original(make_deps(ScriptedBackend(on_invoke=crash), tmp_path), saver, store)
    with pytest.raises(ReplayRejected, match="has not finished"):
        await replayed(deps, saver, store)


async def test_checkpoints_list_each_step_and_what_an_interrupted_step_saved(
    tmp_path: Path, saver: AsyncSqliteSaver, store: SqliteExecutionStore
) -> None:
    def crash_on_risk(agent_id: str) -> None:
        if agent_id == RISK:
            raise Crash(agent_id)

    slow_risk = ScriptedBackend(on_invoke=crash_on_risk, scripts={RISK: ["ok"]})
    deps = make_deps(slow_risk, tmp_path)
    with pytest.raises(Crash):
        await original(deps, saver, store)
    listing = await list_checkpoints(
        store, saver, deps.settings, deps.pricing, accepted().execution_id
    )
    steps = [c.step for c in listing.checkpoints]
    assert steps == sorted(steps) and steps[0] == -1
    last = listing.checkpoints[-1]
    assert set(last.next) == set(CORE_AGENTS)
    assert RISK not in last.saved_writes and SIGNAL in last.saved_writes
    await original(make_deps(ScriptedBackend(), tmp_path), saver, store)
    done = await list_checkpoints(
        store, saver, deps.settings, deps.pricing, accepted().execution_id
    )
    assert done.checkpoints[-1].next == () and KNOWLEDGE in done.checkpoints[-1].agents_done
    assert done.to_json()["thread_id"] == accepted().execution_id


def test_a_recorded_timeout_fires_at_once_on_the_replay_loop() -> None:
    timeout = ErrorInfo.of(ErrorCode.TIMEOUT, "signal-intelligence did not finish within 30 s")
    throttled = ErrorInfo.of(ErrorCode.BEDROCK_THROTTLING, "slow down")
    recorded = Hypothesis.failed(SIGNAL, HypothesisStatus.TIMEOUT, timeout, "v9").model_copy(
        update={
            "attempts": [
                AttemptRecord(attempt=1, status=HypothesisStatus.FAILURE, error=throttled),
                AttemptRecord(attempt=2, status=HypothesisStatus.TIMEOUT, error=timeout),
            ]
        }
    )
    settings = make_deps(None, Path("unused")).settings  # the signal agent's deadline: 30 s
    backend = RecordedBackend({SIGNAL: recorded}, stall=skip_to_deadline(settings))
    ctx = AgentContext(incident=accepted().incident, tools=InMemoryTools("t"))

    async def no_sleep(seconds: float) -> None:
        return None

    async def play() -> Hypothesis:
        outcome = await run_agent(
            SIGNAL, backend, ctx, deadline_s=30.0, policy=RetryPolicy(), sleep=no_sleep
        )
        return outcome.hypothesis

    started = time.monotonic()
    played = run_in_replay_loop(play())
    assert time.monotonic() - started < 5
    assert played.model_dump() == recorded.model_dump()
    assert backend.calls[SIGNAL] == 2 and backend.version_of(SIGNAL) == "v9"


def test_differences_name_paths_and_missing_items() -> None:
    a = {"x": {"y": [1, 2, 3]}, "s": "same", "k": 1}
    b = {"x": {"y": [1, 5]}, "s": "same", "k": 1.5}
    found = [(d.path, d.original, d.replayed) for d in differences(a, b)]
    assert found == [("k", 1, 1.5), ("x.y[1]", 2, 5), ("x.y[2]", 3, None)]
    assert differences(a, a) == []
    assert [d.path for d in differences(1, 2)] == ["$"]
