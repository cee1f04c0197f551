"""Storing checkpoint and task-write items: chunks first, then one request for the item itself,
plus a run marker the first time this process stores a checkpoint of a run on a thread."""

from __future__ import annotations

import threading

from botocore.exceptions import ClientError

from opx.durability.dynamodb_chunks import shrink
from opx.durability.dynamodb_io import Item, TableIO, key
from opx.durability.dynamodb_keys import run_partition, writes_key
from opx.durability.dynamodb_records import (
    HEAD,
    TASK_PATH,
    VALS,
    checkpoint_item,
    write_updates,
)
from opx.durability.dynamodb_size import INLINE_LIMIT

# Small enough that every value of a writes item moves to chunks when the stored item, grown
# by earlier calls for the same task, would pass the size limit.
_ALL_IN_CHUNKS = 2048


class Writer:
    def __init__(self, io: TableIO) -> None:
        self.io = io
        self._lock = threading.Lock()
        self._marked: set[tuple[str, str]] = set()

    def checkpoint(
        self,
        thread: str,
        ns: str,
        checkpoint_id: str,
        *,
        head: bytes,
        vals: bytes | None,
        parent_id: str | None,
        run_id: str | None,
        extra: Item,
    ) -> None:
        """One PutItem for the checkpoint (its commit record), after any chunks it references."""
        item = checkpoint_item(
            thread,
            ns,
            checkpoint_id,
            head=head,
            vals=vals,
            parent_id=parent_id,
            run_id=run_id,
            extra=extra,
        )
        chunks = shrink(
            item, (HEAD, VALS), thread=thread, ns=ns, checkpoint_id=checkpoint_id, extra=extra
        )
        if run_id:
            self.mark_run(run_id, thread, extra)
        if chunks:
            self.io.write_batch(chunks)
        self.io.put(item)

    def writes(
        self,
        thread: str,
        ns: str,
        checkpoint_id: str,
        task_id: str,
        *,
        task_path: str,
        envelopes: dict[str, bytes],
        regular: set[str],
        extra: Item,
    ) -> None:
        """One UpdateItem on the task's writes item: regular writes are kept if already there."""
        item: Item = {
            **key(thread, writes_key(ns, checkpoint_id, task_id)),
            **{name: {"B": data} for name, data in envelopes.items()},
            TASK_PATH: {"S": task_path},
            **extra,
        }
        names = sorted(envelopes)
        where = (thread, ns, checkpoint_id)
        try:
            self._send(item, regular, self._shrink(item, names, where, extra))
        except ClientError as exc:
            if not _too_large(exc):
                raise
            self._send(item, regular, self._shrink(item, names, where, extra, _ALL_IN_CHUNKS))

    @staticmethod
    def _shrink(
        item: Item,
        names: list[str],
        where: tuple[str, str, str],
        extra: Item,
        limit: int = INLINE_LIMIT,
    ) -> list[Item]:
        thread, ns, checkpoint_id = where
        return shrink(
            item, names, thread=thread, ns=ns, checkpoint_id=checkpoint_id, extra=extra, limit=limit
        )

    def _send(self, item: Item, regular: set[str], chunks: list[Item]) -> None:
        if chunks:
            self.io.write_batch(chunks)
        item_key = {name: item[name] for name in ("session_id", "checkpoint_id")}
        for update in write_updates(item, regular):
            self.io.update(item_key, update.expression, update.names, update.values)

    def mark_run(self, run_id: str, thread: str, extra: Item) -> None:
        """Record that a run wrote to a thread, so delete_for_runs finds it without a scan."""
        with self._lock:
            if (run_id, thread) in self._marked:
                return
        self.io.put({**key(run_partition(run_id), thread), **extra})
        with self._lock:
            self._marked.add((run_id, thread))

    def forget_thread(self, thread: str) -> None:
        with self._lock:
            self._marked = {m for m in self._marked if m[1] != thread}


def _too_large(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    message = str(error.get("Message", "")).lower()
    return error.get("Code") == "ValidationException" and "size" in message
