"""LangGraph checkpoints on DynamoDB: ``DynamoDBSaver`` (sync and async) and ``create_table``.

The item layout, sizes and guarantees are described in docs/dynamodb-checkpoints.md.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from opx.durability.dynamodb_admin import Admin
from opx.durability.dynamodb_barrier import WriteBarrier
from opx.durability.dynamodb_codec import DEFAULT_MAX_DECODED, checked
from opx.durability.dynamodb_io import PK, SK, TableIO, create_and_wait, make_client, string
from opx.durability.dynamodb_keys import (
    CHECKPOINTS,
    SEP,
    TOP,
    check_thread_id,
    checkpoint_key,
    ns_prefix,
    parse_sort_key,
)
from opx.durability.dynamodb_placement import Source, placement, plan
from opx.durability.dynamodb_reader import CheckpointDataMissing, Known, Reader, Stored, grouped
from opx.durability.dynamodb_records import (
    common,
    encode_head,
    encode_vals,
    encode_write,
    write_attr,
)
from opx.durability.dynamodb_writer import Writer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["DEFAULT_TABLE", "CheckpointDataMissing", "DynamoDBSaver", "create_table"]

DEFAULT_TABLE = "opx-langgraph-checkpoints"
DEFAULT_TTL_SECONDS = 30 * 24 * 3600
DEFAULT_REFRESH_SECONDS = 24 * 3600
_LIST_BATCH = 16
T = TypeVar("T")
Key = tuple[str, str, str]  # thread, namespace, checkpoint id
# Aliases: inside the saver class, `list` names the method.
Tuples = list[CheckpointTuple]
Batches = Generator[Tuples, None, None]
Records = list[Stored]


def create_table(
    client: DynamoDBClient,
    table_name: str = DEFAULT_TABLE,
    *,
    timeout_s: float = 120.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Create the checkpoint table (key schema only, on demand) and wait until it is ACTIVE.
    For tests and local development: TTL, PITR and encryption belong to the infrastructure."""
    create_and_wait(
        client, table_name, ((PK, "HASH"), (SK, "RANGE")), timeout_s=timeout_s, sleep=sleep
    )


class _Placements:
    """Where the channel values of recently stored or read checkpoints live (bounded LRU)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Key, dict[str, Source]] = OrderedDict()

    def get(self, key: Key) -> dict[str, Source] | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: Key, value: dict[str, Source]) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def forget(self, thread: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == thread]:
                del self._entries[key]


class DynamoDBSaver(BaseCheckpointSaver[int]):
    """A LangGraph checkpoint saver on one DynamoDB table (see docs/dynamodb-checkpoints.md).

    Each put stores only the channel values whose version changed (unchanged ones are read from
    the older checkpoint item that holds them), in one PutItem; each put_writes is one
    UpdateItem. Values too large for an item go to chunk items, written first. Every read is
    strongly consistent. The async methods run the blocking client on a bounded thread pool.
    """

    def __init__(
        self,
        table_name: str = DEFAULT_TABLE,
        client: DynamoDBClient | None = None,
        *,
        serde: SerializerProtocol | None = None,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        refresh_seconds: int = DEFAULT_REFRESH_SECONDS,
        clock: Callable[[], float] = time.time,
        max_workers: int = 8,
        max_decoded_bytes: int = DEFAULT_MAX_DECODED,
        write_wait_s: float = 120.0,
        cache_size: int = 1024,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(serde=serde or JsonPlusSerializer(pickle_fallback=False))
        if ttl_seconds <= refresh_seconds:
            raise ValueError("ttl_seconds must exceed refresh_seconds")
        self.table_name = table_name
        self.client = client if client is not None else make_client()
        self.ttl_seconds = ttl_seconds
        self.refresh_seconds = refresh_seconds
        self.write_wait_s = write_wait_s
        self._clock = clock
        io = TableIO(self.client, table_name, sleep=sleep)
        self._reader = Reader(io, max_decoded_bytes)
        self._writer = Writer(io)
        self._admin = Admin(io, self._reader, self._writer)
        self._io = io
        self._barrier = WriteBarrier()
        self._placements = _Placements(cache_size)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="opx-dynamodb"
        )

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def __enter__(self) -> DynamoDBSaver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> DynamoDBSaver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # -- reads -----------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread, ns = _thread_ns(config)
        cid = get_checkpoint_id(config)
        now = self._clock()
        if cid:
            start = checkpoint_key(ns, cid)
            items = self._io.query(thread, between=(start, f"{start}{SEP}{TOP}"), reverse=True)
        else:
            items = self._io.query(
                thread, prefix=ns_prefix(ns), reverse=True, limits=(16, 64, None)
            )
        for item, writes in grouped(items):
            stored = self._reader.stored(thread, item, writes, now)
            if _expired(stored, now):
                return None
            return self._tuples([stored], {})[0]
        return None

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        for batch in self._list_batches(config, filter, before, limit):
            yield from batch

    def _list_batches(
        self,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> Batches:
        if limit is not None and limit <= 0:
            return
        threads = [_thread_ns(config)[0]] if config else self._all_threads()
        left = limit
        for thread in threads:
            for batch in self._thread_batches(thread, config, filter, before, left):
                yield batch
                if left is not None:
                    left -= len(batch)
                    if left <= 0:
                        return

    def _thread_batches(
        self,
        thread: str,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> Batches:
        configurable = config.get("configurable", {}) if config else {}
        ns: str | None = configurable.get("checkpoint_ns")
        only = get_checkpoint_id(config) if config else None
        before_id = get_checkpoint_id(before) if before else None
        now = self._clock()
        known: Known = {}
        batch: Records = []
        count = 0
        for item, writes in grouped(self._list_items(thread, ns, only, before_id, limit)):
            stored = self._reader.stored(thread, item, writes, now)
            if (only and stored.checkpoint_id != only) or _expired(stored, now):
                continue
            if before_id and stored.checkpoint_id >= before_id:
                continue
            if filter and not self._matches(stored, filter):
                continue
            batch.append(stored)
            count += 1
            if len(batch) >= _LIST_BATCH or count == limit:
                yield self._tuples(batch, known)
                batch = []
                if count == limit:
                    return
        if batch:
            yield self._tuples(batch, known)

    def _list_items(
        self,
        thread: str,
        ns: str | None,
        only: str | None,
        before_id: str | None,
        limit: int | None,
    ) -> Iterator[dict[str, Any]]:
        # A checkpoint usually has a few writes items: size pages so a limit is met in one.
        limits = (max(16, 8 * limit), None) if limit else (None,)
        if ns is None:
            return self._io.query(thread, prefix=CHECKPOINTS, reverse=True, limits=limits)
        if only:
            start = checkpoint_key(ns, only)
            return self._io.query(thread, between=(start, f"{start}{SEP}{TOP}"), reverse=True)
        if before_id:
            bounds = (ns_prefix(ns), checkpoint_key(ns, before_id))
            return self._io.query(thread, between=bounds, reverse=True, limits=limits)
        return self._io.query(thread, prefix=ns_prefix(ns), reverse=True, limits=limits)

    def _matches(self, stored: Stored, filter: dict[str, Any]) -> bool:
        metadata = self.serde.loads_typed(stored.head.metadata)
        return all(metadata.get(k) == v for k, v in filter.items())

    def _all_threads(self) -> Sequence[str]:
        """Threads with checkpoints, from a scan of the keys (listing without a config only)."""
        threads = set()
        for item in self._io.scan_keys():
            thread, sort = string(item, PK), string(item, SK)
            if thread and SEP not in thread and sort and parse_sort_key(sort):
                threads.add(thread)
        return sorted(threads)

    def _tuples(self, records: Sequence[Stored], known: Known) -> Tuples:
        values = self._reader.values(records, known)
        tuples = [self._tuple(r, v) for r, v in zip(records, values, strict=True)]
        for r in records:  # newer checkpoints are never referenced by older ones
            known.pop((r.thread, r.ns, r.checkpoint_id), None)
        return tuples

    def _tuple(self, stored: Stored, values: dict[str, tuple[str, bytes]]) -> CheckpointTuple:
        checkpoint: Checkpoint = self.serde.loads_typed(stored.head.checkpoint)
        checkpoint["channel_values"] = {ch: self.serde.loads_typed(v) for ch, v in values.items()}
        referenced = {ch for ref in stored.head.refs for ch in ref.channels}
        self._placements.put(
            (stored.thread, stored.ns, stored.checkpoint_id),
            placement(
                stored.checkpoint_id,
                stored.ttl or 0,
                checkpoint["channel_versions"],
                sorted(set(values) - referenced),
                stored.head.refs,
            ),
        )
        return CheckpointTuple(
            config=_config(stored.thread, stored.ns, stored.checkpoint_id),
            checkpoint=checkpoint,
            metadata=self.serde.loads_typed(stored.head.metadata),
            parent_config=(
                _config(stored.thread, stored.ns, stored.parent_id) if stored.parent_id else None
            ),
            pending_writes=[
                (w.task_id, w.channel, self.serde.loads_typed(w.value))
                for w in self._reader.writes(stored)
            ],
        )

    # -- writes ----------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        pending = self._barrier.pending(_parent_key(config))
        if pending:
            concurrent.futures.wait(pending, timeout=self.write_wait_s)
        return self._put_now(config, checkpoint, metadata, new_versions)

    def _put_now(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        thread, ns = _thread_ns(config)
        parent_id: str | None = config["configurable"].get("checkpoint_id")
        cid = checkpoint["id"]
        ttl = int(self._clock()) + self.ttl_seconds
        meta = get_serializable_checkpoint_metadata(config, metadata)
        values = checkpoint["channel_values"]
        versions = checkpoint["channel_versions"]
        parent = self._placements.get((thread, ns, parent_id)) if parent_id else None
        chosen = plan(values, versions, new_versions, parent, ttl=ttl, refresh=self.refresh_seconds)
        skeleton = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        dumps = self.serde.dumps_typed
        head = encode_head(checked(dumps(skeleton)), checked(dumps(meta)), chosen.refs)
        inline = {ch: checked(dumps(values[ch])) for ch in chosen.inline}
        run_id = meta.get("run_id")
        self._writer.checkpoint(
            thread,
            ns,
            cid,
            head=head,
            vals=encode_vals(inline) if inline else None,
            parent_id=parent_id,
            run_id=run_id if isinstance(run_id, str) else None,
            extra=common(ttl, _incident(config)),
        )
        self._placements.put(
            (thread, ns, cid), placement(cid, ttl, versions, chosen.inline, chosen.refs)
        )
        return _config(thread, ns, cid)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        key = _own_key(config)
        ticket = self._barrier.begin(key)
        try:
            self._put_writes_now(config, writes, task_id, task_path)
        finally:
            self._barrier.end(key, ticket)

    def _put_writes_now(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> None:
        if not writes:
            return
        thread, ns, cid = _own_key(config)
        envelopes: dict[str, bytes] = {}
        regular: set[str] = set()
        for idx, (channel, value) in enumerate(writes):
            slot = WRITES_IDX_MAP.get(channel, idx)
            name = write_attr(slot)
            if slot >= 0:
                if name in envelopes:
                    continue
                regular.add(name)
            envelopes[name] = encode_write(channel, checked(self.serde.dumps_typed(value)))
        self._writer.writes(
            thread,
            ns,
            cid,
            task_id,
            task_path=task_path,
            envelopes=envelopes,
            regular=regular,
            extra=common(int(self._clock()) + self.ttl_seconds, _incident(config)),
        )

    # -- maintenance -----------------------------------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        self._admin.delete_thread(str(thread_id))
        self._placements.forget(str(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        if run_ids:
            for thread in self._admin.delete_for_runs(run_ids):
                # Rewritten checkpoints no longer reference the deleted items.
                self._placements.forget(thread)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._admin.copy_thread(str(source_thread_id), str(target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}")
        for thread in thread_ids:
            if strategy == "delete":
                self.delete_thread(thread)
            else:
                self._admin.prune_keep_latest(check_thread_id(str(thread)), self._uses_delta)
                self._placements.forget(str(thread))

    def _uses_delta(self, stored: Stored) -> bool:
        metadata = self.serde.loads_typed(stored.head.metadata)
        return bool(metadata.get("counters_since_delta_snapshot"))

    # -- async -----------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._run(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        batches = self._list_batches(config, filter, before, limit)
        try:
            while (batch := await self._run(next, batches, None)) is not None:
                for found in batch:
                    yield found
        finally:
            batches.close()

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        pending = self._barrier.pending(_parent_key(config))
        if pending:
            await asyncio.wait([asyncio.wrap_future(f) for f in pending], timeout=self.write_wait_s)
        return await self._run(self._put_now, config, checkpoint, metadata, new_versions)

    def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> Coroutine[Any, Any, None]:
        """Takes the ordering ticket when called (not when awaited), so a later ``aput`` of the
        next checkpoint waits for these writes even if this coroutine has not started yet."""
        key = _own_key(config)
        ticket = self._barrier.begin(key)
        coroutine = self._aput_writes(key, ticket, config, tuple(writes), task_id, task_path)
        # A coroutine dropped before it ever runs must not hold up the next put.
        weakref.finalize(coroutine, self._barrier.end, key, ticket)
        return coroutine

    async def _aput_writes(
        self,
        key: Key,
        ticket: concurrent.futures.Future[None],
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> None:
        try:
            await self._run(self._put_writes_now, config, writes, task_id, task_path)
        finally:
            self._barrier.end(key, ticket)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._run(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._run(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._run(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._run(functools.partial(self.prune, strategy=strategy), thread_ids)


def _thread_ns(config: RunnableConfig) -> tuple[str, str]:
    configurable = config["configurable"]
    return check_thread_id(str(configurable["thread_id"])), str(
        configurable.get("checkpoint_ns") or ""
    )


def _own_key(config: RunnableConfig) -> Key:
    thread, ns = _thread_ns(config)
    return thread, ns, str(config["configurable"]["checkpoint_id"])


def _parent_key(config: RunnableConfig) -> Key:
    thread, ns = _thread_ns(config)
    return thread, ns, str(config["configurable"].get("checkpoint_id") or "")


def _config(thread: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {"thread_id": thread, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}
    }


def _incident(config: RunnableConfig) -> str | None:
    incident = config.get("configurable", {}).get("incident_id")
    return incident if isinstance(incident, str) and incident else None


def _expired(stored: Stored, now: float) -> bool:
    expires = stored.expires_at()
    return expires is not None and expires < now
