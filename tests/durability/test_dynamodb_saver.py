"""DynamoDBSaver on dynalite: what the conformance suite does not check.

Write order, first-writer-wins, 1 MB states, threads over 1 MB, namespaces, parallel writers,
put/put_writes ordering, consistent reads, TTL and incident attributes, incremental storage,
batch retries, pickle refusal, allowlist clones, maintenance and real graphs resuming.
"""

from __future__ import annotations

import asyncio
import gc
import operator
import pickle
import random
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypedDict, cast

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Interrupt

from opx.config import load_settings
from opx.durability.dynamodb import DynamoDBSaver, create_table
from opx.durability.dynamodb_codec import StoredDataError, encode
from opx.durability.dynamodb_io import UnprocessedItemsError, key
from opx.durability.dynamodb_keys import SEP, escape, unescape, writes_key
from opx.durability.dynamodb_size import MAX_ITEM_BYTES, item_size
from opx.runtime.execute import execute
from opx.runtime.intake import Accepted, parse_event
from opx.runtime.wiring import make_deps, open_store, open_tools
from tests.fixtures_servers import Table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOW = 1_700_000_000
DAY = 24 * 3600
THIRTY_DAYS = 30 * DAY


def cid(n: int) -> str:
    """Sortable checkpoint ids, as uuid6 ids are."""
    return f"1ef00000-0000-6000-8000-{n:012d}"


def checkpoint(n: int, values: dict[str, Any], versions: dict[str, int]) -> Checkpoint:
    return {
        "v": 1,
        "id": cid(n),
        "ts": "2024-01-01T00:00:00+00:00",
        "channel_values": values,
        "channel_versions": dict(versions),
        "versions_seen": {"node": dict(versions)},
        "updated_channels": None,
    }


def config(
    thread: str, ns: str = "", checkpoint_id: str | None = None, **extra: Any
) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ns, **extra}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def meta(step: int = 0, **extra: Any) -> CheckpointMetadata:
    return cast(CheckpointMetadata, {"source": "loop", "step": step, "parents": {}, **extra})


def noise(size: int, seed: int) -> bytes:
    """Incompressible bytes (fixed seed)."""
    return random.Random(seed).randbytes(size)


class Clock:
    def __init__(self, now: float = float(NOW)) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Calls:
    """DynamoDB calls of a client: names, parameters and completion order."""

    names: Counter[str]
    params: list[tuple[str, dict[str, Any]]]
    done: list[str]
    units: defaultdict[str, float]


def watch(client: DynamoDBClient) -> Calls:
    calls = Calls(Counter(), [], [], defaultdict(float))

    def before(params: dict[str, Any], model: Any, **_: Any) -> None:
        if "ReturnConsumedCapacity" in model.input_shape.members:
            params["ReturnConsumedCapacity"] = "TOTAL"
        calls.params.append((model.name, dict(params)))

    def after(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        calls.names[model.name] += 1
        calls.done.append(model.name)
        consumed = parsed.get("ConsumedCapacity") or []
        for entry in consumed if isinstance(consumed, list) else [consumed]:
            calls.units[model.name] += float(entry.get("CapacityUnits", 0.0))

    client.meta.events.register("provide-client-params.dynamodb.*", before)
    client.meta.events.register("after-call.dynamodb.*", after)
    return calls


def scan(table: Table) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"TableName": table.name}
    while True:
        page = table.client.scan(**params)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def saver(ddb_table: Table, clock: Clock) -> Iterator[DynamoDBSaver]:
    instance = DynamoDBSaver(ddb_table.name, ddb_table.client, clock=clock)
    try:
        yield instance
    finally:
        instance.close()


def step(
    s: BaseCheckpointSaver[Any],
    parent: RunnableConfig,
    n: int,
    values: dict[str, Any],
    versions: dict[str, int],
    new: dict[str, int] | None = None,
    md: CheckpointMetadata | None = None,
) -> RunnableConfig:
    """Store checkpoint ``n`` as the child of ``parent`` (``new``: the changed versions)."""
    changed: ChannelVersions = dict(versions if new is None else new)
    return s.put(parent, checkpoint(n, values, versions), md or meta(n), changed)


def put_root(
    s: BaseCheckpointSaver[Any], thread: str, number: int = 1, **values: Any
) -> RunnableConfig:
    return step(s, config(thread), number, values, dict.fromkeys(values, 1))


# -- keys --------------------------------------------------------------------------------------


def test_key_components_never_contain_the_separator() -> None:
    for text in ["", "plain", "a|b:c", "50%", f"x{SEP}y", "\x00\x1e", "ü→"]:
        escaped = escape(text)
        assert SEP not in escaped
        assert all(ch > SEP for ch in escaped)
        assert unescape(escaped) == text


def test_thread_ids_with_the_separator_are_refused(saver: DynamoDBSaver) -> None:
    with pytest.raises(ValueError, match="invalid thread id"):
        saver.get_tuple(config(f"a{SEP}b"))


def test_create_table_leaves_the_table_active_and_tolerates_an_existing_one(
    ddb_table: Table,
) -> None:
    create_table(ddb_table.client, ddb_table.name)
    status = ddb_table.client.describe_table(TableName=ddb_table.name)["Table"]["TableStatus"]
    assert status == "ACTIVE"


# -- pending writes ----------------------------------------------------------------------------


def _write_script(s: Any, cfg: RunnableConfig) -> None:
    s.put_writes(cfg, [(f"c{i}", i) for i in range(12)], "task-b", "~__pregel_pull, z")
    s.put_writes(cfg, [("x", "from a"), ("__error__", "boom")], "task-a", "~__pregel_pull, z")
    s.put_writes(cfg, [("y", "root input")], "task-c", "")
    s.put_writes(
        cfg, [("z", 1), ("__interrupt__", [Interrupt("ask")])], "task-d", "~__pregel_push, 0"
    )


def test_pending_writes_follow_writes_sort_key_like_the_reference_saver(
    saver: DynamoDBSaver,
) -> None:
    reference = InMemorySaver()
    stored = [put_root(s, "order", a=1) for s in (saver, reference)]
    _write_script(saver, stored[0])
    _write_script(reference, stored[1])
    ours = saver.get_tuple(config("order"))
    theirs = reference.get_tuple(config("order"))
    assert ours is not None and theirs is not None
    assert ours.pending_writes == theirs.pending_writes
    assert [w[1] for w in ours.pending_writes or []][:3] == ["y", "__error__", "x"]
    channels = [w[1] for w in ours.pending_writes or [] if w[0] == "task-b"]
    assert channels == [f"c{i}" for i in range(12)]  # c10 after c9, not after c1


def test_regular_writes_keep_the_first_value_and_special_writes_the_last(
    saver: DynamoDBSaver,
) -> None:
    stored = put_root(saver, "fww", a=1)
    saver.put_writes(stored, [("a", "first"), ("__interrupt__", "one")], "t")
    saver.put_writes(stored, [("a", "second"), ("__interrupt__", "two")], "t")
    found = saver.get_tuple(stored)
    assert found is not None
    assert sorted((w[1], w[2]) for w in found.pending_writes or []) == [
        ("__interrupt__", "two"),
        ("a", "first"),
    ]


async def test_parallel_agents_writing_at_once_lose_nothing(saver: DynamoDBSaver) -> None:
    stored = put_root(saver, "parallel", a=1)
    await asyncio.gather(
        *(
            saver.aput_writes(stored, [("hyp", f"{t}-{i}") for i in range(3)], f"agent-{t}", "")
            for t in range(24)
        )
    )
    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [
            pool.submit(saver.put_writes, stored, [("hyp", f"sync-{t}")], f"worker-{t}", "")
            for t in range(16)
        ]:
            future.result()
    found = await saver.aget_tuple(stored)
    assert found is not None
    values = sorted(w[2] for w in found.pending_writes or [])
    expected = sorted([f"{t}-{i}" for t in range(24) for i in range(3)])
    assert values == sorted(expected + [f"sync-{t}" for t in range(16)])


def _slow_updates(client: DynamoDBClient, started: threading.Event, delay_s: float) -> None:
    def pause(model: Any, **_: Any) -> None:
        if model.name == "UpdateItem":
            started.set()
            threading.Event().wait(delay_s)

    client.meta.events.register("before-call.dynamodb.UpdateItem", pause)


async def test_aput_completes_after_earlier_aput_writes(ddb_table: Table, clock: Clock) -> None:
    with DynamoDBSaver(ddb_table.name, ddb_table.client, clock=clock) as s:
        parent = put_root(s, "ordered", a=1)
        calls = watch(ddb_table.client)
        _slow_updates(ddb_table.client, threading.Event(), 0.3)
        writes = asyncio.ensure_future(s.aput_writes(parent, [("a", 2)], "task", ""))
        await s.aput(parent, checkpoint(2, {"a": 2}, {"a": 2}), meta(1), {"a": 2})
        await writes
    assert calls.done == ["UpdateItem", "PutItem"]


def test_put_completes_after_a_put_writes_running_in_another_thread(
    ddb_table: Table, clock: Clock
) -> None:
    with DynamoDBSaver(ddb_table.name, ddb_table.client, clock=clock) as s:
        parent = put_root(s, "ordered-sync", a=1)
        calls = watch(ddb_table.client)
        started = threading.Event()
        _slow_updates(ddb_table.client, started, 0.3)
        writer = threading.Thread(target=s.put_writes, args=(parent, [("a", 2)], "task", ""))
        writer.start()
        assert started.wait(5)
        s.put(parent, checkpoint(2, {"a": 2}, {"a": 2}), meta(1), {"a": 2})
        writer.join()
    assert calls.done == ["UpdateItem", "PutItem"]


# -- sizes and history -------------------------------------------------------------------------


def test_a_one_megabyte_state_round_trips_without_oversized_items(
    saver: DynamoDBSaver, ddb_table: Table
) -> None:
    blob = noise(1 << 20, seed=1)
    text = "incident timeline " * 60_000  # ~1 MB, compressible
    stored = put_root(saver, "big", blob=blob, text=text, small=3)
    saver.put_writes(stored, [("blob", noise(600_000, seed=2))], "t")
    found = saver.get_tuple(config("big"))
    assert found is not None
    assert found.checkpoint["channel_values"] == {"blob": blob, "text": text, "small": 3}
    assert found.pending_writes == [("t", "blob", noise(600_000, seed=2))]
    items = scan(ddb_table)
    assert max(item_size(it) for it in items) < MAX_ITEM_BYTES
    assert sum(it["session_id"]["S"] == f"k{SEP}big" for it in items) >= 4


def _long_thread(s: DynamoDBSaver, thread: str, count: int) -> list[RunnableConfig]:
    stored: list[RunnableConfig] = []
    parent = config(thread)
    for n in range(count):
        values = {"blob": noise(120_000, seed=n), "step": n}
        versions = {"blob": n + 1, "step": n + 1}
        parent = step(s, parent, n, values, versions, md=meta(n, parity=n % 2))
        s.put_writes(parent, [("step", n + 1)], f"task-{n}")
        stored.append(parent)
    return stored


def test_a_thread_over_one_megabyte_lists_completely(
    saver: DynamoDBSaver, ddb_table: Table
) -> None:
    stored = _long_thread(saver, "long", 12)
    calls = watch(ddb_table.client)
    listed = list(saver.list(config("long")))
    assert calls.names["Query"] > 1  # more than one 1 MB page
    assert [t.checkpoint["id"] for t in listed] == [cid(n) for n in reversed(range(12))]
    for t in listed:
        n = t.metadata["step"]
        assert t.checkpoint["channel_values"] == {"blob": noise(120_000, seed=n), "step": n}
        assert t.pending_writes == [(f"task-{n}", "step", n + 1)]
    oldest = saver.get_tuple(stored[0])
    assert oldest is not None and oldest.pending_writes == [("task-0", "step", 1)]


def test_list_pages_through_filter_before_and_limit(saver: DynamoDBSaver) -> None:
    stored = _long_thread(saver, "paged", 12)
    ids = [t.checkpoint["id"] for t in saver.list(config("paged"), limit=5)]
    assert ids == [cid(n) for n in (11, 10, 9, 8, 7)]
    before = [t.checkpoint["id"] for t in saver.list(config("paged"), before=stored[6])]
    assert before == [cid(n) for n in reversed(range(6))]
    odd = [t.metadata["step"] for t in saver.list(config("paged"), filter={"parity": 1}, limit=4)]
    assert odd == [11, 9, 7, 5]
    assert list(saver.list(config("paged"), filter={"parity": 7})) == []


async def test_alist_matches_list(saver: DynamoDBSaver) -> None:
    _long_thread(saver, "alist", 4)
    synced = [t.checkpoint["id"] for t in saver.list(config("alist"), limit=3)]
    awaited = [t.checkpoint["id"] async for t in saver.alist(config("alist"), limit=3)]
    assert synced == awaited == [cid(n) for n in (3, 2, 1)]


def test_list_without_a_config_covers_every_thread(saver: DynamoDBSaver) -> None:
    for thread in ("t-a", "t-b"):
        put_root(saver, thread, a=thread)
    threads = sorted(t.config["configurable"]["thread_id"] for t in saver.list(None))
    assert threads == ["t-a", "t-b"]


# -- namespaces --------------------------------------------------------------------------------


def test_latest_root_checkpoint_wins_over_a_newer_subgraph_checkpoint(
    saver: DynamoDBSaver,
) -> None:
    put_root(saver, "ns", 1, where="root")
    for n, ns in ((2, "agent:abc"), (3, "agent:abc|inner:1"), (4, "agent")):
        step(saver, config("ns", ns), n, {"where": ns}, {"where": 1})
    for ns, expected in (("", "root"), ("agent", "agent"), ("agent:abc", "agent:abc")):
        found = saver.get_tuple(config("ns", ns))
        assert found is not None
        assert found.checkpoint["channel_values"] == {"where": expected}
        assert found.config["configurable"]["checkpoint_ns"] == ns
    assert len(list(saver.list(config("ns", "")))) == 1


# -- reads, TTL, attributes --------------------------------------------------------------------


def test_every_read_is_strongly_consistent(saver: DynamoDBSaver, ddb_table: Table) -> None:
    first = put_root(saver, "reads", 1, docs="d", n=1)
    second = step(saver, first, 2, {"docs": "d", "n": 2}, {"docs": 1, "n": 2}, {"n": 2})
    calls = watch(ddb_table.client)
    saver.get_tuple(config("reads"))
    saver.get_tuple(second)
    list(saver.list(config("reads")))
    reads = [(name, p) for name, p in calls.params if name in ("Query", "GetItem", "BatchGetItem")]
    assert {name for name, _ in reads} >= {"Query", "BatchGetItem"}
    for name, params in reads:
        if name == "BatchGetItem":
            assert all(r["ConsistentRead"] for r in params["RequestItems"].values())
        else:
            assert params["ConsistentRead"] is True


def test_every_item_carries_ttl_and_the_incident(ddb_table: Table, clock: Clock) -> None:
    with DynamoDBSaver(ddb_table.name, ddb_table.client, clock=clock, ttl_seconds=7 * DAY) as s:
        cfg = config("attrs", incident_id="inc-42")
        values = {"blob": noise(500_000, 3)}
        stored = step(s, cfg, 1, values, {"blob": 1}, md=meta(run_id="run-1"))
        assert stored["configurable"]["checkpoint_id"] == cid(1)
        s.put_writes(config("attrs", "", cid(1), incident_id="inc-42"), [("a", 1)], "t")
    items = scan(ddb_table)
    assert len(items) >= 4  # checkpoint, writes, chunks, run marker
    assert {int(it["ttl"]["N"]) for it in items} == {NOW + 7 * DAY}
    data_items = [it for it in items if not it["session_id"]["S"].startswith(f"r{SEP}")]
    assert all(it["incident_id"]["S"] == "inc-42" for it in data_items)


def test_the_default_ttl_is_thirty_days(saver: DynamoDBSaver, ddb_table: Table) -> None:
    put_root(saver, "ttl", a=1)
    assert {int(it["ttl"]["N"]) for it in scan(ddb_table)} == {NOW + THIRTY_DAYS}


def test_unchanged_values_are_referenced_not_rewritten(
    saver: DynamoDBSaver, ddb_table: Table
) -> None:
    docs = noise(50_000, seed=9)
    first = put_root(saver, "incr", 1, docs=docs, n=1)
    calls = watch(ddb_table.client)
    second = step(saver, first, 2, {"docs": docs, "n": 2}, {"docs": 1, "n": 2}, {"n": 2})
    assert calls.names == Counter({"PutItem": 1})
    assert calls.units["PutItem"] <= 1
    found = saver.get_tuple(second)
    assert found is not None and found.checkpoint["channel_values"] == {"docs": docs, "n": 2}


def test_values_are_copied_forward_before_their_item_expires(
    saver: DynamoDBSaver, ddb_table: Table, clock: Clock
) -> None:
    docs = noise(20_000, seed=4)
    first = put_root(saver, "fwd", 1, docs=docs, n=1)
    clock.now += THIRTY_DAYS - DAY + 1  # the first item expires in less than a day
    calls = watch(ddb_table.client)
    second = step(saver, first, 2, {"docs": docs, "n": 2}, {"docs": 1, "n": 2}, {"n": 2})
    assert calls.units["PutItem"] > 15  # docs stored again
    clock.now += 2 * DAY  # the first checkpoint has expired; the second is complete
    assert saver.get_tuple(first) is None
    found = saver.get_tuple(second)
    assert found is not None and found.checkpoint["channel_values"]["docs"] == docs


def test_compression_is_used_only_when_it_saves_capacity(
    saver: DynamoDBSaver, ddb_table: Table
) -> None:
    put_root(saver, "zip", 1, text="the same words again " * 2000)
    put_root(saver, "raw", 1, blob=noise(3000, seed=5))
    sizes = {it["session_id"]["S"]: it for it in scan(ddb_table) if "vals" in it}
    assert sizes["zip"]["vals"]["B"][0] == 2 and item_size(sizes["zip"]) < 2048
    assert sizes["raw"]["vals"]["B"][0] == 1


# -- failure handling --------------------------------------------------------------------------


class HalfDone:
    """A client whose batch calls leave half of their items unprocessed, ``misses`` times."""

    def __init__(self, client: DynamoDBClient, misses: int) -> None:
        self._client: Any = client
        self.misses = misses
        self.batches = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_write_item(self, RequestItems: dict[str, list[Any]], **kw: Any) -> dict[str, Any]:
        self.batches += 1
        ((table, requests),) = RequestItems.items()
        if self.misses <= 0:
            return cast(dict[str, Any], self._client.batch_write_item(RequestItems=RequestItems))
        self.misses -= 1
        keep, left = requests[: len(requests) // 2], requests[len(requests) // 2 :]
        if keep:
            self._client.batch_write_item(RequestItems={table: keep})
        return {"UnprocessedItems": {table: left}}

    def batch_get_item(self, RequestItems: dict[str, Any], **kw: Any) -> dict[str, Any]:
        ((table, request),) = RequestItems.items()
        if self.misses <= 0 or len(request["Keys"]) < 2:
            return cast(dict[str, Any], self._client.batch_get_item(RequestItems=RequestItems))
        self.misses -= 1
        half = len(request["Keys"]) // 2
        done = self._client.batch_get_item(
            RequestItems={table: {**request, "Keys": request["Keys"][:half]}}
        )
        return {
            "Responses": done["Responses"],
            "UnprocessedKeys": {table: {**request, "Keys": request["Keys"][half:]}},
        }


def test_unprocessed_batch_items_are_retried_until_stored(ddb_table: Table, clock: Clock) -> None:
    flaky = HalfDone(ddb_table.client, misses=3)
    client = cast("DynamoDBClient", flaky)
    blob = noise(1_500_000, seed=6)
    with DynamoDBSaver(ddb_table.name, client, clock=clock, sleep=lambda _: None) as s:
        put_root(s, "retry", blob=blob)
        found = s.get_tuple(config("retry"))
    assert flaky.batches >= 4
    assert found is not None and found.checkpoint["channel_values"]["blob"] == blob


def test_batch_items_left_unprocessed_raise_instead_of_being_dropped(
    ddb_table: Table, clock: Clock
) -> None:
    client = cast("DynamoDBClient", HalfDone(ddb_table.client, misses=1000))
    with DynamoDBSaver(ddb_table.name, client, clock=clock, sleep=lambda _: None) as s:
        with pytest.raises(UnprocessedItemsError):
            put_root(s, "dropped", blob=noise(1_500_000, seed=6))
        assert s.get_tuple(config("dropped")) is None  # no checkpoint without its chunks


def test_decompression_stops_at_the_cap(ddb_table: Table) -> None:
    with DynamoDBSaver(ddb_table.name, ddb_table.client, max_decoded_bytes=10_000) as s:
        put_root(s, "bomb", text="a" * 200_000)
        with pytest.raises(StoredDataError, match="inflates beyond"):
            s.get_tuple(config("bomb"))


def test_altered_chunks_are_detected(saver: DynamoDBSaver, ddb_table: Table) -> None:
    put_root(saver, "tamper", blob=noise(800_000, seed=11))
    chunk = next(it for it in scan(ddb_table) if it["session_id"]["S"] == f"k{SEP}tamper")
    data = chunk["data"]["B"]
    chunk["data"] = {"B": data[:-1] + bytes([data[-1] ^ 1])}
    ddb_table.client.put_item(TableName=ddb_table.name, Item=chunk)
    with pytest.raises(StoredDataError, match="do not match"):
        saver.get_tuple(config("tamper"))


async def test_a_dropped_aput_writes_does_not_hold_up_the_next_put(
    ddb_table: Table, clock: Clock
) -> None:
    with DynamoDBSaver(ddb_table.name, ddb_table.client, clock=clock, write_wait_s=60) as s:
        parent = put_root(s, "dropped-writes", a=1)
        never_run = s.aput_writes(parent, [("a", 2)], "task", "")
        never_run.close()
        del never_run
        gc.collect()
        child = checkpoint(2, {"a": 2}, {"a": 2})
        await asyncio.wait_for(s.aput(parent, child, meta(1), {"a": 2}), timeout=10)


class Tripwire:
    fired: ClassVar[list[str]] = []

    def __reduce__(self) -> tuple[Callable[[str], None], tuple[str]]:
        return (Tripwire.fired.append, ("unpickled",))


def test_stored_pickle_is_never_loaded(saver: DynamoDBSaver, ddb_table: Table) -> None:
    stored = put_root(saver, "pickled", a=1)
    ddb_table.client.put_item(
        TableName=ddb_table.name,
        Item={
            **key("pickled", writes_key("", cid(1), "evil")),
            "w0": {"B": encode(["a", "pickle", pickle.dumps(Tripwire())])},
        },
    )
    with pytest.raises(StoredDataError, match="pickle"):
        saver.get_tuple(stored)
    assert Tripwire.fired == []


def test_a_serializer_that_pickles_is_refused_when_storing(ddb_table: Table) -> None:
    serde = JsonPlusSerializer(pickle_fallback=True)
    with DynamoDBSaver(ddb_table.name, ddb_table.client, serde=serde) as s:
        stored = put_root(s, "refuse", a=1)
        with pytest.raises(StoredDataError, match="pickle"):
            s.put_writes(stored, [("a", complex(1, 2))], "t")


@dataclass
class Point:
    x: int
    y: int


def test_an_allowlist_clone_uses_its_own_serializer(ddb_table: Table) -> None:
    strict = JsonPlusSerializer(allowed_msgpack_modules=None)
    with DynamoDBSaver(ddb_table.name, ddb_table.client, serde=strict) as s:
        put_root(s, "allow", p=Point(1, 2))
        blocked = s.get_tuple(config("allow"))
        clone = s.with_allowlist([(Point.__module__, "Point")])
        allowed = clone.get_tuple(config("allow"))
    assert blocked is not None and not isinstance(blocked.checkpoint["channel_values"]["p"], Point)
    assert allowed is not None and allowed.checkpoint["channel_values"]["p"] == Point(1, 2)


# -- maintenance -------------------------------------------------------------------------------


def _two_runs(s: DynamoDBSaver, thread: str) -> tuple[RunnableConfig, RunnableConfig]:
    docs = noise(30_000, seed=8)
    first = step(
        s, config(thread), 1, {"docs": docs, "n": 1}, {"docs": 1, "n": 1}, md=meta(run_id="run-a")
    )
    s.put_writes(first, [("n", 2)], "t1")
    second = step(
        s, first, 2, {"docs": docs, "n": 2}, {"docs": 1, "n": 2}, {"n": 2}, meta(run_id="run-b")
    )
    return first, second


def test_deleting_a_run_keeps_later_checkpoints_that_shared_its_values(
    saver: DynamoDBSaver,
) -> None:
    first, second = _two_runs(saver, "runs")
    saver.delete_for_runs(["run-a"])
    assert saver.get_tuple(first) is None
    found = saver.get_tuple(second)
    assert found is not None
    assert found.checkpoint["channel_values"] == {"docs": noise(30_000, seed=8), "n": 2}


def test_prune_keeps_the_latest_checkpoint_complete(saver: DynamoDBSaver) -> None:
    _first, second = _two_runs(saver, "prune")
    saver.prune(["prune"])
    listed = list(saver.list(config("prune")))
    assert [t.checkpoint["id"] for t in listed] == [second["configurable"]["checkpoint_id"]]
    assert listed[0].checkpoint["channel_values"]["docs"] == noise(30_000, seed=8)


def test_prune_leaves_delta_channel_threads_alone(saver: DynamoDBSaver) -> None:
    parent = config("delta")
    for n in range(3):
        md = meta(n, counters_since_delta_snapshot={"msgs": [n, n]})
        parent = step(saver, parent, n, {"a": n}, {"a": n + 1}, md=md)
    saver.prune(["delta"])
    assert len(list(saver.list(config("delta")))) == 3


def test_copy_and_delete_cover_chunks_writes_and_run_markers(
    saver: DynamoDBSaver, ddb_table: Table
) -> None:
    blob = noise(900_000, seed=10)
    stored = step(saver, config("src"), 1, {"blob": blob}, {"blob": 1}, md=meta(run_id="run-c"))
    saver.put_writes(stored, [("blob", "next")], "t")
    saver.copy_thread("src", "dst")
    copied = saver.get_tuple(config("dst"))
    assert copied is not None and copied.checkpoint["channel_values"]["blob"] == blob
    assert copied.pending_writes == [("t", "blob", "next")]
    saver.delete_for_runs(["run-c"])
    assert saver.get_tuple(config("src")) is None and saver.get_tuple(config("dst")) is None
    saver.delete_thread("src")
    saver.delete_thread("dst")
    assert scan(ddb_table) == []


# -- real graphs -------------------------------------------------------------------------------


class State(TypedDict):
    items: Annotated[list[str], operator.add]


@dataclass
class Node:
    """A graph node that counts its runs. While its name is in ``fail`` it fails, once the
    other branches have finished (so they are not cancelled and their writes are kept)."""

    name: str
    calls: Counter[str]
    fail: set[str]
    finished: set[str]

    def __call__(self, state: State) -> State:
        self.calls[self.name] += 1
        if self.name in self.fail:
            others = {"a", "b", "c"} - {self.name}
            for _ in range(500):
                if others <= self.finished:
                    break
                threading.Event().wait(0.01)
            raise RuntimeError(f"{self.name} failed")
        self.finished.add(self.name)
        return {"items": [self.name]}


def _graph(s: DynamoDBSaver, calls: Counter[str], fail: set[str]) -> Any:
    builder = StateGraph(State)
    finished: set[str] = set()
    for name in ("a", "b", "c", "join"):
        builder.add_node(name, Node(name, calls, fail, finished))
    for name in ("a", "b", "c"):
        builder.add_edge(START, name)
    builder.add_edge(["a", "b", "c"], "join")
    builder.add_edge("join", END)
    return builder.compile(checkpointer=s)


def test_a_graph_resumes_with_only_the_failed_branch_rerun(saver: DynamoDBSaver) -> None:
    calls: Counter[str] = Counter()
    fail = {"c"}
    graph = _graph(saver, calls, fail)
    cfg = config("graph-sync")
    with pytest.raises(RuntimeError, match="c failed"):
        graph.invoke({"items": []}, cfg)
    fail.clear()
    final = graph.invoke(None, cfg)
    assert sorted(final["items"][:3]) == ["a", "b", "c"] and final["items"][3] == "join"
    assert calls == Counter({"a": 1, "b": 1, "c": 2, "join": 1})


async def test_an_async_graph_resumes_with_only_the_failed_branch_rerun(
    saver: DynamoDBSaver,
) -> None:
    calls: Counter[str] = Counter()
    fail = {"a"}
    graph = _graph(saver, calls, fail)
    cfg = config("graph-async")
    with pytest.raises(RuntimeError, match="a failed"):
        await graph.ainvoke({"items": []}, cfg)
    fail.clear()
    final = await graph.ainvoke(None, cfg)
    assert sorted(final["items"][:3]) == ["a", "b", "c"]
    assert calls == Counter({"a": 2, "b": 1, "c": 1, "join": 1})
    history = [t async for t in saver.alist(cfg)]
    assert all(isinstance(t, CheckpointTuple) for t in history) and len(history) >= 3


async def _opx_result(checkpointer: BaseCheckpointSaver[Any], data_dir: Path) -> dict[str, Any]:
    event = sorted(EXAMPLES.glob("*/event.json"))[0]
    accepted = parse_event(event.read_bytes())
    assert isinstance(accepted, Accepted)
    settings = load_settings(data_dir=data_dir)
    deps = make_deps(settings, open_tools(settings, event.parent / "bundle"))
    store = open_store(settings)
    execution = await execute(accepted, deps=deps, store=store, checkpointer=checkpointer)
    return execution.result.model_dump(mode="json", exclude={"timings"})


async def test_an_opx_execution_matches_the_in_memory_saver(
    saver: DynamoDBSaver, tmp_path: Path
) -> None:
    ours = await _opx_result(saver, tmp_path / "dynamodb")
    reference = await _opx_result(InMemorySaver(), tmp_path / "memory")
    assert ours["status"] == "COMPLETED"
    assert ours == reference
