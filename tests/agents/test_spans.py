"""Trace localisation: error origins and exclusive-time latency per service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opx.agents.local.spans import (
    error_origins,
    exclusive_times,
    hop_stats,
    hops,
    latency_stats,
    origin_stats,
    parse_spans,
    trace_latency,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _span(
    trace: str,
    span: str,
    parent: str | None,
    service: str,
    start_ms: float,
    duration: float,
    *,
    fault: bool = False,
    error: bool = False,
) -> dict[str, Any]:
    start = T0 + timedelta(milliseconds=start_ms)
    return {
        "trace_id": trace,
        "span_id": span,
        "parent_id": parent,
        "service": service,
        "operation": "op",
        "start": start.isoformat().replace("+00:00", "Z"),
        "duration_ms": duration,
        "error": error,
        "fault": fault,
    }


def _chain_trace(trace: str, failing: set[str], offset_ms: float = 0.0) -> list[dict[str, Any]]:
    """front -> api -> db, with the named services failing."""
    return [
        _span(trace, f"{trace}-1", None, "front", offset_ms, 100, fault="front" in failing),
        _span(trace, f"{trace}-2", f"{trace}-1", "api", offset_ms + 5, 80, fault="api" in failing),
        _span(trace, f"{trace}-3", f"{trace}-2", "db", offset_ms + 10, 50, fault="db" in failing),
    ]


def test_parse_skips_malformed_spans() -> None:
    good = _span("t", "s", None, "a", 0, 10)
    spans = parse_spans(
        [good, {"trace_id": "t"}, {**good, "start": "yesterday"}, {**good, "duration_ms": "slow"}]
    )
    assert len(spans) == 1 and spans[0].service == "a" and spans[0].parent_id is None


def test_the_origin_is_the_deepest_failing_span() -> None:
    spans = parse_spans(_chain_trace("t1", {"front", "api", "db"}))
    origins = error_origins(spans)
    assert [(o.service, o.span_id) for o in origins] == [("db", "t1-3")]


def test_a_failing_caller_over_healthy_callees_is_its_own_origin() -> None:
    spans = parse_spans(_chain_trace("t1", {"front", "api"}))
    assert [o.service for o in error_origins(spans)] == ["api"]


def test_two_failing_branches_give_two_origins() -> None:
    spans = parse_spans(
        [
            _span("t", "r", None, "front", 0, 100, fault=True),
            _span("t", "x", "r", "left", 1, 10, fault=True),
            _span("t", "y", "r", "right", 20, 10, error=True),
        ]
    )
    assert [o.service for o in error_origins(spans)] == ["left", "right"]


def test_origin_stats_compare_with_the_baseline_error_ratio() -> None:
    baseline = parse_spans(
        [s for i in range(40) for s in _chain_trace(f"b{i}", set(), i * 1000)]
        + _chain_trace("b-err", {"api"}, 99_000)
    )
    failing = {"front", "api", "db"}
    window = parse_spans([s for i in range(10) for s in _chain_trace(f"w{i}", failing, i * 1000)])
    stats = origin_stats(baseline, window, baseline_seconds=3600, window_seconds=600)
    assert set(stats) == {"db"}
    db = stats["db"]
    assert db.window_count == 10 and db.baseline_count == 0 and db.anomalous
    assert db.trace_ids == ("w0", "w1", "w2", "w3", "w4")


def test_an_error_ratio_like_the_baseline_is_not_anomalous() -> None:
    baseline = parse_spans(
        [s for i in range(20) for s in _chain_trace(f"b{i}", {"db"} if i % 2 else set(), i)]
    )
    window = parse_spans(
        [s for i in range(10) for s in _chain_trace(f"w{i}", {"db"} if i % 2 else set(), i)]
    )
    stats = origin_stats(baseline, window, baseline_seconds=600, window_seconds=600)
    assert stats["db"].expected == pytest.approx(5.0)
    assert not stats["db"].anomalous


def test_exclusive_time_subtracts_the_union_of_children() -> None:
    spans = parse_spans(
        [
            _span("t", "p", None, "front", 0, 100),
            _span("t", "a", "p", "x", 10, 30),  # 10..40
            _span("t", "b", "p", "y", 20, 30),  # 20..50 overlaps a
            _span("t", "c", "p", "z", 90, 50),  # 90..140 clipped to 90..100
        ]
    )
    own = {span.span_id: value for span, value in exclusive_times(spans)}
    assert own["p"] == pytest.approx(100 - 40 - 10)
    assert own["a"] == pytest.approx(30)


def test_latency_stats_flag_the_service_whose_own_time_grew() -> None:
    baseline = parse_spans([s for i in range(30) for s in _chain_trace(f"b{i}", set(), i * 1000)])
    slow = []
    for i in range(8):
        trace = _chain_trace(f"w{i}", set(), i * 1000)
        trace[2]["duration_ms"] = 450  # db got slow
        trace[1]["duration_ms"] = 480  # api and front wait for it
        trace[0]["duration_ms"] = 500
        slow.extend(trace)
    stats = latency_stats(baseline, parse_spans(slow))
    assert stats["db"].anomalous
    assert stats["db"].window_quantile_ms == pytest.approx(450)
    # Callers waited, but their own time did not grow.
    assert not stats["api"].anomalous and not stats["front"].anomalous


def test_latency_needs_enough_baseline_spans() -> None:
    baseline = parse_spans(_chain_trace("b", set()))
    window = parse_spans(_chain_trace("w", set()))
    assert latency_stats(baseline, window) == {}


def _client_trace(
    trace: str,
    offset_ms: float,
    gap_ms: float,
    work_ms: float = 20.0,
) -> list[dict[str, Any]]:
    """front handler -> front client span -> api server span -> api client -> db server."""
    return [
        _span(trace, f"{trace}-1", None, "front", offset_ms, 200),
        _span(trace, f"{trace}-2", f"{trace}-1", "front", offset_ms + 1, 100 + gap_ms + 5),
        _span(trace, f"{trace}-3", f"{trace}-2", "api", offset_ms + 2, 100),
        _span(trace, f"{trace}-4", f"{trace}-3", "api", offset_ms + 3, work_ms + 5),
        _span(trace, f"{trace}-5", f"{trace}-4", "db", offset_ms + 4, work_ms),
    ]


def test_a_client_span_hands_its_gap_to_the_hop_not_to_the_caller() -> None:
    spans = parse_spans(_client_trace("t", 0, gap_ms=50))
    own = {span.span_id: value for span, value in exclusive_times(spans)}
    assert "t-2" not in own and "t-4" not in own
    assert own["t-3"] == pytest.approx(100 - 25)
    found = {(h.caller, h.callee): h.gap_ms for h in hops(spans)}
    assert found == {("front", "api"): pytest.approx(55), ("api", "db"): pytest.approx(5)}


def test_hop_stats_blame_the_callee_whose_inbound_hops_slowed() -> None:
    baseline = parse_spans(
        [s for i in range(30) for s in _client_trace(f"b{i}", i * 1000, gap_ms=2 + i % 3)]
    )
    window = parse_spans(
        [s for i in range(8) for s in _client_trace(f"w{i}", i * 1000, gap_ms=80 + i)]
    )
    stats = hop_stats(baseline, window)
    assert stats["api"].anomalous and stats["api"].kind == "hop_gap"
    # db's only caller is the delayed api: its hop is api's delay, not evidence against db.
    assert "db" not in stats


def test_hops_out_of_a_delayed_service_do_not_blame_its_callee() -> None:
    # A delay on api's network slows both the hop into it and the hop out of it.
    def delayed(trace: str, offset: float) -> list[dict[str, Any]]:
        spans = _client_trace(trace, offset, gap_ms=80)
        spans[3]["duration_ms"] = 20 + 5 + 80
        return spans

    baseline = parse_spans([s for i in range(30) for s in _client_trace(f"b{i}", i * 1000, 2)])
    window = parse_spans([s for i in range(8) for s in delayed(f"w{i}", i * 1000)])
    assert hops(window)[1].gap_ms == pytest.approx(85)
    stats = hop_stats(baseline, window)
    assert stats["api"].anomalous
    assert "db" not in stats or not stats["db"].anomalous
    merged = trace_latency(baseline, window)
    assert merged["api"].anomalous
    assert "db" not in merged or not merged["db"].anomalous


def test_a_callee_with_too_few_baseline_hops_is_compared_with_every_hop() -> None:
    # The baseline never called "rare"; the window's hops into it are 2 s slower than any hop.
    def rare_trace(trace: str, offset_ms: float, gap_ms: float) -> list[dict[str, Any]]:
        return [
            _span(trace, f"{trace}-1", None, "front", offset_ms, 200),
            _span(trace, f"{trace}-2", f"{trace}-1", "front", offset_ms + 1, 100 + gap_ms),
            _span(trace, f"{trace}-3", f"{trace}-2", "rare", offset_ms + 2, 100),
        ]

    baseline = parse_spans(
        [s for i in range(30) for s in _client_trace(f"b{i}", i * 1000, gap_ms=2 + i % 3)]
    )
    window = parse_spans(
        [s for i in range(8) for s in rare_trace(f"w{i}", i * 1000, gap_ms=2000 + i)]
    )
    stats = hop_stats(baseline, window)
    assert stats["rare"].anomalous and stats["rare"].baseline_spans >= 30
    # Hops as fast as the pooled baseline are not.
    calm = parse_spans([s for i in range(8) for s in rare_trace(f"c{i}", i * 1000, gap_ms=3)])
    assert not hop_stats(baseline, calm)["rare"].anomalous


def test_excess_is_the_rise_of_the_typical_span_times_the_spans() -> None:
    baseline = parse_spans(
        [s for i in range(30) for s in _client_trace(f"b{i}", i * 1000, gap_ms=2 + i % 3)]
    )
    window = parse_spans(
        [s for i in range(8) for s in _client_trace(f"w{i}", i * 1000, gap_ms=80 + i)]
    )
    api = hop_stats(baseline, window)["api"]
    rise = api.window_quantile_ms - api.baseline_median_ms
    assert api.excess_ms == pytest.approx(rise * api.window_spans)
    assert api.excess_ms > 0
