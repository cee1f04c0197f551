"""The delivery marker on both stores (SQLite, and DynamoDB on dynalite and moto): a result is
published at most once per attempt, a failed publish can be retried, a dead publisher's marker
goes stale."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from opx.domain.result import ExecutionResult, ExecutionStatus, Reason
from opx.durability.dynamodb_executions import DynamoDBExecutionStore, create_results_table
from opx.durability.dynamodb_local import local_client
from opx.durability.sqlite_store import SqliteExecutionStore

_TABLES = itertools.count(1)
DONE = ExecutionResult(
    incident_id="INC",
    execution_id="e1",
    status=ExecutionStatus.COMPLETED,
    reason=Reason.ROOT_CAUSE_IDENTIFIED,
)


@pytest.fixture(params=["sqlite", "dynalite", "moto"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        return SqliteExecutionStore(tmp_path / "executions.sqlite")
    client = local_client(request.getfixturevalue(f"{request.param}_endpoint"))
    name = f"opx-delivery-{next(_TABLES):04d}"
    create_results_table(client, name)
    return DynamoDBExecutionStore(name, client=client)


def finished(store: Any, now: float = 100.0) -> int:
    claim = store.claim("e1", "INC", "w1", now=now, expires_at=now + 60)
    assert store.finish("e1", claim.lease, DONE, now)
    return int(claim.record.attempt)


def test_no_result_no_delivery(store: Any) -> None:
    assert not store.claim_delivery("e1", 1, 100.0, stale_after_s=300)
    store.claim("e1", "INC", "w1", now=100.0, expires_at=160.0)
    assert not store.claim_delivery("e1", 1, 100.0, stale_after_s=300)


def test_a_result_is_delivered_once(store: Any) -> None:
    attempt = finished(store)
    assert store.claim_delivery("e1", attempt, 101.0, stale_after_s=300)
    assert not store.claim_delivery("e1", attempt, 101.5, stale_after_s=300)  # in progress
    assert store.finish_delivery("e1", attempt, 102.0)
    assert not store.claim_delivery("e1", attempt, 10_000.0, stale_after_s=300)  # done: never
    assert not store.claim_delivery("e1", attempt + 1, 103.0, stale_after_s=300)  # not stored
    record = store.get("e1")
    assert record.result == DONE and record.status == "COMPLETED"


def test_a_failed_publish_gives_the_marker_back(store: Any) -> None:
    attempt = finished(store)
    assert store.claim_delivery("e1", attempt, 101.0, stale_after_s=300)
    assert store.release_delivery("e1", attempt)
    assert store.claim_delivery("e1", attempt, 102.0, stale_after_s=300)


def test_a_dead_publishers_marker_goes_stale(store: Any) -> None:
    attempt = finished(store)
    assert store.claim_delivery("e1", attempt, 101.0, stale_after_s=300)
    assert not store.claim_delivery("e1", attempt, 400.0, stale_after_s=300)
    assert store.claim_delivery("e1", attempt, 401.5, stale_after_s=300)
    assert not store.release_delivery("e1", attempt + 1)


def test_a_new_attempts_result_is_delivered_again(store: Any) -> None:
    attempt = finished(store)
    assert store.claim_delivery("e1", attempt, 101.0, stale_after_s=300)
    assert store.finish_delivery("e1", attempt, 101.0)
    again = store.claim("e1", "INC", "w2", now=200.0, expires_at=260.0, force=True)
    assert store.finish("e1", again.lease, DONE, 201.0)
    assert store.claim_delivery("e1", again.record.attempt, 202.0, stale_after_s=300)
