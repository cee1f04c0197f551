"""DynamoDB requests and capacity per execution: the OPX saver against langgraph-checkpoint-aws.

Each bundled example runs once per saver through the normal execution path (OPX graph, SQLite
execution store in a temporary directory), with a fresh table on a local dynalite server. A
botocore hook asks every request for ``ReturnConsumedCapacity=TOTAL`` and adds up what dynalite
reports, so both savers are measured the same way on the same graph and inputs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from opx.config import load_settings
from opx.durability.dynamodb import DynamoDBSaver, create_table
from opx.durability.dynamodb_local import local_client, node_available, start_dynalite
from opx.runtime.execute import execute
from opx.runtime.intake import Accepted, parse_event
from opx.runtime.wiring import make_deps, open_store, open_tools

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TTL_SECONDS = 30 * 24 * 3600
WRITE_OPS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
# Only the local server is ever contacted; boto3 needs some credentials to sign requests.
for _name, _value in (
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
):
    os.environ.setdefault(_name, _value)


@dataclass
class Meter:
    """Requests and capacity units of one client, read from ``ConsumedCapacity``."""

    requests: Counter[str] = field(default_factory=Counter)
    write_units: float = 0.0
    read_units: float = 0.0

    def attach(self, client: Any) -> None:
        client.meta.events.register("provide-client-params.dynamodb.*", self._ask)
        client.meta.events.register("after-call.dynamodb.*", self._count)

    def _ask(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if "ReturnConsumedCapacity" in model.input_shape.members:
            params["ReturnConsumedCapacity"] = "TOTAL"

    def _count(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        self.requests[model.name] += 1
        consumed = parsed.get("ConsumedCapacity") or []
        entries = consumed if isinstance(consumed, list) else [consumed]
        units = sum(float(e.get("CapacityUnits", 0.0)) for e in entries)
        if model.name in WRITE_OPS:
            self.write_units += units
        else:
            self.read_units += units


@dataclass(frozen=True)
class Row:
    example: str
    saver: str
    meter: Meter
    status: str


def _wait_active(client: Any, table: str) -> None:
    while client.describe_table(TableName=table)["Table"]["TableStatus"] != "ACTIVE":
        time.sleep(0.02)


def _lca_table(client: Any, table: str) -> None:
    """The key schema langgraph-checkpoint-aws documents (it never creates its table)."""
    client.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    _wait_active(client, table)


SaverFactory = Callable[[str, str], tuple[BaseCheckpointSaver[Any], Any]]


def _ours(endpoint: str, table: str) -> tuple[BaseCheckpointSaver[Any], Any]:
    client = local_client(endpoint)
    create_table(client, table)
    return DynamoDBSaver(table, client, ttl_seconds=TTL_SECONDS), client


def _lca(compress: bool) -> SaverFactory | None:
    try:
        from langgraph_checkpoint_aws import (  # type: ignore[import-untyped]  # noqa: PLC0415
            DynamoDBSaver as AwsSaver,
        )
    except ImportError:
        return None

    def build(endpoint: str, table: str) -> tuple[BaseCheckpointSaver[Any], Any]:
        _lca_table(local_client(endpoint), table)
        saver = AwsSaver(
            table,
            endpoint_url=endpoint,
            region_name="us-east-1",
            ttl_seconds=TTL_SECONDS,
            enable_checkpoint_compression=compress,
        )
        return saver, saver.client

    return build


async def _execute(event: Path, saver: BaseCheckpointSaver[Any]) -> str:
    accepted = parse_event(event.read_bytes())
    assert isinstance(accepted, Accepted)
    with tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings(data_dir=Path(data_dir))
        deps = make_deps(settings, open_tools(settings, event.parent / "bundle"))
        execution = await execute(
            accepted, deps=deps, store=open_store(settings), checkpointer=saver
        )
    return execution.result.status.value


@contextmanager
def _dynalite() -> Iterator[str]:
    server = start_dynalite(ROOT)
    try:
        yield server.endpoint
    finally:
        server.stop()


def _measure(endpoint: str, savers: dict[str, SaverFactory]) -> list[Row]:
    rows: list[Row] = []
    for n, event in enumerate(sorted(EXAMPLES.glob("*/event.json"))):
        for m, (name, factory) in enumerate(savers.items()):
            saver, client = factory(endpoint, f"bench-{n}-{m}")
            meter = Meter()
            meter.attach(client)
            status = asyncio.run(_execute(event, saver))
            if isinstance(saver, DynamoDBSaver):
                saver.close()
            rows.append(Row(event.parent.name, name, meter, status))
    return rows


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "-"


def _report(rows: list[Row]) -> None:
    print(f"{'example':<22}{'saver':<40}{'requests':>9}{'write units':>13}{'read units':>12}")
    for row in rows:
        meter = row.meter
        print(
            f"{row.example:<22}{row.saver:<40}{sum(meter.requests.values()):>9}"
            f"{meter.write_units:>13.1f}{meter.read_units:>12.1f}  {row.status}"
        )
    totals: dict[str, tuple[int, float]] = {}
    for row in rows:
        req, wcu = totals.get(row.saver, (0, 0.0))
        totals[row.saver] = (req + sum(row.meter.requests.values()), wcu + row.meter.write_units)
    ours_req, ours_wcu = totals[OURS]
    runs = len({row.example for row in rows})
    print(f"\nper execution, mean of {runs} examples (ratio = OPX saver / other saver):")
    for name, (req, wcu) in totals.items():
        ratio = (
            ""
            if name == OURS
            else f"  ratio: requests {_ratio(ours_req, req)}, write units {_ratio(ours_wcu, wcu)}"
        )
        print(f"  {name:<40} requests {req / runs:>7.1f}  write units {wcu / runs:>8.1f}{ratio}")
    others = [t for name, t in totals.items() if name != OURS]
    if others:
        met = all(ours_wcu <= 0.5 * wcu and ours_req <= req for req, wcu in others)
        print(
            "target (at most half the write units and at most the requests of "
            f"langgraph-checkpoint-aws): {'met' if met else 'NOT met'}"
        )


OURS = "opx DynamoDBSaver"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    if not node_available():
        print("skipped: Node.js is not installed, so dynalite cannot run")
        return
    savers: dict[str, SaverFactory] = {OURS: _ours}
    for label, compress in (("checkpoint-aws", False), ("checkpoint-aws (compression)", True)):
        factory = _lca(compress)
        if factory is not None:
            savers[f"langgraph-{label}"] = factory
    if len(savers) == 1:
        print("langgraph-checkpoint-aws is not installed: measuring the OPX saver alone")
    with _dynalite() as endpoint:
        _report(_measure(endpoint, savers))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
