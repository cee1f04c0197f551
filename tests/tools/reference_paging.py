"""A deliberately plain reference for metric paging: every series rendered in full and every size
measured by serialising, exactly as the tools first did it. The optimised tools must produce
the same pages, byte for byte."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from opx.domain.tool_result import ToolResult, ToolStatus
from opx.tools.memory import traffic_family
from opx.tools.paging import (
    SPLIT_KEYS,
    Cursor,
    TokenError,
    decode_token,
    encode_token,
    fingerprint,
    json_size,
    page_budget,
    shrink_to_fit,
)
from opx.tools.records import MetricSeries, iso_z

JsonDict = dict[str, Any]
# What a reference render returns: the list key, the item, and whether it may be split.
RefEntry = tuple[str, JsonDict, bool]


def reference_pack(
    count: int, render: Callable[[int], RefEntry], cursor: Cursor, budget: int, keys: Sequence[str]
) -> tuple[dict[str, list[JsonDict]], Cursor | None, bool]:
    """Greedy packing measured point by point: the page data, the next cursor, truncated."""
    if cursor != Cursor():
        if cursor.item >= count:
            raise TokenError("next_token points past the end of the results")
        _, item, splittable = render(cursor.item)
        if cursor.part >= (len(item[SPLIT_KEYS[0]]) if splittable else 1):
            raise TokenError("next_token points past the end of an item")
    data: dict[str, list[JsonDict]] = {k: [] for k in keys}
    used, truncated, position, full = 0, False, cursor, False

    def cost(key: str, item: JsonDict) -> int:
        return json_size(item) + (1 if data[key] else 0)

    while not full and position.item < count:
        key, item, splittable = render(position.item)
        if splittable:
            item = _points(item, position.part, None)
        if used + cost(key, item) <= budget:
            used += cost(key, item)
            data[key].append(item)
            position = Cursor(position.item + 1)
            continue
        full = True
        if splittable:
            taken = _fit(item, used + cost(key, _points(item, 0, 0)), budget)
            if taken > 0:
                piece = _points(item, 0, taken)
                used += cost(key, piece)
                data[key].append(piece)
                position = Cursor(position.item, position.part + taken)
            elif used == 0:
                truncated, position = True, Cursor(position.item + 1)
        elif used == 0:
            truncated = True
            shrunk = shrink_to_fit(item, budget)
            if shrunk is not None:
                used += cost(key, shrunk)
                data[key].append(shrunk)
            position = Cursor(position.item + 1)
    return data, (None if position.item >= count else position), truncated


def _fit(item: JsonDict, used: int, budget: int) -> int:
    taken = 0
    for index in range(len(item[SPLIT_KEYS[0]])):
        point = sum(json_size(item[k][index]) for k in SPLIT_KEYS) + (2 if taken else 0)
        if used + point > budget:
            break
        used, taken = used + point, taken + 1
    return taken


def _points(item: JsonDict, start: int, stop: int | None) -> JsonDict:
    return {k: (v[start:stop] if k in SPLIT_KEYS else v) for k, v in item.items()}


def reference_page(
    source: str,
    keys: Sequence[str],
    count: int,
    render: Callable[[int], RefEntry],
    token: str | None,
    query: str,
) -> ToolResult:
    cursor = Cursor() if token is None else decode_token(token, query)
    data, after, truncated = reference_pack(
        count, render, cursor, page_budget(source, keys, query), keys
    )
    return ToolResult(
        status=ToolStatus.SUCCESS,
        data=dict(data),
        truncated=truncated,
        source=source,
        next_token=None if after is None else encode_token(after, query),
    )


def reference_series_page(
    source: str,
    series: Sequence[MetricSeries],
    lo: datetime,
    hi: datetime,
    token: str | None,
    query: tuple[object, ...],
) -> ToolResult:
    """A get_metrics/get_traffic page over ``series`` (already filtered and sorted)."""
    windows = [(s, bisect_left(s.timestamps, lo), bisect_left(s.timestamps, hi)) for s in series]
    windows = [(s, a, b) for s, a, b in windows if b > a]

    def render(i: int) -> RefEntry:
        s, a, b = windows[i]
        item = {
            **s.header(),
            "timestamps": [iso_z(t) for t in s.timestamps[a:b]],
            "values": list(s.values[a:b]),
        }
        return "series", item, True

    return reference_page(
        source, ("series",), len(windows), render, token, fingerprint(source, *query)
    )


def reference_metrics_page(
    source: str,
    series: Sequence[MetricSeries],
    lo: datetime,
    hi: datetime,
    service: str | None,
    metric: str | None,
    stat: str | None,
    token: str | None,
) -> ToolResult:
    """What ``InMemoryTools.get_metrics`` answered before it was optimised (UTC bounds)."""
    chosen = [
        s
        for s in sorted(series, key=lambda s: (s.service, s.metric, s.stat))
        if (service is None or s.service == service)
        and (metric is None or s.metric == metric)
        and (stat is None or s.stat == stat)
    ]
    query = ("get_metrics", lo, hi, service, metric, stat)
    return reference_series_page(source, chosen, lo, hi, token, query)


def reference_traffic_page(
    source: str,
    series: Sequence[MetricSeries],
    service: str,
    lo: datetime,
    hi: datetime,
    token: str | None,
) -> ToolResult:
    """What ``InMemoryTools.get_traffic`` answered before it was optimised (UTC bounds)."""
    chosen = [
        s
        for s in sorted(series, key=lambda s: (s.service, s.metric, s.stat))
        if s.service == service and traffic_family(s.metric) is not None
    ]
    query = ("get_traffic", lo, hi, service)
    return reference_series_page(source, chosen, lo, hi, token, query)
