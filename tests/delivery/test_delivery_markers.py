"""The delivery markers on both stores (SQLite, and DynamoDB on dynalite and moto): a result is
published at most once per attempt and per channel, a failed publish can be retried, a dead
publisher's marker goes stale, and the single marker of earlier versions still counts."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opx.domain.result import ExecutionResult, ExecutionStatus, Reason
from opx.durability.dynamodb_executions import DynamoDBExecutionStore, create_results_table
from opx.durability.dynamodb_local import local_client
from opx.durability.sqlite_store import SqliteExecutionStore
from opx.durability.store import DeliveryChannel

EVENTS, SNS = DeliveryChannel.EVENTS, DeliveryChannel.SNS
_TABLES = itertools.count(1)
DONE = ExecutionResult(
    incident_id="INC",
    execution_id="e1",
    status=ExecutionStatus.COMPLETED,
    reason=Reason.ROOT_CAUSE_IDENTIFIED,
)

# Writes the marker an earlier version left: (attempt, state, at), for every channel at once.
LegacyWriter = Callable[[int, str, float], None]


@dataclass(frozen=True)
class Home:
    store: Any
    write_legacy: LegacyWriter


def _sqlite_home(path: Path) -> Home:
    def write(attempt: int, state: str, at: float) -> None:
        with sqlite3.connect(path) as db:
            db.execute(
                "UPDATE executions SET delivery_attempt = ?, delivery_state = ?, "
                "delivery_at = ? WHERE execution_id = 'e1'",
                (attempt, state, at),
            )

    return Home(SqliteExecutionStore(path), write)


def _dynamodb_home(endpoint: str) -> Home:
    client = local_client(endpoint)
    name = f"opx-delivery-{next(_TABLES):04d}"
    create_results_table(client, name)

    def write(attempt: int, state: str, at: float) -> None:
        client.update_item(
            TableName=name,
            Key={"execution_id": {"S": "e1"}},
            UpdateExpression="SET delivery_attempt = :a, delivery_state = :s, delivery_at = :t",
            ExpressionAttributeValues={
                ":a": {"N": str(attempt)},
                ":s": {"S": state},
                ":t": {"N": str(at)},
            },
        )

    return Home(DynamoDBExecutionStore(name, client=client), write)


@pytest.fixture(params=["sqlite", "dynalite", "moto"])
def home(request: pytest.FixtureRequest, tmp_path: Path) -> Home:
    if request.param == "sqlite":
        return _sqlite_home(tmp_path / "executions.sqlite")
    return _dynamodb_home(request.getfixturevalue(f"{request.param}_endpoint"))


@pytest.fixture
def store(home: Home) -> Any:
    return home.store


def finished(store: Any, now: float = 100.0) -> int:
    claim = store.claim("e1", "INC", "w1", now=now, expires_at=now + 60)
    assert store.finish("e1", claim.lease, DONE, now)
    return int(claim.record.attempt)


@pytest.mark.parametrize("channel", list(DeliveryChannel))
def test_no_result_no_delivery(store: Any, channel: DeliveryChannel) -> None:
    assert not store.claim_delivery("e1", 1, channel, 100.0, stale_after_s=300)
    store.claim("e1", "INC", "w1", now=100.0, expires_at=160.0)
    assert not store.claim_delivery("e1", 1, channel, 100.0, stale_after_s=300)


@pytest.mark.parametrize("channel", list(DeliveryChannel))
def test_a_result_is_delivered_once_per_channel(store: Any, channel: DeliveryChannel) -> None:
    attempt = finished(store)
    assert store.claim_delivery("e1", attempt, channel, 101.0, stale_after_s=300)
    assert not store.claim_delivery("e1", attempt, channel, 101.5, stale_after_s=300)  # running
    assert store.finish_delivery("e1", attempt, channel, 102.0)
    assert not store.claim_delivery("e1", attempt, channel, 10_000.0, stale_after_s=300)  # done
    assert not store.claim_delivery("e1", attempt + 1, channel, 103.0, stale_after_s=300)
    record = store.get("e1")
    assert record.result == DONE and record.status == "COMPLETED"


def test_each_channel_has_its_own_marker(store: Any) -> None:
    attempt = finished(store)
    assert store.claim_delivery("e1", attempt, EVENTS, 101.0, stale_after_s=300)
    assert store.claim_delivery("e1", attempt, SNS, 101.0, stale_after_s=300)
    assert store.finish_delivery("e1", attempt, EVENTS, 102.0)
    assert store.release_delivery("e1", attempt, SNS)  # the SNS publish failed
    # The retry: EventBridge is done, SNS is free again.
    assert not store.claim_delivery("e1", attempt, EVENTS, 103.0, stale_after_s=300)
    assert store.claim_delivery("e1", attempt, SNS, 103.0, stale_after_s=300)
    assert store.finish_delivery("e1", attempt, SNS, 104.0)
    assert not store.claim_delivery("e1", attempt, SNS, 105.0, stale_after_s=300)
    # Giving back a marker that is done, or another channel's, changes nothing.
    assert not store.release_delivery("e1", attempt, EVENTS)
    assert not store.claim_delivery("e1", attempt, EVENTS, 10_000.0, stale_after_s=300)


def test_a_failed_publish_gives_the_marker_back(store: Any) -> None:
    attempt = finished(store)
    assert store.claim_delivery("e1", attempt, EVENTS, 101.0, stale_after_s=300)
    assert store.release_delivery("e1", attempt, EVENTS)
    assert not store.release_delivery("e1", attempt, EVENTS)  # nothing left to give back
    assert store.claim_delivery("e1", attempt, EVENTS, 102.0, stale_after_s=300)


def test_a_dead_publishers_marker_goes_stale(store: Any) -> None:
    attempt = finished(store)
    assert store.claim_delivery("e1", attempt, SNS, 101.0, stale_after_s=300)
    assert not store.claim_delivery("e1", attempt, SNS, 400.0, stale_after_s=300)
    assert store.claim_delivery("e1", attempt, SNS, 401.5, stale_after_s=300)
    assert not store.release_delivery("e1", attempt + 1, SNS)
    assert not store.finish_delivery("e1", attempt + 1, SNS, 402.0)


def test_a_new_attempts_result_is_delivered_again(store: Any) -> None:
    attempt = finished(store)
    for channel in DeliveryChannel:
        assert store.claim_delivery("e1", attempt, channel, 101.0, stale_after_s=300)
        assert store.finish_delivery("e1", attempt, channel, 101.0)
    again = store.claim("e1", "INC", "w2", now=200.0, expires_at=260.0, force=True)
    assert store.finish("e1", again.lease, DONE, 201.0)
    for channel in DeliveryChannel:
        assert store.claim_delivery("e1", again.record.attempt, channel, 202.0, stale_after_s=300)
        # The previous attempt's publisher can no longer record anything.
        assert not store.finish_delivery("e1", attempt, channel, 203.0)


@pytest.mark.parametrize("channel", list(DeliveryChannel))
def test_an_earlier_versions_marker_counts_for_every_channel(
    home: Home, channel: DeliveryChannel
) -> None:
    store = home.store
    attempt = finished(store)
    home.write_legacy(attempt, "DONE", 101.0)
    assert not store.claim_delivery("e1", attempt, channel, 10_000.0, stale_after_s=300)
    home.write_legacy(attempt, "PENDING", 101.0)
    assert not store.claim_delivery("e1", attempt, channel, 102.0, stale_after_s=300)
    assert store.claim_delivery("e1", attempt, channel, 402.0, stale_after_s=300)  # stale
    home.write_legacy(attempt - 1, "DONE", 101.0)  # an older attempt's: no bearing
    assert store.release_delivery("e1", attempt, channel)
    assert store.claim_delivery("e1", attempt, channel, 403.0, stale_after_s=300)
