"""Paging of tool results: packing items into 10 KB pages behind opaque tokens, and following
those tokens to reassemble a whole answer."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


def page_budget(source: str, keys: Sequence[str], query: str) -> int:
    """Bytes left for list items once the envelope (with the longest token) is counted."""
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
    render: Callable[[int], Entry],
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
    *, count: int, render: Callable[[int], Entry], cursor: Cursor, budget: int, keys: Sequence[str]
) -> Page:
    """Greedily fill a page of ``budget`` bytes with entries from ``cursor`` on. A splittable
    entry that does not fit is cut by points and continues on the next page."""
    _check_cursor(count, render, cursor)
    packer = _Packer(budget, {k: [] for k in keys})
    position, full = cursor, False
    while not full and position.item < count:
        entry = render(position.item)
        add = packer.add_split if entry.splittable else packer.add_whole
        position, full = add(entry, position)
    done = position.item >= count
    return Page(packer.data, None if done else position, packer.truncated)


def _check_cursor(count: int, render: Callable[[int], Entry], cursor: Cursor) -> None:
    if cursor == Cursor():
        return
    if cursor.item >= count:
        raise TokenError("next_token points past the end of the results")
    entry = render(cursor.item)
    limit = len(entry.item[SPLIT_KEYS[0]]) if entry.splittable else 1
    if cursor.part >= limit:
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

    def _take(self, key: str, item: JsonDict) -> None:
        self.used += self._cost(key, json_size(item))
        self.data[key].append(item)

    def add_whole(self, entry: Entry, at: Cursor) -> tuple[Cursor, bool]:
        if self.used + self._cost(entry.key, json_size(entry.item)) <= self.budget:
            self._take(entry.key, entry.item)
            return Cursor(at.item + 1), False
        if not self.empty:
            return at, True
        # Alone on a page and still too big: cut its longest strings rather than lose it.
        self.truncated = True
        shrunk = shrink_to_fit(entry.item, self.budget)
        if shrunk is not None:
            self._take(entry.key, shrunk)
        return Cursor(at.item + 1), True

    def add_split(self, entry: Entry, at: Cursor) -> tuple[Cursor, bool]:
        rest = _slice_points(entry.item, at.part, None)
        if self.used + self._cost(entry.key, json_size(rest)) <= self.budget:
            self._take(entry.key, rest)
            return Cursor(at.item + 1), False
        taken = self._fit_points(entry, at.part)
        if taken == 0 and not self.empty:
            return at, True
        if taken == 0:
            # Not even one point fits on an empty page: the series header alone is too big.
            self.truncated = True
            return Cursor(at.item + 1), True
        self._take(entry.key, _slice_points(entry.item, at.part, at.part + taken))
        return Cursor(at.item, at.part + taken), True

    def _fit_points(self, entry: Entry, start: int) -> int:
        header = _slice_points(entry.item, 0, 0)
        used = self.used + self._cost(entry.key, json_size(header))
        total = len(entry.item[SPLIT_KEYS[0]])
        taken = 0
        for index in range(start, total):
            point = sum(json_size(entry.item[k][index]) for k in SPLIT_KEYS)
            commas = len(SPLIT_KEYS) if taken else 0
            if used + point + commas > self.budget:
                break
            used += point + commas
            taken += 1
        return taken


def _slice_points(item: JsonDict, start: int, stop: int | None) -> JsonDict:
    return {k: (v[start:stop] if k in SPLIT_KEYS else v) for k, v in item.items()}


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
