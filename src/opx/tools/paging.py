"""Paging of tool results: packing items into 10 KB pages behind opaque tokens, and following
those tokens to reassemble a whole answer."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from json.encoder import encode_basestring_ascii
from operator import add
from typing import Any

from opx.domain.identity import short_digest
from opx.domain.tool_result import MAX_TOOL_RESULT_BYTES, ToolError, ToolResult, ToolStatus

JsonDict = dict[str, Any]

# Parallel point lists a metric series may be split along; pieces share the series id.
SPLIT_KEYS = ("timestamps", "values")
# Shortest a string is cut to when an item alone is larger than a page.
_MIN_STRING = 16
_TOKEN_VERSION = "p1"
_TOKEN_TEXT = re.compile(r"p1:(0|[1-9][0-9]{0,15}):(0|[1-9][0-9]{0,15}):([0-9a-f]{16})")
# An upper bound on any real cursor, so the reserved token space is never too small.
_BIG = 10**16 - 1


class TokenError(ValueError):
    """A ``next_token`` that this query did not issue."""


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: an item index and, inside a split item, a point index."""

    item: int = 0
    part: int = 0


@dataclass(frozen=True)
class Entry:
    """One item of a paged list: the list it goes in, and whether it may be split by points."""

    key: str
    item: JsonDict
    splittable: bool = False


@dataclass(frozen=True)
class Column:
    """One split list with the JSON size of each element, measured once. Items built from
    immutable records can share a column (series on the same time grid share timestamps)."""

    values: Sequence[Any]
    sizes: Sequence[int]

    @classmethod
    def of(cls, values: Sequence[Any]) -> Column:
        return cls(values, json_sizes(values))


@dataclass(frozen=True)
class SplitItem:
    """An item that may be cut by points, with its points measured once: any run of points is
    then sized by arithmetic instead of by serialising it, page after page. Immutable records
    can build one per item and reuse it for every page and every query."""

    # The item with each split list empty: the other fields, in the item's own key order.
    shell: JsonDict
    shell_size: int
    # The split lists, in SPLIT_KEYS order; pieces are slices, so callers never get these.
    columns: tuple[Sequence[Any], ...]
    # sums[i] is the JSON size of points [0, i), every column, separators not counted.
    sums: Sequence[int]

    @classmethod
    def of(cls, item: JsonDict) -> SplitItem:
        """Measure ``item``, which must hold every split list."""
        return cls.from_columns(item, {k: Column.of(item[k]) for k in SPLIT_KEYS})

    @classmethod
    def from_columns(cls, item: JsonDict, columns: Mapping[str, Column]) -> SplitItem:
        """The item made of ``item``'s other fields (in its key order; its split lists, if
        present, only fix where they go) and the measured ``columns``, all of one length."""
        ordered = [columns[k] for k in SPLIT_KEYS]
        if len({len(c.values) for c in ordered}) > 1:
            raise ValueError(f"split lists {', '.join(SPLIT_KEYS)} differ in length")
        shell = {k: ([] if k in SPLIT_KEYS else v) for k, v in item.items()}
        shell.update((k, []) for k in SPLIT_KEYS if k not in shell)
        per_point = ordered[0].sizes
        for column in ordered[1:]:
            per_point = list(map(add, per_point, column.sizes))
        # array("q") keeps the running sums compact: they live as long as the records do.
        sums = array("q", list(accumulate(per_point, initial=0)))
        return cls(shell, json_size(shell), tuple(c.values for c in ordered), sums)

    def __len__(self) -> int:
        return len(self.sums) - 1

    def size(self, start: int, stop: int) -> int:
        """JSON size of the item holding points ``[start, stop)``: each split list grows by its
        elements and a comma between neighbours."""
        count = stop - start
        commas = len(SPLIT_KEYS) * (count - 1) if count > 0 else 0
        return self.shell_size + self.sums[stop] - self.sums[start] + commas

    def piece(self, start: int, stop: int) -> JsonDict:
        """The item holding points ``[start, stop)``, keys in the item's order."""
        cut = dict(zip(SPLIT_KEYS, (c[start:stop] for c in self.columns), strict=True))
        return {k: cut.get(k, v) for k, v in self.shell.items()}

    def fit(self, start: int, stop: int, room: int) -> int:
        """The most points from ``start`` (at most to ``stop``) whose piece adds at most ``room``
        bytes to the empty shell; sizes only grow with the count, so a binary search finds it."""
        base = self.shell_size
        low, high = 0, stop - start
        while low < high:
            middle = (low + high + 1) // 2
            if self.size(start, start + middle) - base <= room:
                low = middle
            else:
                high = middle - 1
        return low


@dataclass(frozen=True)
class SplitEntry:
    """A splittable entry over a measured item: the list it goes in and the points
    ``[start, stop)`` of the item that belong to this answer."""

    key: str
    item: SplitItem
    start: int
    stop: int

    @classmethod
    def of(cls, entry: Entry) -> SplitEntry:
        """A plain splittable entry, measured on the spot (callers with immutable items should
        build the :class:`SplitItem` once and keep it)."""
        item = SplitItem.of(entry.item)
        return cls(entry.key, item, 0, len(item))


# What a paged answer's ``render`` returns for each index.
PageEntry = Entry | SplitEntry


@dataclass(frozen=True)
class Page:
    data: dict[str, list[JsonDict]]
    next: Cursor | None
    truncated: bool


def fingerprint(*parts: object) -> str:
    """A short digest of a call's arguments, bound into its tokens so they cannot be reused
    with another query."""
    return short_digest(*(repr(p) for p in parts))


def encode_token(cursor: Cursor, query: str) -> str:
    text = f"{_TOKEN_VERSION}:{cursor.item}:{cursor.part}:{query}"
    return base64.urlsafe_b64encode(text.encode("ascii")).decode("ascii")


def decode_token(token: str, query: str) -> Cursor:
    """The cursor inside ``token``; :class:`TokenError` if it is malformed or from another query."""
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise TokenError("next_token is malformed") from exc
    match = _TOKEN_TEXT.fullmatch(text)
    if match is None:
        raise TokenError("next_token is malformed")
    if match.group(3) != query:
        raise TokenError("next_token belongs to a different query")
    return Cursor(int(match.group(1)), int(match.group(2)))


def json_size(value: object) -> int:
    """Bytes of ``value`` serialised exactly as :meth:`ToolResult.size_bytes` does."""
    return len(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def json_sizes(values: Sequence[Any]) -> list[int]:
    """:func:`json_size` of each element. Lists of only strings or only finite floats (metric
    points) are measured without serialising, using the same escaping and float text that
    ``json`` uses; anything else is serialised element by element."""
    kinds = set(map(type, values))
    if kinds == {str}:
        # Escaped output is pure ASCII, so characters are bytes.
        return list(map(len, map(encode_basestring_ascii, values)))
    if kinds == {float} and all(map(math.isfinite, values)):
        return list(map(len, map(float.__repr__, values)))
    return [json_size(v) for v in values]


def page_budget(source: str, keys: Sequence[str], query: str) -> int:
    """Bytes left for list items once the envelope (with the longest token) is counted."""
    return _page_budget(source, tuple(keys), query)


@lru_cache(maxsize=1024)
def _page_budget(source: str, keys: tuple[str, ...], query: str) -> int:
    # Every page of a query has the same envelope; measuring it once saves a model dump a page.
    envelope = ToolResult(
        status=ToolStatus.SUCCESS,
        data={k: [] for k in keys},
        truncated=False,
        source=source,
        next_token=encode_token(Cursor(_BIG, _BIG), query),
    )
    return MAX_TOOL_RESULT_BYTES - envelope.size_bytes()


def paged_result(
    *,
    source: str,
    keys: Sequence[str],
    count: int,
    render: Callable[[int], PageEntry],
    next_token: str | None,
    query: str,
) -> ToolResult:
    """One page of the ``count`` entries that ``render`` builds, from the cursor in
    ``next_token``; raises :class:`TokenError` for a bad token."""
    cursor = Cursor() if next_token is None else decode_token(next_token, query)
    page = pack(
        count=count,
        render=render,
        cursor=cursor,
        budget=page_budget(source, keys, query),
        keys=keys,
    )
    token = None if page.next is None else encode_token(page.next, query)
    return ToolResult(
        status=ToolStatus.SUCCESS,
        data=dict(page.data),
        truncated=page.truncated,
        source=source,
        next_token=token,
    )


def pack(
    *,
    count: int,
    render: Callable[[int], PageEntry],
    cursor: Cursor,
    budget: int,
    keys: Sequence[str],
) -> Page:
    """Greedily fill a page of ``budget`` bytes with entries from ``cursor`` on. A splittable
    entry that does not fit is cut by points and continues on the next page."""
    _check_cursor(count, render, cursor)
    packer = _Packer(budget, {k: [] for k in keys})
    position, full = cursor, False
    while not full and position.item < count:
        entry = _measured(render(position.item))
        if isinstance(entry, SplitEntry):
            position, full = packer.add_split(entry, position)
        else:
            position, full = packer.add_whole(entry, position)
    done = position.item >= count
    return Page(packer.data, None if done else position, packer.truncated)


def _measured(entry: PageEntry) -> PageEntry:
    """Splittable entries as :class:`SplitEntry`, so that one packing path serves both kinds."""
    if isinstance(entry, Entry) and entry.splittable:
        return SplitEntry.of(entry)
    return entry


def _points_in(entry: PageEntry) -> int:
    """How many cursor parts an entry has: its points if splittable, else one."""
    if isinstance(entry, SplitEntry):
        return entry.stop - entry.start
    return len(entry.item[SPLIT_KEYS[0]]) if entry.splittable else 1


def _check_cursor(count: int, render: Callable[[int], PageEntry], cursor: Cursor) -> None:
    if cursor == Cursor():
        return
    if cursor.item >= count:
        raise TokenError("next_token points past the end of the results")
    if cursor.part >= _points_in(render(cursor.item)):
        raise TokenError("next_token points past the end of an item")


@dataclass
class _Packer:
    """The page being filled; each ``add_*`` returns the next cursor and whether the page is
    full."""

    budget: int
    data: dict[str, list[JsonDict]]
    used: int = 0
    truncated: bool = False

    @property
    def empty(self) -> bool:
        return self.used == 0

    def _cost(self, key: str, size: int) -> int:
        # A comma separates an item from the one before it in the same list.
        return size + (1 if self.data[key] else 0)

    def _take(self, key: str, item: JsonDict, size: int) -> None:
        self.used += self._cost(key, size)
        self.data[key].append(item)

    def add_whole(self, entry: Entry, at: Cursor) -> tuple[Cursor, bool]:
        size = json_size(entry.item)
        if self.used + self._cost(entry.key, size) <= self.budget:
            self._take(entry.key, entry.item, size)
            return Cursor(at.item + 1), False
        if not self.empty:
            return at, True
        # Alone on a page and still too big: cut its longest strings rather than lose it.
        self.truncated = True
        shrunk = shrink_to_fit(entry.item, self.budget)
        if shrunk is not None:
            self._take(entry.key, shrunk, json_size(shrunk))
        return Cursor(at.item + 1), True

    def add_split(self, entry: SplitEntry, at: Cursor) -> tuple[Cursor, bool]:
        item, first, stop = entry.item, entry.start + at.part, entry.stop
        rest = item.size(first, stop)
        if self.used + self._cost(entry.key, rest) <= self.budget:
            self._take(entry.key, item.piece(first, stop), rest)
            return Cursor(at.item + 1), False
        room = self.budget - self.used - self._cost(entry.key, item.shell_size)
        taken = item.fit(first, stop, room)
        if taken == 0 and not self.empty:
            return at, True
        if taken == 0:
            # Not even one point fits on an empty page: the series header alone is too big.
            self.truncated = True
            return Cursor(at.item + 1), True
        self._take(entry.key, item.piece(first, first + taken), item.size(first, first + taken))
        return Cursor(at.item, at.part + taken), True


def shrink_to_fit(item: JsonDict, budget: int) -> JsonDict | None:
    """A copy of ``item`` whose longest strings are cut (ending in ``…``) until it fits in
    ``budget`` bytes; None when even that is not enough."""
    current: Any = item
    while json_size(current) > budget:
        path, text = _longest_string(current, ())
        if path is None or len(text) <= _MIN_STRING:
            return None
        keep = max(_MIN_STRING, len(text) // 2)
        current = _replace(current, path, text[: keep - 1] + "…")
    return dict(current)


def _longest_string(value: Any, path: tuple[Any, ...]) -> tuple[tuple[Any, ...] | None, str]:
    if isinstance(value, str):
        return path, value
    children: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        children = sorted(value.items())
    elif isinstance(value, list):
        children = list(enumerate(value))
    best: tuple[tuple[Any, ...] | None, str] = (None, "")
    for key, child in children:
        found = _longest_string(child, (*path, key))
        if found[0] is not None and len(found[1]) > len(best[1]):
            best = found
    return best


def _replace(value: Any, path: tuple[Any, ...], text: str) -> Any:
    if not path:
        return text
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: (_replace(v, rest, text) if k == head else v) for k, v in value.items()}
    return [(_replace(v, rest, text) if i == head else v) for i, v in enumerate(value)]


_STATUS_RANK = {ToolStatus.SUCCESS: 0, ToolStatus.PARTIAL: 1, ToolStatus.FAILED: 2}


@dataclass(frozen=True)
class CollectedResult:
    """Every page of one query merged: lists concatenated and split series joined again."""

    status: ToolStatus
    data: dict[str, Any]
    truncated: bool
    pages: int
    source: str
    errors: tuple[ToolError, ...] = ()


def collect(call: Callable[[str | None], ToolResult], *, max_pages: int = 200) -> CollectedResult:
    """Call ``call(token)`` from ``None`` on, following ``next_token`` for at most ``max_pages``
    pages. The status is the worst page's; ``truncated`` is set if any page was, if a later page
    failed, or if pages were left unread."""
    data: dict[str, Any] = {}
    status, truncated, errors = ToolStatus.SUCCESS, False, []
    token: str | None = None
    pages, source = 0, ""
    while pages < max_pages:
        result = call(token)
        pages, source = pages + 1, result.source
        status = max(status, result.status, key=_STATUS_RANK.__getitem__)
        truncated = truncated or result.truncated
        if result.error is not None:
            errors.append(result.error)
        if result.status is ToolStatus.FAILED:
            truncated = truncated or pages > 1
            break
        _merge(data, result.data)
        token = result.next_token
        if token is None:
            break
    else:
        truncated = True
    return CollectedResult(status, data, truncated, pages, source, tuple(errors))


def _merge(into: dict[str, Any], page: dict[str, Any]) -> None:
    for key, value in page.items():
        if not isinstance(value, list):
            into.setdefault(key, value)
            continue
        merged: list[Any] = into.setdefault(key, [])
        for item in value:
            if merged and _continues(merged[-1], item):
                merged[-1] = {
                    k: (v + item[k] if k in SPLIT_KEYS else v) for k, v in merged[-1].items()
                }
            else:
                merged.append(item)


def _continues(last: Any, item: Any) -> bool:
    """True when ``item`` is the next piece of the split series ``last``."""
    return (
        isinstance(last, dict)
        and isinstance(item, dict)
        and "id" in item
        and last.get("id") == item["id"]
        and all(isinstance(last.get(k), list) and isinstance(item.get(k), list) for k in SPLIT_KEYS)
    )
