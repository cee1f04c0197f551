"""Thread maintenance on the checkpoint table: delete a thread, delete the checkpoints of runs,
copy a thread, and prune to the latest checkpoint per namespace.

Checkpoints may read unchanged channel values from older checkpoint items. Before an older item
is deleted, every surviving checkpoint that reads from it is rewritten with all of its values
(and only then is anything deleted), so a crash part-way never leaves a broken checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from opx.durability.dynamodb_io import PK, SK, Item, TableIO, key, string
from opx.durability.dynamodb_keys import (
    CHECKPOINTS,
    SEP,
    check_thread_id,
    chunk_partition,
    parse_sort_key,
    run_partition,
    unescape,
)
from opx.durability.dynamodb_reader import Reader, Stored, grouped
from opx.durability.dynamodb_records import (
    INCIDENT,
    RUN_ID,
    TTL,
    encode_head,
    encode_vals,
)
from opx.durability.dynamodb_writer import Writer

logger = logging.getLogger(__name__)

Slot = tuple[str, str]  # namespace, checkpoint id
# Decides from a checkpoint whether its thread uses DeltaChannel (then keep_latest is unsafe).
UsesDelta = Callable[[Stored], bool]


@dataclass(frozen=True)
class Thread:
    """Every checkpoint of one thread (newest first) and the raw items of the partition."""

    checkpoints: list[tuple[Stored, Item]]
    items: list[Item]


class Admin:
    def __init__(self, io: TableIO, reader: Reader, writer: Writer) -> None:
        self.io = io
        self.reader = reader
        self.writer = writer

    def load(self, thread: str) -> Thread:
        items = list(self.io.query(thread, prefix=CHECKPOINTS, reverse=True))
        checkpoints = [
            (self.reader.stored(thread, item, [], now=0.0), item) for item, _ in grouped(items)
        ]
        return Thread(checkpoints, items)

    def delete_thread(self, thread: str) -> None:
        check_thread_id(thread)
        items = list(self.io.query(thread, projection=(SK, RUN_ID)))
        chunks = list(self.io.query(chunk_partition(thread), projection=(SK,)))
        runs = sorted({run for it in items if (run := string(it, RUN_ID))})
        self.io.write_batch(
            deletes=[key(chunk_partition(thread), string(c, SK) or "") for c in chunks]
            + [key(thread, string(it, SK) or "") for it in items]
            + [key(run_partition(run), thread) for run in runs]
        )
        self.writer.forget_thread(thread)

    def delete_for_runs(self, run_ids: Iterable[str]) -> list[str]:
        """Delete the checkpoints (and their writes and chunks) of the runs; returns the
        threads that were touched."""
        runs = sorted(set(run_ids))
        markers = {
            run: [string(m, SK) or "" for m in self.io.query(run_partition(run), projection=(SK,))]
            for run in runs
        }
        touched = sorted({t for threads in markers.values() for t in threads})
        for thread in touched:
            stored = self.load(thread)
            doomed = {(s.ns, s.checkpoint_id) for s, _ in stored.checkpoints if s.run_id in markers}
            self._remove(thread, stored, doomed)
        self.io.write_batch(
            deletes=[key(run_partition(r), t) for r, threads in markers.items() for t in threads]
        )
        for thread in touched:
            self.writer.forget_thread(thread)
        return touched

    def prune_keep_latest(self, thread: str, uses_delta: UsesDelta) -> None:
        stored = self.load(thread)
        if any(uses_delta(s) for s, _ in stored.checkpoints):
            # Older checkpoints hold the deltas a DeltaChannel rebuilds its value from.
            logger.warning("not pruning thread %r: it uses DeltaChannel history", thread)
            return
        latest: dict[str, str] = {}
        for s, _ in stored.checkpoints:
            latest[s.ns] = max(latest.get(s.ns, ""), s.checkpoint_id)
        doomed = {
            (s.ns, s.checkpoint_id)
            for s, _ in stored.checkpoints
            if s.checkpoint_id != latest[s.ns]
        }
        self._remove(thread, stored, doomed)

    def copy_thread(self, source: str, target: str) -> None:
        check_thread_id(source)
        check_thread_id(target)
        items = list(self.io.query(source))
        chunks = list(self.io.query(chunk_partition(source)))
        first_of_run: dict[str, Item] = {}
        for it in items:
            if run := string(it, RUN_ID):
                first_of_run.setdefault(run, it)
        markers = [
            {**key(run_partition(run), target), **_kept(it)}
            for run, it in sorted(first_of_run.items())
        ]
        # Markers and chunks first: a checkpoint never exists without what it points to.
        self.io.write_batch(
            puts=markers
            + [{**c, PK: {"S": chunk_partition(target)}} for c in chunks]
            + [{**it, PK: {"S": target}} for it in items]
        )

    def _remove(self, thread: str, stored: Thread, doomed: set[Slot]) -> None:
        if not doomed:
            return
        for s, item in stored.checkpoints:
            slot = (s.ns, s.checkpoint_id)
            if slot not in doomed and any((s.ns, r.checkpoint_id) in doomed for r in s.head.refs):
                self._self_contained(s, item)
        chunks = [
            string(c, SK) or "" for c in self.io.query(chunk_partition(thread), projection=(SK,))
        ]
        self.io.write_batch(
            deletes=[key(thread, sk) for sk in _keys_of(stored.items, doomed)]
            + [key(chunk_partition(thread), sk) for sk in chunks if _chunk_slot(sk) in doomed]
        )

    def _self_contained(self, s: Stored, item: Item) -> None:
        """Rewrite a checkpoint with every value it reads from older items."""
        (values,) = self.reader.values([s])
        extra = _kept(item)
        self.writer.checkpoint(
            s.thread,
            s.ns,
            s.checkpoint_id,
            head=encode_head(s.head.checkpoint, s.head.metadata, ()),
            vals=encode_vals(values) if values else None,
            parent_id=s.parent_id,
            run_id=s.run_id,
            extra=extra,
        )


def _kept(item: Item) -> Item:
    """The TTL and incident attributes of an item, for items derived from it."""
    return {name: item[name] for name in (TTL, INCIDENT) if name in item}


def _keys_of(items: Sequence[Item], doomed: set[Slot]) -> list[str]:
    found: list[str] = []
    for item in items:
        sk = string(item, SK) or ""
        parsed = parse_sort_key(sk)
        if parsed is not None and (parsed.ns, parsed.checkpoint_id) in doomed:
            found.append(sk)
    return found


def _chunk_slot(sort_key: str) -> Slot | None:
    parts = sort_key.split(SEP)
    return (unescape(parts[0]), unescape(parts[1])) if len(parts) == 4 else None
