"""The per-tool wall-clock deadline guard: a time budget per tool call, and one AWS request run in
a worker thread so that the tool returns at its deadline even when a socket hangs past botocore's
own timeouts (or a retry sleeps)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
Clock = Callable[[], float]


class DeadlineExceeded(Exception):
    """The request did not finish within the time it was given."""


@dataclass(frozen=True)
class Deadlines:
    """Seconds per request and per tool call; ``per_tool`` overrides the total for a tool."""

    request_s: float = 2.0
    total_s: float = 5.0
    per_tool: tuple[tuple[str, float], ...] = (("search_logs", 10.0),)

    def __post_init__(self) -> None:
        values = [self.request_s, self.total_s, *(s for _, s in self.per_tool)]
        if any(not 0 < v <= 900 for v in values):
            raise ValueError("deadlines must be between 0 and 900 seconds")

    def total_for(self, tool: str) -> float:
        return dict(self.per_tool).get(tool, self.total_s)


class Budget:
    """The time left for one tool call. Each request gets at most ``request_s`` and never more
    than what is left."""

    def __init__(self, total_s: float, request_s: float, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + total_s
        self.total_s = total_s
        self.request_s = request_s

    def remaining(self) -> float:
        return max(0.0, self._end - self._clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def request_timeout(self) -> float:
        return min(self.request_s, self.remaining())


def run_within(call: Callable[[], T], timeout_s: float) -> T:
    """``call()``'s result, or :class:`DeadlineExceeded` after ``timeout_s`` seconds. A call that
    overruns keeps running in its daemon thread until botocore's socket timeout ends it; its
    result is discarded."""
    if timeout_s <= 0:
        raise DeadlineExceeded("no time left")
    box: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="opx-aws-request", daemon=True).start()
    if not done.wait(timeout_s):
        raise DeadlineExceeded(f"no answer within {timeout_s:.3g} s")
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value
