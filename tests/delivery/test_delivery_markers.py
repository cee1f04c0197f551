"""The delivery markers on both stores (SQLite, and DynamoDB on dynalite and moto): a result is
published at most once per attempt and per channel, a failed publish can be retried, a dead
publisher's marker goes stale, the single marker of earlier versions still counts, and a re-run
that fails again publishes nothing more while a final answer supersedes a failure once."""

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
from opx.durability.store import (
    DELIVERY_DONE,
    DELIVERY_PENDING,
    DeliveryChannel,
    DeliveryMarker,
    may_claim_delivery,
)

EVENTS, SNS = DeliveryChannel.EVENTS, DeliveryChannel.SNS
_TABLES = itertools.count(1)
DONE = ExecutionResult(
    incident_id="INC",
    execution_id="e1",
    status=ExecutionStatus.COMPLETED,
    reason=Reason.ROOT_CAUSE_IDENTIFIED,
)

FAILED = DONE.model_copy(update={"status": ExecutionStatus.FAILED, "reason": Reason.INTERNAL_ERROR})
NO_AGENTS = DONE.model_copy(
    update={
        "status": ExecutionStatus.NO_RECOMMENDATION,
        "reason": Reason.ALL_CORE_AGENTS_FAILED,
    }
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


def finished(store: Any, now: float = 100.0, result: ExecutionResult = DONE) -> int:
    """Claim the execution (a redelivery after a non-final result claims the next attempt)
    and store ``result`` for that attempt."""
    claim = store.claim("e1", "INC", "w1", now=now, expires_at=now + 60)
    assert store.finish("e1", claim.lease, result, now)
    return int(claim.record.attempt)


def delivered(store: Any, result: ExecutionResult, now: float) -> list[DeliveryChannel]:
    """Run one more attempt ending with ``result``; the channels it may publish, published."""
    attempt = finished(store, now, result)
    taken = []
    for channel in DeliveryChannel:
        if store.claim_delivery("e1", attempt, channel, now, stale_after_s=300, final=result.final):
            assert store.finish_delivery("e1", attempt, channel, now)
            taken.append(channel)
    return taken


@pytest.mark.parametrize("channel", list(DeliveryChannel))
def test_no_result_no_delivery(store: Any, channel: DeliveryChannel) -> None:
    assert not store.claim_delivery("e1", 1, channel, 100.0, stale_after_s=300, final=True)
    store.claim("e1", "INC", "w1", now=100.0, expires_at=160.0)
    assert not store.claim_delivery("e1", 1, channel, 100.0, stale_after_s=300, final=True)


@pytest.mark.parametrize("channel", list(DeliveryChannel))
def test_a_result_is_delivered_once_per_channel(store: Any, channel: DeliveryChannel) -> None:
    attempt = finished(store)
    assert store.claim_delivery("e1", attempt, channel, 101.0, stale_after_s=300, final=True)
    assert not store.claim_delivery(
        "e1", attempt, channel, 101.5, stale_after_s=300, final=True
    )  # running
    assert store.finish_delivery("e1", attempt, channel, 102.0)
    assert not store.claim_delivery(
        "e1", attempt, channel, 10_000.0, stale_after_s=300, final=True
    )  # done
    assert not store.claim_delivery(
        "e1", attempt + 1, channel, 103.0, stale_after_s=300, final=True
    )
    record = store.get("e1")
    assert record.result == DONE and record.status == "COMPLETED"


def test_each_channel_has_its_own_marker(store: Any) -> None:
    attempt = finished(store)
    assert store.claim_delivery("e1", attempt, EVENTS, 101.0, stale_after_s=300, final=True)
    assert store.claim_delivery("e1", attempt, SNS, 101.0, stale_after_s=300, final=True)
    assert store.finish_delivery("e1", attempt, EVENTS, 102.0)
    assert store.release_delivery("e1", attempt, SNS)  # the SNS publish failed
    # The retry: EventBridge is done, SNS is free again.
    assert not store.claim_delivery("e1", attempt, EVENTS, 103.0, stale_after_s=300, final=True)
    assert store.claim_delivery("e1", attempt, SNS, 103.0, stale_after_s=300, final=True)
    assert store.finish_delivery("e1", attempt, SNS, 104.0)
    assert not store.claim_delivery("e1", attempt, SNS, 105.0, stale_after_s=300, final=True)
    # Giving back a marker that is done, or another channel's, changes nothing.
    assert not store.release_delivery("e1", attempt, EVENTS)
    assert not store.claim_delivery("e1", attempt, EVENTS, 10_000.0, stale_after_s=300, final=True)


def test_a_failed_publish_gives_the_marker_back(store: Any) -> None:
    attempt = finished(store)
    assert store.claim_delivery("e1", attempt, EVENTS, 101.0, stale_after_s=300, final=True)
    assert store.release_delivery("e1", attempt, EVENTS)
    assert not store.release_delivery("e1", attempt, EVENTS)  # nothing left to give back
    assert store.claim_delivery("e1", attempt, EVENTS, 102.0, stale_after_s=300, final=True)


def test_a_dead_publishers_marker_goes_stale(store: Any) -> None:
    attempt = finished(store)
    assert store.claim_delivery("e1", attempt, SNS, 101.0, stale_after_s=300, final=True)
    assert not store.claim_delivery("e1", attempt, SNS, 400.0, stale_after_s=300, final=True)
    assert store.claim_delivery("e1", attempt, SNS, 401.5, stale_after_s=300, final=True)
    assert not store.release_delivery("e1", attempt + 1, SNS)
    assert not store.finish_delivery("e1", attempt + 1, SNS, 402.0)


def test_a_new_attempts_result_is_delivered_again(store: Any) -> None:
    attempt = finished(store)
    for channel in DeliveryChannel:
        assert store.claim_delivery("e1", attempt, channel, 101.0, stale_after_s=300, final=True)
        assert store.finish_delivery("e1", attempt, channel, 101.0)
    again = store.claim("e1", "INC", "w2", now=200.0, expires_at=260.0, force=True)
    assert store.finish("e1", again.lease, DONE, 201.0)
    for channel in DeliveryChannel:
        assert store.claim_delivery(
            "e1", again.record.attempt, channel, 202.0, stale_after_s=300, final=True
        )
        # The previous attempt's publisher can no longer record anything.
        assert not store.finish_delivery("e1", attempt, channel, 203.0)


@pytest.mark.parametrize("channel", list(DeliveryChannel))
def test_an_earlier_versions_marker_counts_for_every_channel(
    home: Home, channel: DeliveryChannel
) -> None:
    store = home.store
    attempt = finished(store)
    home.write_legacy(attempt, "DONE", 101.0)
    assert not store.claim_delivery("e1", attempt, channel, 10_000.0, stale_after_s=300, final=True)
    home.write_legacy(attempt, "PENDING", 101.0)
    assert not store.claim_delivery("e1", attempt, channel, 102.0, stale_after_s=300, final=True)
    assert store.claim_delivery(
        "e1", attempt, channel, 402.0, stale_after_s=300, final=True
    )  # stale
    home.write_legacy(attempt - 1, "DONE", 101.0)  # an older attempt's: no bearing
    assert store.release_delivery("e1", attempt, channel)
    assert store.claim_delivery("e1", attempt, channel, 403.0, stale_after_s=300, final=True)


@pytest.mark.parametrize("failure", [FAILED, NO_AGENTS], ids=["failed", "all-core-agents-failed"])
def test_a_failure_is_published_once_and_a_final_answer_supersedes_it_once(
    store: Any, failure: ExecutionResult
) -> None:
    everything = list(DeliveryChannel)
    assert not failure.final
    assert delivered(store, failure, 100.0) == everything  # attempt 1: the failure notice
    assert delivered(store, failure, 200.0) == []  # attempt 2 fails the same way: nothing
    assert delivered(store, NO_AGENTS, 300.0) == []  # attempt 3, another non-final end
    assert store.get("e1").attempt == 3
    assert delivered(store, DONE, 400.0) == everything  # attempt 4: the answer, once
    record = store.get("e1")
    assert (record.attempt, record.status) == (4, "COMPLETED")
    for channel in DeliveryChannel:
        assert not store.claim_delivery("e1", 4, channel, 10_000.0, stale_after_s=300, final=True)


def test_a_failure_notice_whose_publisher_died_is_published_by_the_rerun(store: Any) -> None:
    first = finished(store, 100.0, FAILED)
    assert store.claim_delivery("e1", first, SNS, 100.0, stale_after_s=300, final=False)
    # Its worker died while publishing; the re-run fails too.
    again = finished(store, 200.0, FAILED)
    assert not store.claim_delivery("e1", again, SNS, 201.0, stale_after_s=300, final=False)
    assert store.claim_delivery("e1", again, SNS, 401.0, stale_after_s=300, final=False)  # stale
    assert store.finish_delivery("e1", again, SNS, 402.0)
    assert not store.finish_delivery("e1", first, SNS, 403.0)


def marker(attempt: int, state: str = DELIVERY_DONE, at: float = 100.0) -> DeliveryMarker:
    return DeliveryMarker(attempt, state, at)


@pytest.mark.parametrize(
    ("found", "attempt", "final", "allowed"),
    [
        (None, 1, False, True),
        (None, 2, True, True),
        (marker(1), 1, True, False),  # published
        (marker(1, DELIVERY_PENDING, 150.0), 1, True, False),  # being published
        (marker(1, DELIVERY_PENDING, 99.0), 1, False, True),  # its publisher died
        (marker(1), 2, True, True),  # a final answer supersedes a failure notice
        (marker(1), 2, False, False),  # a failure again: published once only
        (marker(1, DELIVERY_PENDING, 150.0), 2, False, False),
        (marker(1, DELIVERY_PENDING, 99.0), 2, False, True),  # the notice may never have gone
        (marker(3), 2, True, False),  # never after a later attempt's
        (marker(3, DELIVERY_PENDING, 1.0), 2, True, False),
    ],
)
def test_the_delivery_rule(
    found: DeliveryMarker | None, attempt: int, final: bool, allowed: bool
) -> None:
    assert may_claim_delivery(found, attempt, 400.0, 300.0, final=final) is allowed
