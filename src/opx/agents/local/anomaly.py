"""Robust, direction-aware anomaly scoring of a metric window against the same series' baseline.

The baseline is summarised by its median and a robust spread; each window point gets a
directional robust z, and the series score is the second-largest of them, so that one noisy
point cannot make a series anomalous on its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any, Literal

Direction = Literal["up", "down", "both"]
DIRECTIONS: tuple[Direction, ...] = ("up", "down", "both")

# MAD * 1.4826 estimates the standard deviation of normal data.
MAD_TO_SIGMA = 1.4826
# A |deviation| quantile, divided by the normal z of that quantile, is a second spread estimate:
# for normal data it agrees with the MAD; for sparse or heavy-tailed baselines (error counts that
# are mostly zero with occasional blips) it is wider, so ordinary blips do not score. At 0.98 up
# to 2 % of the baseline (e.g. an earlier short incident) can be outliers without widening it.
TAIL_QUANTILE = 0.98
TAIL_Z = 2.326
# A baseline that sat on one value for 98 % of its points has no spread at all: it is a
# saturated or quantised metric (availability at 100 %, a constant gauge), and leaving that value
# is a change of regime. The smallest change treated as one unit of spread is then 0.1 % of the
# level: a move of Z_THRESHOLD x 0.1 % (100 % -> 99.6 % availability) is anomalous, while
# floating-point jitter stays far below. (A 1-5 % floor would hide a 96 % availability.)
REL_FLOOR = 0.001
# Last resort for a baseline that is flat at zero: any real move away from zero is a new
# behaviour, and Z_CAP keeps its score finite.
ABS_FLOOR = 1e-6
Z_CAP = 50.0
# A series is anomalous from this robust z on (strength 0.5).
Z_THRESHOLD = 4.0
MIN_BASELINE_POINTS = 3
# Over-dispersion of event counts (log lines, failing spans): bursts are normal, so a large count
# must at least double (z = (ratio - 1) / DISPERSION = Z_THRESHOLD) to be anomalous.
DISPERSION = 0.25

# Checked in this order: "unhealthy" must win over "healthy".
_UP_WORDS = (
    "unhealthy", "latency", "duration", "error", "fault", "throttl", "cpu", "memory",
    "5xx", "4xx", "timeout", "queue",
)
_DOWN_WORDS = ("availability", "success", "healthy")


def default_direction(metric: str) -> Direction:
    """Which way is bad for a metric, guessed from its name."""
    name = metric.lower()
    if any(word in name for word in _UP_WORDS):
        return "up"
    if any(word in name for word in _DOWN_WORDS):
        return "down"
    return "both"


def resolve_direction(metric: str, overrides: Mapping[str, str]) -> Direction:
    """The configured direction of ``metric`` if valid, else the name-based default."""
    given = overrides.get(metric)
    for direction in DIRECTIONS:
        if given == direction:
            return direction
    return default_direction(metric)


def finite(values: Iterable[Any]) -> list[float]:
    """The usable points: finite numbers (a missing point is None or NaN; a bool is no number)."""
    # Exact type checks: this runs over every point of every series, and bool is an int.
    return [
        float(v) for v in values
        if (type(v) is float and math.isfinite(v)) or type(v) is int
    ]


@dataclass(frozen=True)
class Baseline:
    """A series' normal behaviour: its median and robust spread (never zero)."""

    median: float
    scale: float
    points: int


def robust_baseline(values: Sequence[Any]) -> Baseline | None:
    """Median and spread of the usable points; None with fewer than MIN_BASELINE_POINTS."""
    clean = finite(values)
    if len(clean) < MIN_BASELINE_POINTS:
        return None
    centre = median(clean)
    deviations = sorted(abs(v - centre) for v in clean)
    mad_scale = MAD_TO_SIGMA * median(deviations)
    tail_index = min(len(deviations) - 1, math.floor(TAIL_QUANTILE * (len(deviations) - 1)))
    tail_scale = deviations[tail_index] / TAIL_Z
    scale = max(mad_scale, tail_scale, REL_FLOOR * abs(centre), ABS_FLOOR)
    return Baseline(median=centre, scale=scale, points=len(clean))


def directional_z(value: float, baseline: Baseline, direction: Direction) -> float:
    """How far ``value`` moved the bad way, in robust spreads; 0 for a move the good way."""
    z = (value - baseline.median) / baseline.scale
    if direction == "down":
        z = -z
    elif direction == "both":
        z = abs(z)
    return min(max(z, 0.0), Z_CAP)


@dataclass(frozen=True)
class WindowScore:
    """The score of a window: the robust z, the most extreme point and how many points."""

    z: float
    extreme: float
    extreme_index: int
    points: int


def score_window(
    baseline: Baseline, window: Sequence[Any], direction: Direction
) -> WindowScore | None:
    """Second-largest directional z over the window's usable points (the only z for one point);
    None when the window has no usable point."""
    indexed = [(i, float(v)) for i, v in enumerate(window) if finite([v])]
    if not indexed:
        return None
    zs = sorted(
        ((directional_z(v, baseline, direction), -i, v) for i, v in indexed), reverse=True
    )
    robust = zs[1][0] if len(zs) >= 2 else zs[0][0]
    _, neg_index, extreme = zs[0]
    return WindowScore(z=robust, extreme=extreme, extreme_index=-neg_index, points=len(indexed))


def strength(z: float, threshold: float = Z_THRESHOLD) -> float:
    """A 0..1 anomaly strength: 0.5 at the threshold, 0.8 at twice it, 0.9 at three times."""
    if z <= 0:
        return 0.0
    return z * z / (z * z + threshold * threshold)


def surge_z(observed: float, expected: float) -> float:
    """How surprising ``observed`` events are when ``expected`` were due, under an
    over-dispersed Poisson model (variance = mean + 1 + (DISPERSION*mean)^2, the 1 so that a
    handful of rare events is not alarming); 0 when no more than expected."""
    if observed <= expected:
        return 0.0
    spread = math.sqrt(expected + 1.0 + (DISPERSION * expected) ** 2)
    return min((observed - expected) / spread, Z_CAP)


@dataclass(frozen=True)
class SeriesScore:
    """One scored metric series, with enough context to cite it as evidence."""

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

    @property
    def anomalous(self) -> bool:
        return self.z >= Z_THRESHOLD

    def to_finding(self) -> dict[str, Any]:
        return {
            "series_id": self.series_id,
            "service": self.service,
            "metric": self.metric,
            "stat": self.stat,
            "direction": self.direction,
            "z": round(self.z, 3),
            "strength": round(self.strength, 4),
            "baseline_median": round(self.baseline_median, 6),
            "window_extreme": round(self.window_extreme, 6),
            "extreme_at": self.extreme_at,
            "window_points": self.window_points,
        }


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
) -> list[SeriesScore]:
    """Score every window series against the same series in the baseline, sorted by
    descending z then id; a series without enough baseline or window points is skipped."""
    baselines = merge_series(baseline_series)
    scores: list[SeriesScore] = []
    for sid, item in sorted(merge_series(window_series).items()):
        base_item = baselines.get(sid)
        if base_item is None:
            continue
        scored = _score_one(sid, base_item, item, directions)
        if scored is not None:
            scores.append(scored)
    scores.sort(key=lambda s: (-s.z, s.series_id))
    return scores


def _score_one(
    sid: str,
    base_item: Mapping[str, Any],
    item: Mapping[str, Any],
    directions: Mapping[str, str],
) -> SeriesScore | None:
    baseline = robust_baseline(base_item["values"])
    if baseline is None:
        return None
    metric = str(item.get("metric", ""))
    direction = resolve_direction(metric, directions)
    window = score_window(baseline, item["values"], direction)
    if window is None:
        return None
    stamps = item["timestamps"]
    at = stamps[window.extreme_index] if window.extreme_index < len(stamps) else None
    return SeriesScore(
        series_id=sid,
        service=str(item.get("service", "")),
        metric=metric,
        stat=str(item.get("stat", "")),
        direction=direction,
        z=window.z,
        strength=strength(window.z),
        baseline_median=baseline.median,
        baseline_scale=baseline.scale,
        baseline_points=baseline.points,
        window_points=window.points,
        window_extreme=window.extreme,
        extreme_at=None if at is None else str(at),
    )
