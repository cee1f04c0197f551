"""Results too large for one DynamoDB item: chunk items written before the item that references
them, read back whole, never listed, and deleted once nothing references them."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from opx.domain.result import ExecutionResult, ExecutionStatus, Reason
from opx.durability.dynamodb_executions import (
    MAX_RESULT_BYTES,
    DynamoDBExecutionStore,
    create_results_table,
)
from opx.durability.dynamodb_local import local_client
from opx.durability.store import ClaimOutcome, Lease, StoreUnavailable
from tests.durability.test_execution_stores import DONE, big_result

_TABLES = itertools.count(1)


class Table:
    def __init__(self, endpoint: str) -> None:
        self.client = local_client(endpoint)
        self.name = f"opx-chunks-{next(_TABLES):04d}"
        create_results_table(self.client, self.name)

    def store(self, **limits: int) -> DynamoDBExecutionStore:
        return DynamoDBExecutionStore(self.name, client=self.client, **limits)

    def items(self) -> list[dict[str, Any]]:
        return list(self.client.scan(TableName=self.name, ConsistentRead=True)["Items"])

    def chunk_ids(self) -> list[str]:
        return sorted(i["execution_id"]["S"] for i in self.items() if "chunk_of" in i)


@pytest.fixture
def table(dynalite_endpoint: str) -> Table:
    return Table(dynalite_endpoint)


def small(status: ExecutionStatus, reason: Reason, seed: int) -> ExecutionResult:
    """About 6 KB compressed: three chunks of 2,500 bytes in a store with a 1 KB inline limit."""
    return big_result(status, reason, 10, seed)


# Chunks of 2,500 bytes once the compressed result passes 1 KB, so small results exercise them.
TINY = {"inline_limit": 1024, "chunk_bytes": 2500}


def lease(store: DynamoDBExecutionStore, owner: str, now: float, *, force: bool = False) -> Lease:
    return store.claim("e1", "INC", owner, now=now, expires_at=now + 60, force=force).lease


def test_a_result_over_the_item_budget_goes_to_chunk_items(table: Table) -> None:
    store = table.store()
    huge = big_result(ExecutionStatus.COMPLETED, Reason.ROOT_CAUSE_IDENTIFIED, 1100, seed=1)
    assert store.finish("e1", lease(store, "a", 100), huge, now=110)
    (item,) = [i for i in table.items() if "chunk_of" not in i]
    assert "result" not in item and int(item["result_chunks"]["M"]["length"]["N"]) > (
        MAX_RESULT_BYTES
    )
    chunks = table.chunk_ids()
    assert len(chunks) == 2 and all(c.startswith("e1#result#1#") for c in chunks)
    assert store.get("e1").result == huge  # type: ignore[union-attr]
    assert [r.execution_id for r in store.list()] == ["e1"]
    assert store.get(chunks[0]) is None  # a chunk is not an execution


def test_a_stale_finish_leaves_no_chunks_behind(table: Table) -> None:
    store = table.store(**TINY)
    stale = lease(store, "a", 100)
    fresh = lease(store, "b", 200)
    late = small(ExecutionStatus.COMPLETED, Reason.ROOT_CAUSE_IDENTIFIED, seed=2)
    assert not store.finish("e1", stale, late, now=210)
    assert table.chunk_ids() == []
    assert store.finish("e1", fresh, late, now=211)
    assert len(table.chunk_ids()) == 3
    # The same holder finishing twice is refused and keeps the stored chunks intact.
    assert not store.finish("e1", fresh, late, now=212)
    assert store.get("e1").result == late  # type: ignore[union-attr]


def test_a_new_result_deletes_the_chunks_it_replaces(table: Table) -> None:
    store = table.store(**TINY)
    failed = small(ExecutionStatus.NO_RECOMMENDATION, Reason.ALL_CORE_AGENTS_FAILED, seed=3)
    assert store.finish("e1", lease(store, "a", 100), failed, now=101)
    first = table.chunk_ids()
    assert len(first) == 3 and all(c.startswith("e1#result#1#") for c in first)
    second = small(ExecutionStatus.NO_RECOMMENDATION, Reason.ALL_CORE_AGENTS_FAILED, seed=4)
    claim = store.claim("e1", "INC", "a", now=102, expires_at=160)
    assert claim.record.attempt == 2 and claim.record.result == failed
    assert store.finish("e1", claim.lease, second, now=103)
    assert all(c.startswith("e1#result#2#") for c in table.chunk_ids())
    assert len(table.chunk_ids()) == 3
    # A small result goes back into the item, and the last chunks go.
    assert store.finish("e1", lease(store, "a", 104), DONE, now=105)
    assert table.chunk_ids() == []
    record = store.get("e1")
    assert record is not None and record.result == DONE and record.result_attempt == 3
    assert store.claim("e1", "INC", "b", now=106, expires_at=160).outcome is ClaimOutcome.FINISHED


def test_a_result_beyond_every_chunk_is_refused_before_anything_is_written(table: Table) -> None:
    store = table.store(**TINY, max_chunks=2)
    held = lease(store, "a", 100)
    too_big = small(ExecutionStatus.COMPLETED, Reason.ROOT_CAUSE_IDENTIFIED, seed=5)
    with pytest.raises(StoreUnavailable, match="over the 2 chunks"):
        store.finish("e1", held, too_big, now=101)
    assert table.chunk_ids() == []
    assert store.get("e1").status == "IN_PROGRESS"  # type: ignore[union-attr]


@pytest.mark.parametrize("damage", ["delete", "alter"])
def test_missing_or_altered_chunks_are_an_infrastructure_failure(table: Table, damage: str) -> None:
    store = table.store(**TINY)
    done = small(ExecutionStatus.COMPLETED, Reason.ROOT_CAUSE_IDENTIFIED, seed=6)
    assert store.finish("e1", lease(store, "a", 100), done, now=101)
    key = {"execution_id": {"S": table.chunk_ids()[1]}}
    if damage == "delete":
        table.client.delete_item(TableName=table.name, Key=key)
    else:
        table.client.update_item(
            TableName=table.name,
            Key=key,
            UpdateExpression="SET #d = :d",
            ExpressionAttributeNames={"#d": "data"},
            ExpressionAttributeValues={":d": {"B": b"x" * 2500}},
        )
    with pytest.raises(StoreUnavailable, match="e1"):
        store.get("e1")
