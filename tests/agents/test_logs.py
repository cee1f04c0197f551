"""Error-log templating and template surge detection."""

from __future__ import annotations

from typing import Any

import pytest

from opx.agents.local.logs import (
    cluster_errors,
    is_error_event,
    service_log_scores,
    template_id,
    template_of,
)


@pytest.mark.parametrize(
    ("message", "template"),
    [
        ("timeout after 3000 ms calling 10.0.3.7:5432", "timeout after <NUM> ms calling <IP>"),
        ("order 550e8400-e29b-41d4-a716-446655440000 failed", "order <UUID> failed"),
        ("bad pointer 0x7ffe12 in worker 3", "bad pointer <HEX> in worker <NUM>"),
        ("trace 5f2a9c1e3b7d4a60 rejected", "trace <HEX> rejected"),
        ('user "alice" not found', "user <STR> not found"),
        ("can't open 'x.conf'", "can't open <STR>"),
        ("took 500ms  on   v2 api", "took <NUM>ms on v2 api"),
    ],
)
def test_template_masks_variable_parts(message: str, template: str) -> None:
    assert template_of(message) == template


def test_same_shape_gives_the_same_template_and_id() -> None:
    first = template_of("connection refused by 10.1.1.1 after 3 retries")
    second = template_of("connection refused by 10.9.9.9 after 12 retries")
    assert first == second
    assert template_id(first) == template_id(second)
    assert template_id(first) != template_id(template_of("disk full on /dev/sda1"))
    assert template_id(first).startswith("tpl-")


def test_error_events_by_level_or_wording() -> None:
    assert is_error_event({"level": "ERROR", "message": "x"})
    assert is_error_event({"level": "fatal", "message": "x"})
    assert is_error_event({"level": "INFO", "message": "upstream request timed out"})
    assert is_error_event({"level": "WARN", "message": "NullPointerException in handler"})
    assert not is_error_event({"level": "INFO", "message": "request served in 12 ms"})
    assert not is_error_event({"level": "INFO", "message": "terror movie catalogue"})


def _event(i: int, service: str, message: str, level: str = "ERROR") -> dict[str, Any]:
    return {
        "id": f"e{i}",
        "service": service,
        "level": level,
        "message": message,
        "timestamp": "2026-03-01T12:00:00Z",
        "trace_id": f"t{i % 3}",
    }


def test_a_new_template_in_the_window_is_anomalous() -> None:
    window = [_event(i, "db", f"deadlock on row {i}") for i in range(6)]
    stats = cluster_errors([], window, baseline_seconds=3600, window_seconds=600)
    assert len(stats) == 1
    stat = stats[0]
    assert stat.new and stat.anomalous
    assert stat.window_count == 6 and stat.baseline_count == 0
    assert stat.event_ids == ("e0", "e1", "e2", "e3", "e4")
    assert stat.trace_ids == ("t0", "t1", "t2")


def test_a_steady_template_is_not_anomalous_but_a_surge_is() -> None:
    # 60 per hour in the baseline -> 10 expected in a 10-minute window.
    base = [_event(i, "api", f"retrying call {i}") for i in range(60)]
    steady = [_event(i, "api", f"retrying call {i}") for i in range(12)]
    surge = [_event(i, "api", f"retrying call {i}") for i in range(60)]
    quiet = cluster_errors(base, steady, baseline_seconds=3600, window_seconds=600)
    loud = cluster_errors(base, surge, baseline_seconds=3600, window_seconds=600)
    assert quiet[0].expected == pytest.approx(10.0)
    assert not quiet[0].anomalous
    assert loud[0].anomalous and not loud[0].new


def test_non_error_events_and_baseline_only_templates_are_ignored() -> None:
    base = [_event(1, "api", "old failure 1")]
    window = [_event(2, "api", "all good", level="INFO")]
    assert cluster_errors(base, window, baseline_seconds=60, window_seconds=60) == []


def test_templates_are_per_service_and_the_best_one_per_service_is_kept() -> None:
    window = (
        [_event(i, "a", "boom 1") for i in range(8)]
        + [_event(i, "b", "boom 2") for i in range(2)]
        + [_event(i, "a", "other failure") for i in range(1)]
    )
    stats = cluster_errors([], window, baseline_seconds=600, window_seconds=600)
    assert [(s.service, s.window_count) for s in stats] == [("a", 8), ("b", 2), ("a", 1)]
    best = service_log_scores(stats)
    assert best["a"].window_count == 8 and best["b"].window_count == 2
    assert not best["b"].anomalous
