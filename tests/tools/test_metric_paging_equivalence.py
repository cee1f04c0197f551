"""The fast metric paging answers exactly what the plain reference packer answers: same pages,
same tokens, same bytes, every page within the size limit."""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opx.domain.tool_result import MAX_TOOL_RESULT_BYTES, ToolResult, ToolStatus
from opx.tools.memory import InMemoryTools
from opx.tools.paging import (
    Cursor,
    Entry,
    TokenError,
    encode_token,
    fingerprint,
    json_size,
    pack,
    page_budget,
)
from opx.tools.records import MetricSeries

from .reference_paging import (
    RefEntry,
    reference_metrics_page,
    reference_pack,
    reference_traffic_page,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SERVICES = ("api", "café", 'db"main', "web")
METRICS = ("RequestCount", "Latency", "CPUUtilization", "5XXError", "Mémoire")
STATS = ("Average", "p99", "Sum")
# Non-UTC zones: the tools convert, and the rendered timestamps must still match.
ZONES = (UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)))


def _value(rng: random.Random) -> float:
    """Values whose JSON forms vary in length: integers, short and long decimals, exponents."""
    kind = rng.randrange(6)
    if kind == 0:
        return float(rng.randint(-5, 10**6))
    if kind == 1:
        return round(rng.uniform(-1000, 1000), rng.randint(0, 4))
    if kind == 2:
        return rng.random()
    if kind == 3:
        return rng.choice((0.0, -0.0, 1e-300, 1e22, 1e16, -2.5e-7, 123456789.123456789))
    if kind == 4:
        return rng.uniform(-1, 1) * float(10 ** rng.randint(-12, 25))
    return float(rng.getrandbits(53))


def _stamps(rng: random.Random, count: int) -> tuple[datetime, ...]:
    """Strictly increasing times, some with microseconds (a longer ISO form), in mixed zones."""
    zone = rng.choice(ZONES)
    now, found = T0 + timedelta(seconds=rng.randint(-3600, 3600)), []
    for _ in range(count):
        now += timedelta(seconds=rng.choice((1, 15, 60)), microseconds=rng.choice((0, 0, 250)))
        found.append(now.astimezone(zone))
    return tuple(found)


def dataset(seed: int, count: int, max_points: int) -> list[MetricSeries]:
    """Up to ``count`` distinct series from ``seed``; sizes range from empty to many pages, and
    some series share all or the start of another's time grid, as real metrics often do."""
    rng = random.Random(seed)
    by_id: dict[str, MetricSeries] = {}
    grids: list[tuple[datetime, ...]] = []
    for _ in range(count):
        points = rng.choice((0, 1, 2, rng.randint(3, max_points)))
        if grids and rng.random() < 0.4:
            stamps = rng.choice(grids)[: rng.choice((points, max_points))]
        else:
            stamps = _stamps(rng, points)
            grids.append(stamps)
        item = MetricSeries(
            rng.choice(SERVICES),
            rng.choice(METRICS),
            rng.choice(STATS),
            rng.choice(("Count", "Milliseconds", "Pércent")),
            stamps,
            tuple(_value(rng) for _ in stamps),
        )
        by_id.setdefault(item.id, item)
    return list(by_id.values())


def _chain(call: Callable[[str | None], ToolResult]) -> list[tuple[str | None, ToolResult]]:
    """Every page with the token that asked for it."""
    found: list[tuple[str | None, ToolResult]] = []
    token: str | None = None
    while True:
        page = call(token)
        found.append((token, page))
        token = page.next_token
        if token is None:
            return found


def _dump(page: ToolResult) -> bytes:
    return json.dumps(page.model_dump(mode="json"), separators=(",", ":")).encode("utf-8")


def _assert_same_pages(
    fast: Callable[[str | None], ToolResult], slow: Callable[[str | None], ToolResult]
) -> int:
    pages = _chain(fast)
    for token, page in pages:
        expected = slow(token)
        assert page.status is ToolStatus.SUCCESS
        assert _dump(page) == _dump(expected)
        assert page.data == expected.data
        assert page.size_bytes() <= MAX_TOOL_RESULT_BYTES
    return len(pages)


def _window(rng: random.Random) -> tuple[datetime, datetime]:
    lo = T0 + timedelta(seconds=rng.randint(-4000, 20000))
    hi = lo + timedelta(seconds=rng.choice((0, 1, 600, 10**6)))
    zone = rng.choice(ZONES)
    return lo.astimezone(zone), hi.astimezone(zone)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.integers(1, 10), st.data())
def test_get_metrics_pages_match_the_reference(seed: int, count: int, data: Any) -> None:
    series = dataset(seed, count, max_points=1500)
    tools = InMemoryTools("mem", series=series)
    rng = random.Random(seed)
    for _ in range(3):
        wide = (T0 - timedelta(days=1), T0 + timedelta(days=30))
        window = _window(rng) if rng.random() < 0.7 else wide
        service = data.draw(st.sampled_from((None, *SERVICES)))
        metric = data.draw(st.sampled_from((None, None, *METRICS)))
        stat = data.draw(st.sampled_from((None, None, *STATS)))
        _assert_same_metric_pages(tools, series, window, (service, metric, stat))


def _assert_same_metric_pages(
    tools: InMemoryTools,
    series: list[MetricSeries],
    window: tuple[datetime, datetime],
    filters: tuple[str | None, str | None, str | None],
) -> None:
    start, end = window
    lo, hi = start.astimezone(UTC), end.astimezone(UTC)
    _assert_same_pages(
        lambda t: tools.get_metrics(start, end, *filters, next_token=t),
        lambda t: reference_metrics_page("mem", series, lo, hi, *filters, t),
    )


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(SERVICES))
def test_get_traffic_pages_match_the_reference(seed: int, service: str) -> None:
    series = dataset(seed, 12, max_points=1200)
    tools = InMemoryTools("mem", series=series)
    start, end = T0 - timedelta(days=1), T0 + timedelta(days=1)
    _assert_same_pages(
        lambda t: tools.get_traffic(service, start, end, next_token=t),
        lambda t: reference_traffic_page("mem", series, service, start, end, t),
    )


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 12), st.integers(0, 1600))
def test_any_cursor_is_accepted_or_refused_like_the_reference(
    seed: int, item: int, part: int
) -> None:
    series = dataset(seed, 8, max_points=1500)
    tools = InMemoryTools("mem", series=series)
    start, end = T0 - timedelta(days=1), T0 + timedelta(days=1)
    query = fingerprint("mem", "get_metrics", start, end, None, None, None)
    token = encode_token(Cursor(item, part), query)
    fast = tools.get_metrics(start, end, next_token=token)
    try:
        expected = reference_metrics_page("mem", series, start, end, None, None, None, token)
    except TokenError as exc:
        assert fast.status is ToolStatus.FAILED
        assert fast.error is not None and fast.error.message == str(exc)
    else:
        assert _dump(fast) == _dump(expected)


def test_repeated_and_interleaved_queries_answer_the_same() -> None:
    # Cached renderings and windows must not leak between queries or change on reuse.
    series = dataset(7, 10, max_points=1500)
    tools = InMemoryTools("mem", series=series)
    end = T0 + timedelta(days=2)
    wide = _chain(lambda t: tools.get_metrics(T0 - timedelta(days=1), end, next_token=t))
    narrow = _chain(lambda t: tools.get_metrics(T0, T0 + timedelta(minutes=90), next_token=t))
    again = _chain(lambda t: tools.get_metrics(T0 - timedelta(days=1), end, next_token=t))
    assert [_dump(p) for _, p in wide] == [_dump(p) for _, p in again]
    assert [_dump(p) for _, p in narrow] != [_dump(p) for _, p in wide]


# -- the generic packer, fed ordinary splittable entries --------------------------------------


def _generic_item(rng: random.Random, index: int) -> dict[str, Any]:
    """Items whose split lists hold strings with escapes, non-ASCII text, ints and floats, with
    the split keys in different places among the other keys."""
    points = rng.choice((0, 1, rng.randint(2, 900)))
    stamps = [rng.choice(("t", 'q"', "é", "\n", "2026-03-01T00:00:00Z")) * rng.randint(1, 9)]
    stamps = [rng.choice([*stamps, f"t{i}"]) for i in range(points)]
    values: list[Any] = [rng.choice((i, -i, i * 0.5, _value(rng))) for i in range(points)]
    keys = [("id", f"s{index}"), ("timestamps", stamps), ("values", values), ("note", "ü" * 3)]
    rng.shuffle(keys)
    return dict(keys)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 10), st.integers(200, 12_000))
def test_generic_pack_matches_the_reference(seed: int, count: int, budget: int) -> None:
    rng = random.Random(seed)
    items = [(_generic_item(rng, i), rng.random() < 0.8) for i in range(count)]
    entries = [Entry("series" if split else "notes", item, split) for item, split in items]
    plain: list[RefEntry] = [(e.key, e.item, e.splittable) for e in entries]
    keys = ("series", "notes")
    cursor: Cursor | None = Cursor()
    while cursor is not None:
        at = cursor
        try:
            data, after, truncated = reference_pack(count, plain.__getitem__, at, budget, keys)
        except TokenError as exc:
            # The plain packer refuses a cursor at an item without points; so must the fast one.
            with pytest.raises(TokenError, match=re.escape(str(exc))):
                pack(count=count, render=entries.__getitem__, cursor=at, budget=budget, keys=keys)
            return
        page = pack(count=count, render=entries.__getitem__, cursor=at, budget=budget, keys=keys)
        assert json.dumps(page.data) == json.dumps(data)
        assert (page.next, page.truncated) == (after, truncated)
        cursor = page.next


# -- a pinned snapshot of the answers the plain implementation gave ---------------------------

SNAPSHOT_SHA256 = "ecf60e1b9657da80317f34ea411fe1ba69c85249cceed2321eb0ea8a8abf9846"


def _snapshot_calls(tools: InMemoryTools) -> list[Callable[[str | None], ToolResult]]:
    wide = (T0 - timedelta(days=1), T0 + timedelta(days=30))
    narrow = (T0 + timedelta(minutes=20), T0 + timedelta(minutes=200))
    return [
        lambda t: tools.get_metrics(*wide, next_token=t),
        lambda t: tools.get_metrics(*narrow, next_token=t),
        lambda t: tools.get_metrics(*wide, service="api", next_token=t),
        lambda t: tools.get_metrics(*wide, metric="Latency", stat="p99", next_token=t),
        lambda t: tools.get_traffic("café", *wide, next_token=t),
        lambda t: tools.list_metrics(next_token=t),
    ]


def snapshot_digest() -> str:
    tools = InMemoryTools("snap", series=dataset(2026, 150, max_points=2500))
    sha = hashlib.sha256()
    for call in _snapshot_calls(tools):
        for _, page in _chain(call):
            assert page.size_bytes() <= MAX_TOOL_RESULT_BYTES
            sha.update(_dump(page))
    return sha.hexdigest()


def test_pages_match_the_pinned_snapshot() -> None:
    assert snapshot_digest() == SNAPSHOT_SHA256


@pytest.mark.parametrize("value", [0.0, -0.0, 1e-300, 1e22, 0.1, 123456789.123456789, 7, -3])
def test_json_size_of_numbers(value: float) -> None:
    assert json_size(value) == len(json.dumps(value))


def test_page_budget_leaves_room_for_the_longest_token() -> None:
    assert 0 < page_budget("mem", ("series",), "0" * 16) < MAX_TOOL_RESULT_BYTES
