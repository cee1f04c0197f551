"""Log lines per operation call, tied to spans through their trace and span ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from opx.agents.local.log_rates import operation_stats, split_tied
from opx.agents.local.spans import SpanView, parse_spans

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _span(
    trace: str, span: str, parent: str | None, service: str, operation: str, start_s: float = 0.0
) -> dict[str, Any]:
    start = T0 + timedelta(seconds=start_s)
    return {
        "trace_id": trace,
        "span_id": span,
        "parent_id": parent,
        "service": service,
        "operation": operation,
        "start": start.isoformat(),
        "duration_ms": 10.0,
    }


def _line(
    trace: str, span: str, service: str, message: str, level: str = "INFO", n: int = 0
) -> dict[str, Any]:
    return {
        "id": f"{trace}/{span}/{n}",
        "trace_id": trace,
        "span_id": span,
        "service": service,
        "level": level,
        "message": message,
        "timestamp": T0.isoformat(),
    }


def _calls(
    prefix: str, count: int, *, lines: int, errors: int = 0
) -> tuple[list[SpanView], list[dict[str, Any]]]:
    """``count`` calls of route's Query operation; the first ``lines`` log their usual line,
    the first ``errors`` an error line."""
    spans, events = [], []
    for i in range(count):
        trace = f"{prefix}{i}"
        spans.append(_span(trace, "s1", None, "route", "Query", i))
        if i < lines:
            events.append(_line(trace, "s1", "route", f"query route by id {i}"))
        if i < errors:
            events.append(_line(trace, "s1", "route", "lookup failed", level="ERROR", n=1))
    return parse_spans(spans), events


def _stats(
    base: tuple[list[SpanView], list[dict[str, Any]]],
    win: tuple[list[SpanView], list[dict[str, Any]]],
) -> dict[str, Any]:
    base_tied, _ = split_tied(base[1], base[0])
    win_tied, _ = split_tied(win[1], win[0])
    found = operation_stats((base_tied, base[0]), (win_tied, win[0]))
    return {(s.service, s.kind): s for s in found}


def test_more_calls_with_the_same_lines_per_call_are_not_anomalous() -> None:
    # Twice the traffic, the same one line per call: counting per second would see a surge.
    stats = _stats(_calls("b", 20, lines=20), _calls("w", 40, lines=40))
    assert not stats[("route", "quiet")].anomalous
    assert stats[("route", "quiet")].expected == 40


def test_an_operation_that_stops_logging_while_still_called_is_quiet() -> None:
    stats = _stats(_calls("b", 20, lines=20), _calls("w", 40, lines=4))
    quiet = stats[("route", "quiet")]
    assert quiet.anomalous
    assert quiet.operation == "Query"
    assert (quiet.window_count, quiet.expected) == (4, 40)


def test_an_operation_with_fewer_calls_is_not_quiet() -> None:
    stats = _stats(_calls("b", 20, lines=20), _calls("w", 4, lines=4))
    assert not stats[("route", "quiet")].anomalous


def test_an_error_template_that_surges_per_call_is_anomalous() -> None:
    stats = _stats(_calls("b", 20, lines=20, errors=1), _calls("w", 20, lines=20, errors=15))
    surge = stats[("route", "surge")]
    assert surge.anomalous and surge.expected == 1 and surge.window_count == 15


def test_an_operation_with_too_few_baseline_calls_is_not_judged() -> None:
    assert _stats(_calls("b", 3, lines=3), _calls("w", 40, lines=0)) == {}


def test_lines_without_a_span_of_their_own_service_are_left_loose() -> None:
    spans = parse_spans([_span("t", "s1", None, "route", "Query")])
    events = [
        _line("t", "s1", "route", "ok"),
        _line("t", "s1", "travel", "wrong service"),
        _line("t", "zz", "route", "unknown span"),
        {"id": "x", "service": "route", "level": "ERROR", "message": "no ids"},
    ]
    tied, loose = split_tied(events, spans)
    assert [e["message"] for e, _ in tied] == ["ok"]
    assert [op for _, op in tied] == [("route", "Query")]
    assert len(loose) == 3


def test_a_caller_error_over_a_failing_callee_is_left_to_the_callee() -> None:
    spans = parse_spans(
        [
            _span("t", "a", None, "travel", "/trips"),
            _span("t", "b", "a", "travel", "client"),
            _span("t", "c", "b", "route", "Query"),
        ]
    )
    caller = _line("t", "a", "travel", "Servlet.service() threw exception", level="ERROR")
    caller_info = _line("t", "a", "travel", "query trips", n=2)
    callee = _line("t", "c", "route", "lookup failed", level="ERROR", n=1)
    tied, _ = split_tied([caller, caller_info, callee], spans)
    kept = {(e["service"], e["message"]) for e, _ in tied}
    assert ("travel", caller["message"]) not in kept
    assert ("travel", "query trips") in kept and ("route", "lookup failed") in kept
    # Without the callee's error the caller's line is its own.
    tied, _ = split_tied([caller], spans)
    assert len(tied) == 1
