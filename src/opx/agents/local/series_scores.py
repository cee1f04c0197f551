"""Every metric series of a window scored against the same series' baseline, by the level test
(:mod:`opx.agents.local.windows`) or, for sparse counts, the count test
(:mod:`opx.agents.local.counts`), anchored on the alarm when its profile is known
(:mod:`opx.agents.local.anchor`).

Persistence counts the periods the window has for a service (the usable points of its densest
series), not the points one series happens to have: a latency average reported in one period of
five, because only one request came, cannot show a sustained fault."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from opx.agents.local.anchor import (
    AlarmProfile,
    parse_time,
    score_anchored_count,
    score_anchored_window,
    split_points,
)
from opx.agents.local.counts import (
    SPARSE_COUNT,
    count_baseline,
    is_count_series,
    score_count_window,
)
from opx.agents.local.robust import (
    Z_THRESHOLD,
    Direction,
    finite,
    resolve_direction,
    robust_baseline,
    strength,
)
from opx.agents.local.windows import WindowScore, persistence_rank, score_window, usable

# How a series was scored: the robust z of its points, or its total against the baseline rate.
ScoreTest = Literal["level", "count"]


@dataclass(frozen=True)
class SeriesScore:
    """One scored metric series, with enough context to cite it as evidence. ``test`` says how
    it was scored: "level" (robust z of its points) or "count" (its total against the baseline
    rate, given in ``window_total`` and ``expected_total``). ``anchored`` when only the points
    where the alarm was active were scored, with ``quiet_level`` the series' level while the
    alarm was quiet; ``points`` are the window's usable (timestamp, value) pairs."""

    series_id: str
    service: str
    metric: str
    stat: str
    direction: Direction
    z: float
    strength: float
    baseline_median: float
    baseline_scale: float
    baseline_points: int
    window_points: int
    window_extreme: float
    extreme_at: str | None
    test: ScoreTest = "level"
    window_total: float | None = None
    expected_total: float | None = None
    unit: str = ""
    anchored: bool = False
    quiet_level: float | None = None
    points: tuple[tuple[str, float], ...] = ()

    @property
    def anomalous(self) -> bool:
        return self.z >= Z_THRESHOLD

    def summary(self) -> str:
        """One phrase on what the window did against the baseline."""
        label = f"{self.metric} ({self.stat})"
        when = " while the alarm was active" if self.anchored else ""
        if self.test == "count" and self.window_total is not None:
            expected = self.expected_total or 0.0
            scope = when or " in the window"
            return (
                f"{label} totalled {self.window_total:.6g}{scope} against "
                f"{expected:.4g} expected at the baseline rate (count z {self.z:.1f})"
            )
        quiet = (
            f" and {self.quiet_level:.4g} while the alarm was quiet"
            if self.quiet_level is not None
            else ""
        )
        return (
            f"{label} reached {self.window_extreme:.4g}{when} against a baseline median of "
            f"{self.baseline_median:.4g}{quiet} (robust z {self.z:.1f})"
        )

    def to_finding(self) -> dict[str, Any]:
        finding: dict[str, Any] = {
            "series_id": self.series_id,
            "service": self.service,
            "metric": self.metric,
            "stat": self.stat,
            "direction": self.direction,
            "test": self.test,
            "z": round(self.z, 3),
            "strength": round(self.strength, 4),
            "baseline_median": round(self.baseline_median, 6),
            "window_extreme": round(self.window_extreme, 6),
            "extreme_at": self.extreme_at,
            "window_points": self.window_points,
        }
        if self.window_total is not None and self.expected_total is not None:
            finding["window_total"] = round(self.window_total, 6)
            finding["expected_total"] = round(self.expected_total, 6)
        if self.anchored:
            finding["anchored"] = True
            finding["quiet_level"] = (
                None if self.quiet_level is None else round(self.quiet_level, 6)
            )
        return finding


def merge_series(series: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Series payloads keyed by id, with the pieces of a series split across pages joined."""
    merged: dict[str, dict[str, Any]] = {}
    for item in series:
        sid = str(item.get("id") or _fallback_id(item))
        known = merged.get(sid)
        stamps = list(item.get("timestamps") or [])
        values = list(item.get("values") or [])
        if known is None:
            merged[sid] = {**item, "id": sid, "timestamps": stamps, "values": values}
        else:
            known["timestamps"].extend(stamps)
            known["values"].extend(values)
    return merged


def _fallback_id(item: Mapping[str, Any]) -> str:
    return f"{item.get('service')}|{item.get('metric')}|{item.get('stat')}"


def score_series(
    baseline_series: Iterable[Mapping[str, Any]],
    window_series: Iterable[Mapping[str, Any]],
    directions: Mapping[str, str],
    anchor: AlarmProfile | None = None,
) -> list[SeriesScore]:
    """Score every window series against the same series in the baseline (only the points where
    the alarm was active, when an ``anchor`` is given), sorted by descending z then id; a series
    without enough baseline or window points is skipped.

    Persistence is judged against the periods the window has for the service, i.e. the usable
    points of its densest series: a latency reported in one period of five (one request in the
    window) cannot show a sustained fault, however far that point is from the baseline."""
    baselines = merge_series(baseline_series)
    window_items = merge_series(window_series)
    periods = _service_periods(window_items.values())
    scores: list[SeriesScore] = []
    for sid, item in sorted(window_items.items()):
        base_item = baselines.get(sid)
        if base_item is None:
            continue
        rank = persistence_rank(periods.get(str(item.get("service", "")), 0))
        scored = _score_one(sid, base_item, item, directions, anchor, rank)
        if scored is not None:
            scores.append(scored)
    scores.sort(key=lambda s: (-s.z, s.series_id))
    return scores


def _service_periods(items: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Per service, the most usable window points any of its series has."""
    periods: dict[str, int] = {}
    for item in items:
        service = str(item.get("service", ""))
        periods[service] = max(periods.get(service, 0), len(usable(item.get("values") or [])))
    return periods


def _score_one(
    sid: str,
    base_item: Mapping[str, Any],
    item: Mapping[str, Any],
    directions: Mapping[str, str],
    anchor: AlarmProfile | None,
    rank: int | None = None,
) -> SeriesScore | None:
    baseline = robust_baseline(base_item["values"])
    if baseline is None:
        return None
    metric = str(item.get("metric", ""))
    stat = str(item.get("stat", ""))
    direction = resolve_direction(metric, directions)
    stamps = item["timestamps"]
    times = [parse_time(s) for s in stamps] if anchor is not None else []
    counted = (
        _count_score(
            metric, stat, base_item["values"], item["values"], direction, times, anchor, rank
        )
        if baseline.median < SPARSE_COUNT
        else None
    )
    if counted:
        window: WindowScore | None = counted[0]
    elif anchor is not None:
        window = score_anchored_window(baseline, item["values"], times, direction, anchor, rank)
    else:
        window = score_window(baseline, item["values"], direction, rank)
    if window is None:
        return None
    at = stamps[window.extreme_index] if window.extreme_index < len(stamps) else None
    return SeriesScore(
        series_id=sid,
        service=str(item.get("service", "")),
        metric=metric,
        stat=stat,
        direction=direction,
        z=window.z,
        strength=strength(window.z),
        baseline_median=baseline.median,
        baseline_scale=baseline.scale,
        baseline_points=baseline.points,
        window_points=window.points,
        window_extreme=window.extreme,
        extreme_at=None if at is None else str(at),
        test="count" if counted else "level",
        window_total=counted[1] if counted else None,
        expected_total=counted[2] if counted else None,
        unit=str(item.get("unit") or ""),
        anchored=window.anchored,
        quiet_level=window.quiet,
        points=tuple((str(stamps[i]), v) for i, v in usable(item["values"]) if i < len(stamps)),
    )


def _count_score(
    metric: str,
    stat: str,
    base: Sequence[Any],
    window: Sequence[Any],
    direction: Direction,
    times: Sequence[datetime | None],
    anchor: AlarmProfile | None,
    rank: int | None = None,
) -> tuple[WindowScore, float, float] | None:
    """The count test's score, total and expected total (of the points where the alarm was
    active, with an anchor; of the window otherwise); None when the series is not a count (or its
    window has a negative or no usable point). The caller decides whether the count is sparse
    enough to need it."""
    if not is_count_series(metric, stat, base):
        return None
    values = finite(window)
    reference = count_baseline(base)
    if reference is None or not values or min(values) < 0.0:
        return None
    if anchor is None:
        scored = score_count_window(reference, window, direction, rank)
        return None if scored is None else (scored, sum(values), reference.rate * len(values))
    anchored = score_anchored_count(reference, window, times, direction, anchor, rank)
    if anchored is None:
        return None
    active, _ = split_points(window, times, anchor)
    total = sum(v for _, v in active)
    return anchored, total, reference.rate * len(active)
