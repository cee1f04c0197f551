"""Keys of the DynamoDB checkpoint table: threads, namespaces, checkpoints and tasks as keys.

Layout (partition key ``session_id``, sort key ``checkpoint_id``; ``␟`` is the unit separator
U+001F, the lowest character a key component can contain after escaping):

* checkpoint:   ``{thread}`` / ``c␟{ns}␟{checkpoint_id}``
* task writes:  ``{thread}`` / ``c␟{ns}␟{checkpoint_id}␟w␟{task_id}``
* value chunk:  ``k␟{thread}`` / ``{ns}␟{checkpoint_id}␟{digest}␟{part}``
* run marker:   ``r␟{run_id}`` / ``{thread}``

Because every component sorts above ``␟``, ``c␟{ns}␟`` never prefixes another namespace, a
checkpoint's writes sort directly after it, and a reverse query on ``c␟{ns}␟`` meets the newest
checkpoint of that namespace (after its writes) first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEP = "\x1f"
# Sorts after every character, so it closes a key range that must include all continuations.
TOP = "\U0010ffff"
CHECKPOINTS = f"c{SEP}"
_ESCAPED = re.compile(r"%([0-9A-F]{2})")


def escape(part: str) -> str:
    """Percent-encode ``%`` and control characters so no component contains the separator."""
    if "%" not in part and all(ch > SEP for ch in part):
        return part
    return "".join(f"%{ord(ch):02X}" if ch == "%" or ch <= SEP else ch for ch in part)


def unescape(part: str) -> str:
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), part)


def check_thread_id(thread_id: str) -> str:
    """Thread ids are partition keys as they are; the separator would make them ambiguous."""
    if not thread_id or SEP in thread_id:
        raise ValueError(f"invalid thread id {thread_id!r}: empty or contains U+001F")
    return thread_id


def ns_prefix(ns: str) -> str:
    return f"{CHECKPOINTS}{escape(ns)}{SEP}"


def checkpoint_key(ns: str, checkpoint_id: str) -> str:
    return ns_prefix(ns) + escape(checkpoint_id)


def writes_key(ns: str, checkpoint_id: str, task_id: str) -> str:
    return f"{checkpoint_key(ns, checkpoint_id)}{SEP}w{SEP}{escape(task_id)}"


def chunk_partition(thread_id: str) -> str:
    return f"k{SEP}{thread_id}"


def chunk_prefix(ns: str, checkpoint_id: str) -> str:
    return f"{escape(ns)}{SEP}{escape(checkpoint_id)}{SEP}"


def chunk_key(ns: str, checkpoint_id: str, digest: str, part: int) -> str:
    return f"{chunk_prefix(ns, checkpoint_id)}{digest}{SEP}{part:05d}"


def run_partition(run_id: str) -> str:
    return f"r{SEP}{run_id}"


@dataclass(frozen=True)
class SortKey:
    """A parsed checkpoint or writes sort key; ``task_id`` is None for a checkpoint item."""

    ns: str
    checkpoint_id: str
    task_id: str | None = None


def parse_sort_key(key: str) -> SortKey | None:
    """The checkpoint or writes key behind a sort key, or None for other item kinds."""
    parts = key.split(SEP)
    if parts[0] != "c":
        return None
    if len(parts) == 3:
        return SortKey(unescape(parts[1]), unescape(parts[2]))
    if len(parts) == 5 and parts[3] == "w":
        return SortKey(unescape(parts[1]), unescape(parts[2]), unescape(parts[4]))
    return None
