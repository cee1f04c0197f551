"""The execution stores (SQLite, and DynamoDB on dynalite): the delivery rule, fenced leases,
final results and attempts. Tests taking the ``store`` fixture run against both."""

from __future__ import annotations

import itertools
import random
import sqlite3
import threading
from pathlib import Path

import pytest

from opx.domain.hypothesis import Hypothesis, HypothesisStatus
from opx.domain.result import ExecutionResult, ExecutionStatus, Reason, TraceEntry
from opx.durability.dynamodb_executions import DynamoDBExecutionStore, create_results_table
from opx.durability.dynamodb_local import local_client
from opx.durability.sqlite_store import SqliteExecutionStore
from opx.durability.store import (
    Claim,
    ClaimOutcome,
    ExecutionRecord,
    Lease,
    StoreUnavailable,
    plan_claim,
)


def result(status: ExecutionStatus, reason: Reason) -> ExecutionResult:
    return ExecutionResult(incident_id="INC", execution_id="e1", status=status, reason=reason)


DONE = result(ExecutionStatus.COMPLETED, Reason.ROOT_CAUSE_IDENTIFIED)
NO_ROOT = result(ExecutionStatus.NO_RECOMMENDATION, Reason.NO_CONFIDENT_ROOT_CAUSE)
ALL_FAILED = result(ExecutionStatus.NO_RECOMMENDATION, Reason.ALL_CORE_AGENTS_FAILED)


_TABLES = itertools.count(1)


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SqliteExecutionStore:
    if request.param == "sqlite":
        return SqliteExecutionStore(tmp_path / "x" / "executions.sqlite")
    client = local_client(request.getfixturevalue("dynalite_endpoint"))
    name = f"opx-executions-{next(_TABLES):04d}"
    create_results_table(client, name)
    # Same protocol, so the same tests hold; the annotation names the reference implementation.
    return DynamoDBExecutionStore(name, client=client)  # type: ignore[return-value]


def claim(
    store: SqliteExecutionStore,
    owner: str,
    now: float,
    *,
    force: bool = False,
    bundle: str | None = None,
) -> Claim:
    return store.claim("e1", "INC", owner, now=now, expires_at=now + 60, force=force, bundle=bundle)


def test_first_claim_runs_attempt_one_with_token_one(store: SqliteExecutionStore) -> None:
    c = claim(store, "a", 100)
    assert c.outcome is ClaimOutcome.CLAIMED and not c.resume
    assert c.record.attempt == 1 and c.record.status == "IN_PROGRESS"
    assert c.lease == Lease("a", 160, 1)


def test_live_lease_blocks_a_second_owner(store: SqliteExecutionStore) -> None:
    claim(store, "a", 100)
    held = claim(store, "b", 130)
    assert held.outcome is ClaimOutcome.LEASE_HELD
    assert held.record.lease_owner == "a" and held.record.fencing_token == 1
    with pytest.raises(ValueError):
        _ = held.lease


def test_the_lease_expires_at_the_holders_own_deadline(store: SqliteExecutionStore) -> None:
    store.claim("e1", "INC", "a", now=100, expires_at=105)
    assert claim(store, "b", 104.9).outcome is ClaimOutcome.LEASE_HELD
    assert claim(store, "b", 105).outcome is ClaimOutcome.CLAIMED


def test_expired_lease_is_resumed_on_the_same_attempt_with_a_new_token(
    store: SqliteExecutionStore,
) -> None:
    claim(store, "a", 100)
    c = claim(store, "b", 200)
    assert c.outcome is ClaimOutcome.CLAIMED and c.resume
    assert c.record.attempt == 1 and c.lease == Lease("b", 260, 2)


def test_final_result_is_returned_unchanged(store: SqliteExecutionStore) -> None:
    lease = claim(store, "a", 100).lease
    assert store.finish("e1", lease, DONE, now=110)
    c = claim(store, "b", 120)
    assert c.outcome is ClaimOutcome.FINISHED and c.record.result == DONE
    assert c.record.result_attempt == 1 and c.record.lease_owner is None
    assert c.record.fencing_token == 1  # a returned result claims nothing


def test_no_confident_root_cause_is_final(store: SqliteExecutionStore) -> None:
    store.finish("e1", claim(store, "a", 100).lease, NO_ROOT, now=110)
    assert claim(store, "b", 120).outcome is ClaimOutcome.FINISHED


def test_a_stale_holder_cannot_finish_or_release(store: SqliteExecutionStore) -> None:
    stale = claim(store, "a", 100).lease
    fresh = claim(store, "b", 200).lease  # a's lease expired and b took over
    assert not store.finish("e1", stale, DONE, now=210)
    assert not store.release("e1", stale, ExecutionStatus.INCOMPLETE, Reason.DEADLINE, now=210)
    assert store.get("e1").status == "IN_PROGRESS"  # type: ignore[union-attr]
    assert store.finish("e1", fresh, DONE, now=210)


def test_the_same_owner_with_an_old_token_is_refused(store: SqliteExecutionStore) -> None:
    old = claim(store, "a", 100).lease
    store.release("e1", old, ExecutionStatus.INCOMPLETE, Reason.DEADLINE, now=101)
    new = claim(store, "a", 102).lease
    assert new.token == old.token + 1
    assert not store.finish("e1", old, DONE, now=103)
    assert store.finish("e1", new, DONE, now=103)


def test_all_core_agents_failed_starts_a_new_attempt(store: SqliteExecutionStore) -> None:
    store.finish("e1", claim(store, "a", 100).lease, ALL_FAILED, now=110)
    c = claim(store, "b", 120)
    assert c.outcome is ClaimOutcome.CLAIMED and not c.resume
    assert c.record.attempt == 2 and c.lease.token == 2
    # The earlier attempt's result stays readable, marked with its attempt.
    assert c.record.result == ALL_FAILED and c.record.result_attempt == 1


def test_failed_starts_a_new_attempt(store: SqliteExecutionStore) -> None:
    lease = claim(store, "a", 100).lease
    store.release("e1", lease, ExecutionStatus.FAILED, Reason.INTERNAL_ERROR, now=105)
    c = claim(store, "a", 106)
    assert c.outcome is ClaimOutcome.CLAIMED and not c.resume and c.record.attempt == 2


def test_incomplete_is_resumed(store: SqliteExecutionStore) -> None:
    lease = claim(store, "a", 100).lease
    assert store.release("e1", lease, ExecutionStatus.INCOMPLETE, Reason.DEADLINE, now=105)
    c = claim(store, "a", 106)
    assert c.outcome is ClaimOutcome.CLAIMED and c.resume and c.record.attempt == 1


def test_force_starts_a_new_attempt_even_after_a_final_result(
    store: SqliteExecutionStore,
) -> None:
    store.finish("e1", claim(store, "a", 100).lease, DONE, now=110)
    c = claim(store, "b", 120, force=True)
    assert c.outcome is ClaimOutcome.CLAIMED and not c.resume and c.record.attempt == 2


def test_force_does_not_break_a_live_lease(store: SqliteExecutionStore) -> None:
    claim(store, "a", 100)
    assert claim(store, "b", 110, force=True).outcome is ClaimOutcome.LEASE_HELD


def test_the_bundle_is_kept_across_attempts(store: SqliteExecutionStore) -> None:
    lease = claim(store, "a", 100, bundle="/b1").lease
    store.finish("e1", lease, ALL_FAILED, now=101)
    claim(store, "a", 102)
    assert store.get("e1").bundle == "/b1"  # type: ignore[union-attr]


def test_list_and_get(store: SqliteExecutionStore) -> None:
    store.claim("e1", "INC", "a", now=100, expires_at=160)
    store.claim("e2", "INC2", "a", now=200, expires_at=260)
    assert [r.execution_id for r in store.list()] == ["e2", "e1"]
    assert [r.execution_id for r in store.list(status="COMPLETED")] == []
    assert store.get("nope") is None


def test_concurrent_claims_grant_exactly_one_lease(tmp_path: Path) -> None:
    path = tmp_path / "executions.sqlite"
    SqliteExecutionStore(path)
    barrier = threading.Barrier(10)
    outcomes: list[ClaimOutcome] = []

    def deliver(i: int) -> None:
        store = SqliteExecutionStore(path)
        barrier.wait()
        outcomes.append(store.claim("e1", "INC", f"w{i}", now=100, expires_at=160).outcome)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count(ClaimOutcome.CLAIMED) == 1
    assert outcomes.count(ClaimOutcome.LEASE_HELD) == 9


def test_a_store_file_from_before_leases_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE executions (execution_id TEXT PRIMARY KEY, incident_id TEXT NOT NULL, "
            "status TEXT NOT NULL, reason TEXT, attempt INTEGER NOT NULL, lease_owner TEXT, "
            "lease_expires_at REAL, result_json TEXT, created_at REAL NOT NULL, "
            "updated_at REAL NOT NULL)"
        )
        db.execute(
            "INSERT INTO executions VALUES ('e1', 'INC', 'IN_PROGRESS', NULL, 1, 'a', 50, NULL, "
            "1, 1)"
        )
    store = SqliteExecutionStore(path)
    c = claim(store, "b", 100)
    assert c.resume and c.lease.token == 1


def test_unwritable_location_is_an_infrastructure_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailable):
        SqliteExecutionStore(blocker / "executions.sqlite")


def record(status: str, reason: str | None = None, **kw: object) -> ExecutionRecord:
    fields: dict[str, object] = {
        "execution_id": "e1",
        "incident_id": "INC",
        "status": status,
        "reason": reason,
        "attempt": 3,
        "lease_owner": None,
        "lease_expires_at": None,
        "result": None,
        "created_at": 0.0,
        "updated_at": 0.0,
        "fencing_token": 7,
    }
    fields.update(kw)
    return ExecutionRecord(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, (ClaimOutcome.CLAIMED, 1, False)),
        (record("COMPLETED", "ROOT_CAUSE_IDENTIFIED"), (ClaimOutcome.FINISHED, 3, False)),
        (record("NO_RECOMMENDATION", "NO_CONFIDENT_ROOT_CAUSE"), (ClaimOutcome.FINISHED, 3, False)),
        (
            record("IN_PROGRESS", lease_owner="x", lease_expires_at=11.0),
            (ClaimOutcome.LEASE_HELD, 3, False),
        ),
        (
            record("IN_PROGRESS", lease_owner="x", lease_expires_at=10.0),
            (ClaimOutcome.CLAIMED, 3, True),
        ),
        (record("INCOMPLETE", "DEADLINE"), (ClaimOutcome.CLAIMED, 3, True)),
        (record("FAILED", "INTERNAL_ERROR"), (ClaimOutcome.CLAIMED, 4, False)),
        (record("NO_RECOMMENDATION", "ALL_CORE_AGENTS_FAILED"), (ClaimOutcome.CLAIMED, 4, False)),
    ],
)
def test_the_delivery_table(stored: ExecutionRecord | None, expected: tuple[object, ...]) -> None:
    plan = plan_claim(stored, "me", now=10.0)
    assert (plan.outcome, plan.attempt, plan.resume) == expected


def big_result(
    status: ExecutionStatus, reason: Reason, kilobytes: int, seed: int
) -> ExecutionResult:
    """A result whose JSON barely compresses: ``kilobytes`` KB of hex in its trace."""
    noise = random.Random(seed).randbytes(kilobytes * 512).hex()
    trace = [TraceEntry(node=f"n{i}", status="ok", detail=noise[i::8]) for i in range(8)]
    return result(status, reason).model_copy(update={"execution_trace": trace})


def test_a_result_beyond_the_dynamodb_item_limit_round_trips(store: SqliteExecutionStore) -> None:
    huge = big_result(ExecutionStatus.COMPLETED, Reason.ROOT_CAUSE_IDENTIFIED, 1200, seed=1)
    assert store.finish("e1", claim(store, "a", 100).lease, huge, now=110)
    assert store.get("e1").result == huge  # type: ignore[union-attr]
    (listed,) = store.list()
    assert listed.result == huge and listed.status == "COMPLETED"
    assert claim(store, "b", 120).outcome is ClaimOutcome.FINISHED


def _with_killed_agent(done: ExecutionResult) -> ExecutionResult:
    killed = Hypothesis(
        agent_id="knowledge-rag",
        status=HypothesisStatus.SKIPPED,
        findings={"reason": Reason.KILL_SWITCH.value},
    )
    return done.model_copy(update={"hypotheses": {"knowledge-rag": killed}})


def test_a_result_an_agent_kill_switch_cut_short_is_not_final(
    store: SqliteExecutionStore,
) -> None:
    partial = _with_killed_agent(DONE)
    assert DONE.final and not partial.final and partial.kill_switched == ["knowledge-rag"]
    store.finish("e1", claim(store, "a", 100).lease, partial, now=110)
    again = claim(store, "b", 120)
    assert again.outcome is ClaimOutcome.CLAIMED and not again.resume
    assert again.record.attempt == 2
    # Its result stays readable until the new attempt replaces it.
    assert again.record.result == partial and again.record.result_attempt == 1
    store.finish("e1", again.lease, DONE, now=130)
    assert claim(store, "c", 140).outcome is ClaimOutcome.FINISHED


def test_a_skipped_agent_without_the_kill_switch_reason_keeps_a_result_final() -> None:
    other = Hypothesis(agent_id="knowledge-rag", status=HypothesisStatus.SKIPPED)
    assert DONE.model_copy(update={"hypotheses": {"knowledge-rag": other}}).final
