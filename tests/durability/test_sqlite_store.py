"""The SQLite execution store: claims, leases, final results and restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from opx.domain.result import ExecutionResult, ExecutionStatus, Reason
from opx.durability.sqlite_store import SqliteExecutionStore
from opx.durability.store import ClaimOutcome, StoreUnavailable


def result(status: ExecutionStatus, reason: Reason) -> ExecutionResult:
    return ExecutionResult(incident_id="INC", execution_id="e1", status=status, reason=reason)


@pytest.fixture
def store(tmp_path: Path) -> SqliteExecutionStore:
    return SqliteExecutionStore(tmp_path / "x" / "executions.sqlite")


def test_first_claim_runs_attempt_one(store: SqliteExecutionStore) -> None:
    claim = store.claim("e1", "INC", "a", 60, now=100)
    assert claim.outcome is ClaimOutcome.CLAIMED and not claim.resume
    assert claim.record.attempt == 1 and claim.record.status == "IN_PROGRESS"


def test_live_lease_blocks_a_second_owner(store: SqliteExecutionStore) -> None:
    store.claim("e1", "INC", "a", 60, now=100)
    assert store.claim("e1", "INC", "b", 60, now=130).outcome is ClaimOutcome.LEASE_HELD


def test_expired_lease_is_resumed_on_the_same_attempt(store: SqliteExecutionStore) -> None:
    store.claim("e1", "INC", "a", 60, now=100)
    claim = store.claim("e1", "INC", "b", 60, now=200)
    assert claim.outcome is ClaimOutcome.CLAIMED and claim.resume
    assert claim.record.attempt == 1 and claim.record.lease_owner == "b"


def test_final_result_is_returned_unchanged(store: SqliteExecutionStore) -> None:
    store.claim("e1", "INC", "a", 60, now=100)
    done = result(ExecutionStatus.COMPLETED, Reason.ROOT_CAUSE_IDENTIFIED)
    assert store.finish("e1", "a", done, now=110)
    claim = store.claim("e1", "INC", "b", 60, now=120)
    assert claim.outcome is ClaimOutcome.FINISHED
    assert claim.record.result == done


def test_finish_requires_the_lease(store: SqliteExecutionStore) -> None:
    store.claim("e1", "INC", "a", 60, now=100)
    store.claim("e1", "INC", "b", 60, now=200)  # a's lease expired and b took over
    done = result(ExecutionStatus.COMPLETED, Reason.ROOT_CAUSE_IDENTIFIED)
    assert not store.finish("e1", "a", done, now=210)
    assert store.finish("e1", "b", done, now=210)


def test_all_core_agents_failed_starts_a_new_attempt(store: SqliteExecutionStore) -> None:
    store.claim("e1", "INC", "a", 60, now=100)
    store.finish(
        "e1", "a", result(ExecutionStatus.NO_RECOMMENDATION, Reason.ALL_CORE_AGENTS_FAILED), now=110
    )
    claim = store.claim("e1", "INC", "b", 60, now=120)
    assert claim.outcome is ClaimOutcome.CLAIMED and not claim.resume
    assert claim.record.attempt == 2


def test_incomplete_is_resumed(store: SqliteExecutionStore) -> None:
    store.claim("e1", "INC", "a", 60, now=100)
    store.release("e1", "a", "INCOMPLETE", "DEADLINE", now=105)
    claim = store.claim("e1", "INC", "a", 60, now=106)
    assert claim.outcome is ClaimOutcome.CLAIMED and claim.resume and claim.record.attempt == 1


def test_list_and_get(store: SqliteExecutionStore) -> None:
    store.claim("e1", "INC", "a", 60, now=100)
    store.claim("e2", "INC2", "a", 60, now=200)
    assert [r.execution_id for r in store.list()] == ["e2", "e1"]
    assert [r.execution_id for r in store.list(status="COMPLETED")] == []
    assert store.get("nope") is None


def test_unwritable_location_is_an_infrastructure_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailable):
        SqliteExecutionStore(blocker / "executions.sqlite")
