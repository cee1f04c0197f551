"""Write ordering: a checkpoint put waits for this process's earlier put_writes on its parent.

LangGraph does not order a superseding ``put`` after the ``put_writes`` of the checkpoint it
replaces, so after a crash the stored thread could hold the child but miss the parent's task
writes. Each put_writes takes a ticket when it is called; a put waits for the tickets that exist
when it is called, and later writes never delay it.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from concurrent.futures import Future


class WriteBarrier:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[Hashable, set[Future[None]]] = {}

    def begin(self, key: Hashable) -> Future[None]:
        ticket: Future[None] = Future()
        with self._lock:
            self._open.setdefault(key, set()).add(ticket)
        return ticket

    def end(self, key: Hashable, ticket: Future[None]) -> None:
        """Release a ticket whether the write succeeded or not (the writer sees its own error)."""
        with self._lock:
            tickets = self._open.get(key)
            if tickets is not None:
                tickets.discard(ticket)
                if not tickets:
                    del self._open[key]
        if not ticket.done():
            ticket.set_result(None)

    def pending(self, key: Hashable) -> list[Future[None]]:
        with self._lock:
            return list(self._open.get(key, ()))
