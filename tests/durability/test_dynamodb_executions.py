"""Whole executions on the DynamoDB home (dynalite): checkpoints in DynamoDBSaver, records in
DynamoDBExecutionStore. Duplicate deliveries, in a row and at once, run one execution."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest

from opx.agents.roster import ALL_AGENTS
from opx.durability.dynamodb import DynamoDBSaver, create_table
from opx.durability.dynamodb_executions import DynamoDBExecutionStore, create_results_table
from opx.durability.dynamodb_local import local_client
from opx.durability.store import ClaimOutcome
from opx.runtime.execute import Execution, execute
from tests.runtime.builders import (
    ScriptedBackend,
    accepted,
    assert_exactly_one_ran,
    deliver_at_once,
    make_deps,
)

_NAMES = itertools.count(1)


class Home:
    """Fresh checkpoint and results tables on one dynalite server."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        n = next(_NAMES)
        self.checkpoints, self.results = f"opx-cp-e2e-{n:04d}", f"opx-ex-e2e-{n:04d}"
        client = local_client(endpoint)
        create_table(client, self.checkpoints)
        create_results_table(client, self.results)

    def saver(self) -> DynamoDBSaver:
        return DynamoDBSaver(self.checkpoints, client=local_client(self.endpoint))

    def store(self) -> DynamoDBExecutionStore:
        return DynamoDBExecutionStore(self.results, client=local_client(self.endpoint))


@pytest.fixture
def home(dynalite_endpoint: str) -> Home:
    return Home(dynalite_endpoint)


async def test_ten_deliveries_in_a_row_run_once(home: Home, tmp_path: Path) -> None:
    backend = ScriptedBackend()
    saver, store = home.saver(), home.store()
    runs = [
        await execute(
            accepted(), deps=make_deps(backend, tmp_path), store=store, checkpointer=saver
        )
        for _ in range(10)
    ]
    assert [r.reused for r in runs] == [False] + [True] * 9
    assert all(r.result == runs[0].result for r in runs)
    assert runs[0].result.status == "COMPLETED"
    assert backend.calls == dict.fromkeys(ALL_AGENTS, 1)
    (record,) = store.list()
    assert (record.attempt, record.fencing_token) == (1, 1)


def test_ten_concurrent_deliveries_run_once(home: Home, tmp_path: Path) -> None:
    backend = ScriptedBackend(delay_s=0.05)

    async def one(barrier: threading.Barrier) -> Execution:
        store, saver = home.store(), home.saver()
        barrier.wait()  # every worker claims at the same moment
        return await execute(
            accepted(), deps=make_deps(backend, tmp_path), store=store, checkpointer=saver
        )

    runs = deliver_at_once(10, one)
    assert len(runs) == 10
    assert_exactly_one_ran(runs, backend)
    (record,) = home.store().list()
    assert (record.status, record.attempt, record.fencing_token) == ("COMPLETED", 1, 1)


def test_concurrent_claims_grant_exactly_one_lease(home: Home) -> None:
    barrier = threading.Barrier(10)
    outcomes: list[ClaimOutcome] = []
    lock = threading.Lock()

    def claim(i: int) -> None:
        store = home.store()
        barrier.wait()
        outcome = store.claim("e1", "INC", f"w{i}", now=100, expires_at=160).outcome
        with lock:
            outcomes.append(outcome)

    workers = [threading.Thread(target=claim, args=(i,)) for i in range(10)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert sorted(outcomes).count(ClaimOutcome.CLAIMED) == 1
    assert outcomes.count(ClaimOutcome.LEASE_HELD) == 9
