"""Reading checkpoints back: query results grouped into checkpoints with their task writes, and
channel values gathered from the items (and chunk items) that hold them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from langgraph.checkpoint.base import writes_sort_key

from opx.durability.dynamodb_chunks import assemble, chunk_keys
from opx.durability.dynamodb_codec import Typed, decode, is_reference, parse_reference
from opx.durability.dynamodb_io import PK, SK, Item, TableIO, binary, key, number, string
from opx.durability.dynamodb_keys import checkpoint_key, parse_sort_key
from opx.durability.dynamodb_records import (
    HEAD,
    PARENT,
    RUN_ID,
    TTL,
    VALS,
    Head,
    StoredWrite,
    parse_head,
    parse_vals,
    parse_write,
    task_path,
    write_index,
)

Values = dict[str, Typed]
Slot = tuple[str, str, str]  # thread, namespace, checkpoint id
Known = dict[Slot, Values]


class CheckpointDataMissing(LookupError):
    """A checkpoint references channel values whose item no longer exists."""


@dataclass(frozen=True)
class Stored:
    """One stored checkpoint item with its (not yet decoded) writes items."""

    thread: str
    ns: str
    checkpoint_id: str
    parent_id: str | None
    run_id: str | None
    ttl: int | None
    head: Head
    vals: bytes | None
    write_items: tuple[Item, ...]

    def expires_at(self) -> int | None:
        """When the checkpoint stops being complete: its own TTL or its earliest reference's."""
        times = [ref.ttl for ref in self.head.refs]
        if self.ttl is not None:
            times.append(self.ttl)
        return min(times) if times else None


def grouped(items: Iterable[Item]) -> Iterator[tuple[Item, list[Item]]]:
    """Checkpoint items with their writes items, from a reverse-ordered query (a checkpoint's
    writes sort after it, so they arrive first)."""
    waiting: dict[tuple[str, str], list[Item]] = {}
    for item in items:
        parsed = parse_sort_key(string(item, SK) or "")
        if parsed is None:
            continue
        slot = (parsed.ns, parsed.checkpoint_id)
        if parsed.task_id is not None:
            waiting.setdefault(slot, []).append(item)
        else:
            yield item, waiting.pop(slot, [])


class Reader:
    def __init__(self, io: TableIO, max_bytes: int) -> None:
        self.io = io
        self.max_bytes = max_bytes

    def decode(self, thread: str, ns: str, checkpoint_id: str, envelope: bytes) -> object:
        if is_reference(envelope):
            ref = parse_reference(envelope)
            items = self.io.get_batch(chunk_keys(thread, ns, checkpoint_id, ref))
            envelope = assemble(ref, items)
        return decode(envelope, self.max_bytes)

    def stored(self, thread: str, item: Item, writes: Sequence[Item], now: float) -> Stored:
        parsed = parse_sort_key(string(item, SK) or "")
        if parsed is None or parsed.task_id is not None:
            raise ValueError("not a checkpoint item")
        ns, cid = parsed.ns, parsed.checkpoint_id
        head = parse_head(self.decode(thread, ns, cid, binary(item, HEAD) or b""))
        return Stored(
            thread=thread,
            ns=ns,
            checkpoint_id=cid,
            parent_id=string(item, PARENT),
            run_id=string(item, RUN_ID),
            ttl=number(item, TTL),
            head=head,
            vals=binary(item, VALS),
            write_items=tuple(w for w in writes if not _expired(w, now)),
        )

    def writes(self, stored: Stored) -> list[StoredWrite]:
        """The checkpoint's pending writes in ``writes_sort_key`` order."""
        found = [w for item in stored.write_items for w in self._writes(stored.thread, item)]
        return sorted(found, key=lambda w: writes_sort_key(w.task_path, w.task_id, w.idx))

    def _writes(self, thread: str, item: Item) -> list[StoredWrite]:
        parsed = parse_sort_key(string(item, SK) or "")
        if parsed is None or parsed.task_id is None:
            return []
        path = task_path(item)
        found: list[StoredWrite] = []
        for name in sorted(item):
            idx = write_index(name)
            data = binary(item, name)
            if idx is None or data is None:
                continue
            raw = self.decode(thread, parsed.ns, parsed.checkpoint_id, data)
            found.append(parse_write(raw, task_path=path, task_id=parsed.task_id, idx=idx))
        return found

    def values(self, records: Sequence[Stored], known: Known | None = None) -> list[Values]:
        """Every channel value of each record; ``known`` caches decoded items across calls."""
        known = {} if known is None else known
        for r in records:
            slot = (r.thread, r.ns, r.checkpoint_id)
            if slot not in known:
                known[slot] = self._vals(slot, r.vals)
        missing = sorted(
            {(r.thread, r.ns, ref.checkpoint_id) for r in records for ref in r.head.refs}
            - set(known)
        )
        if missing:
            self._fetch(missing, known)
        return [_gather(r, known) for r in records]

    def _vals(self, slot: Slot, envelope: bytes | None) -> Values:
        return parse_vals(self.decode(*slot, envelope)) if envelope else {}

    def _fetch(self, wanted: Sequence[Slot], known: Known) -> None:
        keys = [key(thread, checkpoint_key(ns, cid)) for thread, ns, cid in wanted]
        for item in self.io.get_batch(keys, projection=(VALS,)):
            parsed = parse_sort_key(string(item, SK) or "")
            thread = string(item, PK)
            if parsed is None or thread is None:
                continue
            slot = (thread, parsed.ns, parsed.checkpoint_id)
            known[slot] = self._vals(slot, binary(item, VALS))


def _gather(record: Stored, known: Mapping[Slot, Values]) -> Values:
    values = dict(known.get((record.thread, record.ns, record.checkpoint_id), {}))
    for ref in record.head.refs:
        source = known.get((record.thread, record.ns, ref.checkpoint_id))
        for channel in ref.channels:
            if source is None or channel not in source:
                raise CheckpointDataMissing(
                    f"checkpoint {record.checkpoint_id} of thread {record.thread!r} needs "
                    f"{channel!r} from {ref.checkpoint_id}, which no longer exists"
                )
            values[channel] = source[channel]
    return values


def _expired(item: Item, now: float) -> bool:
    ttl = number(item, TTL)
    return ttl is not None and ttl < now
