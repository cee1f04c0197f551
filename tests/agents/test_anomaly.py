"""Robust anomaly scoring: baselines, directions, short windows and missing points."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest

from opx.agents.local.accounting import impact
from opx.agents.local.anchor import (
    AlarmProfile,
    alarm_profile,
    parse_time,
    score_anchored_count,
    score_anchored_window,
)
from opx.agents.local.counts import (
    SPARSE_COUNT,
    count_baseline,
    count_z,
    is_count_series,
    score_count_window,
)
from opx.agents.local.robust import (
    ABS_FLOOR,
    MAD_TO_SIGMA,
    REL_FLOOR,
    Z_CAP,
    Z_THRESHOLD,
    default_direction,
    directional_z,
    finite,
    resolve_direction,
    robust_baseline,
    strength,
    surge_z,
)
from opx.agents.local.series_scores import SeriesScore, merge_series, score_series
from opx.agents.local.windows import persistence_rank, score_window

from .builders_signal import noise


def test_baseline_is_median_and_scaled_mad_for_normal_like_data() -> None:
    values = [10.0, 11.0, 9.0, 10.0, 12.0, 8.0, 10.0]
    baseline = robust_baseline(values)
    assert baseline is not None
    assert baseline.median == 10.0
    # |deviations| sorted: 0 0 0 1 1 2 2 -> MAD 1; the 98% tail (2 / 2.326) is smaller.
    assert baseline.scale == pytest.approx(MAD_TO_SIGMA * 1.0)
    assert baseline.points == 7


def test_one_huge_outlier_in_the_baseline_does_not_widen_it() -> None:
    values = noise(3, 200, 100.0, 5.0)
    clean = robust_baseline(values)
    values[17] = 1e9
    dirty = robust_baseline(values)
    assert clean is not None and dirty is not None
    assert dirty.scale == pytest.approx(clean.scale, rel=0.05)


def test_flat_baseline_uses_the_relative_floor_and_does_not_explode() -> None:
    baseline = robust_baseline([100.0] * 50)
    assert baseline is not None
    assert baseline.scale == pytest.approx(REL_FLOOR * 100.0)
    # A 0.2 % wobble on a flat series is not anomalous; a 1 % move away from it is.
    assert directional_z(100.2, baseline, "up") < Z_THRESHOLD
    assert directional_z(101.0, baseline, "up") >= Z_THRESHOLD
    assert directional_z(100.0 + 1e-9, baseline, "up") < 1e-3


def test_flat_zero_baseline_is_capped_not_infinite() -> None:
    baseline = robust_baseline([0.0] * 30)
    assert baseline is not None
    assert baseline.scale == ABS_FLOOR
    assert directional_z(5.0, baseline, "up") == Z_CAP


def test_sparse_blips_in_the_baseline_make_single_blips_normal() -> None:
    # An error count that is mostly zero with occasional ones: a window of ones is routine.
    values = [1.0 if i % 20 == 0 else 0.0 for i in range(300)]
    baseline = robust_baseline(values)
    assert baseline is not None
    window = score_window(baseline, [1.0, 0.0, 1.0, 1.0], "up")
    assert window is not None and window.z < Z_THRESHOLD
    burst = score_window(baseline, [9.0, 12.0, 10.0], "up")
    assert burst is not None and burst.z >= Z_THRESHOLD


def test_spike_is_anomalous_up_and_a_drop_is_not() -> None:
    baseline = robust_baseline(noise(5, 100, 100.0, 5.0))
    assert baseline is not None
    spike = score_window(baseline, [180.0, 190.0, 185.0], "up")
    drop = score_window(baseline, [20.0, 15.0, 18.0], "up")
    assert spike is not None and spike.z > 10
    assert drop is not None and drop.z == 0.0


def test_drop_is_anomalous_down_and_both_sees_either_way() -> None:
    baseline = robust_baseline(noise(6, 100, 99.9, 0.05))
    assert baseline is not None
    window = [90.0, 91.0, 92.0]
    assert (down := score_window(baseline, window, "down")) is not None and down.z >= Z_THRESHOLD
    assert (up := score_window(baseline, window, "up")) is not None and up.z == 0.0
    assert (both := score_window(baseline, window, "both")) is not None
    assert both.z == down.z


def test_single_point_noise_does_not_make_a_series_anomalous() -> None:
    baseline = robust_baseline(noise(8, 100, 100.0, 5.0))
    assert baseline is not None
    window = score_window(baseline, [101.0, 500.0, 99.0, 102.0], "up")
    assert window is not None
    assert window.z < Z_THRESHOLD
    assert window.extreme == 500.0 and window.extreme_index == 1


def test_short_windows_one_and_two_points() -> None:
    baseline = robust_baseline(noise(9, 100, 100.0, 5.0))
    assert baseline is not None
    one = score_window(baseline, [200.0], "up")
    two_one_bad = score_window(baseline, [200.0, 100.0], "up")
    two_bad = score_window(baseline, [200.0, 210.0], "up")
    assert one is not None and one.z >= Z_THRESHOLD and one.points == 1
    assert two_one_bad is not None and two_one_bad.z < Z_THRESHOLD
    assert two_bad is not None and two_bad.z >= Z_THRESHOLD


def test_missing_points_are_skipped() -> None:
    assert finite([1, 2.5, None, math.nan, math.inf, "3", True]) == [1.0, 2.5]
    assert robust_baseline([1.0, None, math.nan]) is None
    baseline = robust_baseline([10.0, None, 11.0, math.nan, 9.0, 10.0])
    assert baseline is not None and baseline.points == 4
    assert score_window(baseline, [None, math.nan], "up") is None
    window = score_window(baseline, [None, 40.0, math.nan, 50.0], "up")
    assert window is not None and window.points == 2 and window.extreme_index == 3


def test_default_directions_by_name() -> None:
    assert default_direction("p99Latency") == "up"
    assert default_direction("ErrorCount") == "up"
    assert default_direction("CPUUtilization") == "up"
    assert default_direction("HTTP_5xx") == "up"
    assert default_direction("Availability") == "down"
    assert default_direction("PodSuccessRate") == "down"
    assert default_direction("HealthyHostCount") == "down"
    assert default_direction("UnHealthyHostCount") == "up"
    assert default_direction("Requests") == "both"


def test_configured_direction_overrides_the_name_and_bad_values_are_ignored() -> None:
    assert resolve_direction("Requests", {"Requests": "down"}) == "down"
    assert resolve_direction("Latency", {"Latency": "sideways"}) == "up"


def test_strength_is_half_at_the_threshold_and_monotonic() -> None:
    assert strength(0.0) == 0.0
    assert strength(Z_THRESHOLD) == pytest.approx(0.5)
    assert strength(2 * Z_THRESHOLD) == pytest.approx(0.8)
    assert strength(3.0) < strength(5.0) < strength(20.0) < 1.0


def test_surge_z_needs_a_doubling_for_large_counts() -> None:
    assert surge_z(3, 5.0) == 0.0
    assert surge_z(5, 0.0) >= Z_THRESHOLD
    assert surge_z(2, 0.0) < Z_THRESHOLD
    assert surge_z(1500, 1000.0) < Z_THRESHOLD
    assert surge_z(2500, 1000.0) > Z_THRESHOLD


def _item(
    sid: str, values: Sequence[float | None], metric: str = "Latency", stat: str = "Average"
) -> dict[str, Any]:
    service = sid.split("|", maxsplit=1)[0]
    stamps = [f"2026-03-01T{i // 60:02d}:{i % 60:02d}:00Z" for i in range(len(values))]
    return {
        "id": sid,
        "service": service,
        "metric": metric,
        "stat": stat,
        "unit": "ms",
        "timestamps": stamps,
        "values": values,
    }


def test_merge_series_joins_pieces_split_across_pages() -> None:
    first = _item("a|Latency|Average", [1.0, 2.0])
    second = _item("a|Latency|Average", [3.0])
    merged = merge_series([first, second])
    assert merged["a|Latency|Average"]["values"] == [1.0, 2.0, 3.0]
    assert len(merged["a|Latency|Average"]["timestamps"]) == 3


def test_score_series_ranks_by_z_and_skips_series_without_baseline() -> None:
    base = [
        _item("a|Latency|Average", noise(1, 50, 100.0, 5.0)),
        _item("b|Latency|Average", noise(2, 50, 100.0, 5.0)),
        _item("c|Availability|Average", noise(3, 50, 100.0, 0.1), metric="Availability"),
    ]
    window = [
        _item("a|Latency|Average", [101.0, 99.0, 100.0]),
        _item("b|Latency|Average", [300.0, 310.0, 305.0]),
        _item("c|Availability|Average", [80.0, 85.0, 82.0], metric="Availability"),
        _item("d|Latency|Average", [500.0, 500.0]),
    ]
    scores = score_series(base, window, {})
    zs = [s.z for s in scores]
    assert zs == sorted(zs, reverse=True)
    assert scores[-1].series_id == "a|Latency|Average"
    assert {s.series_id for s in scores} == {
        "a|Latency|Average",
        "b|Latency|Average",
        "c|Availability|Average",
    }
    by_id = {s.series_id: s for s in scores}
    assert by_id["c|Availability|Average"].direction == "down"
    assert by_id["a|Latency|Average"].anomalous is False
    assert by_id["b|Latency|Average"].extreme_at == "2026-03-01T00:01:00Z"


# -- persistence -------------------------------------------------------------------------------


def test_persistence_rank_needs_a_sixth_of_the_window_and_at_least_two_points() -> None:
    assert persistence_rank(1) == 1
    assert [persistence_rank(n) for n in (2, 5, 8, 12)] == [2, 2, 2, 2]
    assert persistence_rank(13) == 3
    assert persistence_rank(30) == 5
    assert persistence_rank(60) == 10


def test_a_short_blip_in_a_long_window_is_not_anomalous_but_a_sustained_shift_is() -> None:
    baseline = robust_baseline(noise(11, 180, 35.0, 1.0))
    assert baseline is not None
    quiet = noise(12, 30, 35.0, 1.0)
    blip = [60.0 if 4 <= i < 8 else v for i, v in enumerate(quiet)]  # four minutes out of 30
    sustained = [60.0 if i >= 20 else v for i, v in enumerate(quiet)]  # the last ten minutes
    blip_score = score_window(baseline, blip, "up")
    sustained_score = score_window(baseline, sustained, "up")
    assert blip_score is not None and blip_score.z < Z_THRESHOLD
    assert blip_score.extreme == 60.0  # the blip is still reported as the window's extreme
    assert sustained_score is not None and sustained_score.z >= Z_THRESHOLD


def test_a_few_coarse_points_still_need_only_two_bad_points() -> None:
    baseline = robust_baseline(noise(13, 288, 100.0, 5.0))
    assert baseline is not None
    window = [101.0, 98.0, 99.0, 102.0, 180.0, 190.0]  # six 5-minute rows, the last two bad
    scored = score_window(baseline, window, "up")
    assert scored is not None and scored.z >= Z_THRESHOLD


# -- counts ------------------------------------------------------------------------------------


def _sparse_errors(events_at: Sequence[int], points: int = 180) -> list[float]:
    return [1.0 if i in set(events_at) else 0.0 for i in range(points)]


def test_count_series_are_recognised_by_statistic_or_by_name_and_integer_values() -> None:
    zeros = [0.0, 1.0, 0.0, 2.0]
    assert is_count_series("errors", "Sum", zeros)
    assert is_count_series("Whatever", "SampleCount", [0.5, 1.5, 2.0])
    assert is_count_series("ThrottledRequests", "", zeros)
    assert is_count_series("ErrorCount", "count", zeros)
    assert not is_count_series("ErrorCount", "", [0.5, 1.0, 0.0])  # not integers
    assert not is_count_series("HealthyHostCount", "Average", [3.0, 3.0, 2.0])  # a gauge
    assert not is_count_series("errors", "p99", zeros)
    assert not is_count_series("Latency", "", [1.0, 2.0, 3.0])  # not a count name
    assert not is_count_series("errors", "Sum", [1.0, -1.0, 0.0])  # negative: no count
    assert not is_count_series("errors", "Sum", [None, math.nan])


def test_count_baseline_rate_ignores_an_earlier_burst_but_keeps_rare_events() -> None:
    rare = _sparse_errors([10, 14, 39, 80, 120, 170])
    reference = count_baseline(rare)
    assert reference is not None
    assert reference.rate == pytest.approx(6 / 180)
    burst = list(rare)
    burst[50:53] = [400.0, 350.0, 500.0]
    with_burst = count_baseline(burst)
    assert with_burst is not None
    assert with_burst.rate < 4 * reference.rate  # the raw mean would be 200x larger
    assert count_baseline([1.0, -2.0, 3.0]) is None
    assert count_baseline([1.0, 2.0]) is None


def test_two_errors_at_the_usual_rate_are_normal_and_forty_are_not() -> None:
    # Six errors in 180 minutes: about one per half hour.
    reference = count_baseline(_sparse_errors([10, 14, 39, 80, 120, 170]))
    assert reference is not None
    usual = [0.0] * 30
    usual[21], usual[28] = 1.0, 1.0
    busy = [1.0 + (i % 2) for i in range(30)]  # 45 errors, spread over the window
    normal = score_count_window(reference, usual, "up")
    anomalous = score_count_window(reference, busy, "up")
    assert normal is not None and normal.z < 1.5
    assert anomalous is not None and anomalous.z >= 3 * Z_THRESHOLD
    assert anomalous.extreme == 2.0 and anomalous.points == 30


def test_a_single_burst_in_a_count_window_is_not_persistent() -> None:
    reference = count_baseline(_sparse_errors([10, 14, 39, 80, 120, 170]))
    assert reference is not None
    one_burst = [0.0] * 30
    one_burst[12] = 200.0
    scored = score_count_window(reference, one_burst, "up")
    assert scored is not None and scored.z < Z_THRESHOLD
    assert scored.extreme == 200.0 and scored.extreme_index == 12


def test_count_z_by_direction_and_with_drift() -> None:
    reference = count_baseline([5.0] * 100)
    assert reference is not None and reference.excess == 0.0
    assert count_z(30.0, 6, reference, "up") == 0.0
    assert count_z(0.0, 6, reference, "down") >= Z_THRESHOLD  # 30 expected, none seen
    assert count_z(0.0, 6, reference, "both") == count_z(0.0, 6, reference, "down")
    assert count_z(80.0, 6, reference, "up") == count_z(80.0, 6, reference, "both")
    drifting = count_baseline([float(v) for v in range(0, 10)] * 10)
    assert drifting is not None and drifting.excess > 0.0
    # A level that wanders over the baseline makes the same total less surprising.
    assert count_z(60.0, 6, drifting, "up") < count_z(60.0, 6, reference, "up")


def test_score_series_tests_sparse_counts_as_counts_and_dense_ones_as_levels() -> None:
    # Four errors in 180 minutes: the 98 % quantile of the deviations is zero, so the level
    # test would see a new regime in any error at all.
    rare = _sparse_errors([10, 14, 39, 120])
    window = [0.0] * 30
    window[21], window[28] = 1.0, 1.0
    dense_base = noise(21, 180, 500.0, 20.0)
    base = [
        _item("q|errors|Sum", rare, metric="errors", stat="Sum"),
        _item("r|requests|Sum", dense_base, metric="requests", stat="Sum"),
    ]
    current = [
        _item("q|errors|Sum", window, metric="errors", stat="Sum"),
        _item("r|requests|Sum", [50.0] * 30, metric="requests", stat="Sum"),
    ]
    by_id = {s.series_id: s for s in score_series(base, current, {})}
    sparse, dense = by_id["q|errors|Sum"], by_id["r|requests|Sum"]
    assert sparse.test == "count" and not sparse.anomalous
    assert sparse.window_total == 2.0
    assert sparse.expected_total == pytest.approx(30 * 4 / 180)
    assert "expected at the baseline rate" in sparse.summary()
    assert sparse.to_finding()["window_total"] == 2.0
    assert dense.test == "level" and dense.anomalous and dense.window_total is None
    assert _median_of(dense_base) >= SPARSE_COUNT
    assert "baseline median" in dense.summary()


def _median_of(values: Sequence[float]) -> float:
    baseline = robust_baseline(values)
    assert baseline is not None
    return baseline.median


# -- the alarm as anchor -------------------------------------------------------------------------

_STAMPS = [f"2026-03-01T12:{minute:02d}:00Z" for minute in range(0, 30, 5)]


def _times(stamps: Sequence[str]) -> list[datetime | None]:
    return [parse_time(s) for s in stamps]


def _middle_alarm() -> AlarmProfile:
    """An alarm series that is bad at the third and fourth of six 5-minute points."""
    base = noise(1, 60, 100.0, 5.0)
    profile = alarm_profile(
        "front|Latency|Average", base, _STAMPS, [100.0, 101.0, 190.0, 200.0, 99.0, 98.0], "up"
    )
    assert profile is not None
    return profile


def test_the_alarm_profile_marks_the_points_where_the_alarm_was_bad() -> None:
    profile = _middle_alarm()
    assert profile.active == (False, False, True, True, False, False)
    assert profile.peak >= Z_THRESHOLD
    # A point of another resolution belongs to the alarm period that holds it.
    assert profile.state(parse_time("2026-03-01T12:12:00Z")) is True
    assert profile.state(parse_time("2026-03-01T12:04:59Z")) is False
    assert profile.state(parse_time("2026-03-01T11:59:00Z")) is None
    assert profile.state(parse_time("2026-03-01T12:30:00Z")) is None
    assert profile.state(None) is None


def test_an_alarm_series_that_never_moved_gives_no_profile() -> None:
    base = [100.0, 102.0, 98.0, 101.0, 99.0, 100.0, 100.0]
    assert alarm_profile("a", base, _STAMPS, [100.0] * 6, "up") is None
    assert alarm_profile("a", base, _STAMPS, [300.0] * 6, "down") is None
    assert alarm_profile("a", [1.0], _STAMPS, [300.0] * 6, "up") is None


def test_a_weak_alarm_is_active_where_it_was_at_least_half_its_peak() -> None:
    base = noise(3, 200, 100.0, 5.0)
    profile = alarm_profile("a", base, _STAMPS, [100.0, 104.0, 112.0, 100.0, 109.0, 100.0], "up")
    assert profile is not None and profile.peak < Z_THRESHOLD
    assert profile.active == (False, False, True, False, True, False)


def test_anchored_levels_ignore_what_was_already_bad_while_the_alarm_was_quiet() -> None:
    anchor = _middle_alarm()
    baseline = robust_baseline(noise(2, 60, 50.0, 2.0))
    assert baseline is not None
    times = _times(_STAMPS)
    drifted = score_anchored_window(baseline, [85.0] * 6, times, "up", anchor)
    coincident = score_anchored_window(
        baseline, [50.0, 51.0, 80.0, 82.0, 50.0, 49.0], times, "up", anchor
    )
    blip = score_anchored_window(
        baseline, [50.0, 51.0, 90.0, 50.0, 50.0, 49.0], times, "up", anchor
    )
    assert drifted is not None and coincident is not None and blip is not None
    assert drifted.anchored and drifted.quiet == 85.0
    assert drifted.z == 0.0  # as bad while the alarm was quiet: it explains nothing
    assert coincident.z >= 3 * Z_THRESHOLD
    assert coincident.extreme == 82.0 and coincident.extreme_index == 3
    assert blip.z < Z_THRESHOLD  # one point is no sustained fault, even when it coincides
    # Without the anchor the drifted series is the most anomalous of the three.
    unanchored = score_window(baseline, [85.0] * 6, "up")
    assert unanchored is not None and unanchored.z > coincident.z


def test_anchored_counts_compare_the_active_points_with_the_quiet_ones() -> None:
    anchor = _middle_alarm()
    reference = count_baseline([0, 1, 0, 2, 0, 1, 0, 0, 1, 0] * 6)
    assert reference is not None
    times = _times(_STAMPS)
    steady = score_anchored_count(reference, [20, 22, 21, 20, 19, 21], times, "up", anchor)
    surge = score_anchored_count(reference, [1, 0, 30, 25, 1, 0], times, "up", anchor)
    assert steady is not None and surge is not None
    assert steady.z < Z_THRESHOLD
    assert surge.z >= Z_THRESHOLD and surge.anchored
    assert score_count_window(reference, [20, 22, 21, 20, 19, 21], "up") is not None


def test_a_series_without_points_while_the_alarm_was_active_scores_zero() -> None:
    anchor = _middle_alarm()
    baseline = robust_baseline(noise(2, 60, 50.0, 2.0))
    assert baseline is not None
    scored = score_anchored_window(
        baseline, [90.0, 95.0, None, None, None, None], _times(_STAMPS), "up", anchor
    )
    assert scored is not None and scored.z == 0.0


def test_persistence_counts_the_periods_the_service_has_not_the_points_a_series_has() -> None:
    stamps = _STAMPS
    base_stamps = [f"2026-03-01T{h:02d}:{m:02d}:00Z" for h in range(6, 12) for m in range(0, 60, 5)]

    def series(
        metric: str, stat: str, base: list[Any], window: list[Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        head = {"id": f"idle|{metric}|{stat}", "service": "idle", "metric": metric, "stat": stat}
        return (
            {**head, "timestamps": base_stamps, "values": base},
            {**head, "timestamps": stamps, "values": window},
        )

    base_latency = noise(4, len(base_stamps), 10.0, 1.0)
    lat_base, lat_win = series(
        "Latency", "Average", base_latency, [None, None, None, 60.0, None, None]
    )
    req_base, req_win = series(
        "Requests", "Sum", [0.0, 1.0] * (len(base_stamps) // 2), [0.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    )
    scored = {s.metric: s for s in score_series([lat_base, req_base], [lat_win, req_win], {})}
    # One request in six periods: its latency shows no sustained fault however slow it was.
    assert scored["Latency"].z == 0.0
    alone = score_series([lat_base], [lat_win], {})
    assert alone[0].z >= Z_THRESHOLD  # a service with a single period left is judged on it


# -- impact in absolute units ------------------------------------------------------------------


def _measure(
    metric: str, stat: str, unit: str, median_value: float, values: Sequence[float]
) -> SeriesScore:
    return SeriesScore(
        series_id=f"svc|{metric}|{stat}",
        service="svc",
        metric=metric,
        stat=stat,
        direction="up",
        z=10.0,
        strength=strength(10.0),
        baseline_median=median_value,
        baseline_scale=1.0,
        baseline_points=100,
        window_points=len(values),
        window_extreme=max(values),
        extreme_at=None,
        unit=unit,
        points=tuple(zip(_STAMPS, values, strict=False)),
    )


def test_impact_is_in_request_seconds_failed_requests_or_extra_events() -> None:
    requests = dict.fromkeys(_STAMPS[:2], 10.0)
    latency = _measure("latency", "Average", "Milliseconds", 100.0, [300.0, 100.0])
    assert impact(latency, "latency", requests) == pytest.approx(10 * 0.2)
    seconds = _measure("latency", "Average", "Seconds", 0.1, [0.3, 0.1])
    assert impact(seconds, "latency", requests) == pytest.approx(
        impact(latency, "latency", requests) or 0.0
    )
    availability = _measure("availability", "Average", "Percent", 100.0, [90.0, 95.0])
    assert impact(availability, "failure_rate", requests) == pytest.approx(1.0 + 0.5)
    share = _measure("success", "Average", "", 1.0, [0.9, 0.95])
    assert impact(share, "failure_rate", requests) == pytest.approx(1.0 + 0.5)
    errors = _measure("errors", "Sum", "Count", 2.0, [12.0, 7.0])
    assert impact(errors, "failure_count") == pytest.approx(15.0)
    assert impact(latency, "latency", None) is None
    assert impact(latency, "latency", {"elsewhen": 3.0}) is None


def test_anchored_impact_counts_the_active_points_less_what_was_already_there() -> None:
    anchor = _middle_alarm()
    requests = dict.fromkeys(_STAMPS, 10.0)
    steady = _measure("latency", "Average", "Seconds", 0.1, [0.3] * 6)
    coincident = _measure("latency", "Average", "Seconds", 0.1, [0.1, 0.1, 0.3, 0.4, 0.1, 0.1])
    assert impact(steady, "latency", requests, anchor) == pytest.approx(0.0)
    assert impact(coincident, "latency", requests, anchor) == pytest.approx(10 * (0.2 + 0.3))
