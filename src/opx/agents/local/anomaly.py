"""Robust, direction-aware anomaly scoring of a metric window against the same series' baseline.

Two tests, chosen by what the series is:

- Levels (latency, CPU, availability, ...): the baseline is summarised by its median and a
  robust spread; each window point gets a directional robust z, and the window score is the
  k-th largest of them with k = max(2, ceil(n / 6)) for n window points. An alarm-worthy fault
  is sustained: it must hold for a sixth of the window (5 of 30 one-minute points), so a short
  blip does not dominate, while a window of a few coarse points (six 5-minute rows) still needs
  only two bad points.
- Sparse counts (stat Sum/SampleCount, or integer, non-negative baselines of count-like names
  such as errors or requests, with a baseline median below SPARSE_COUNT events per point): the
  window's total is compared with the total the baseline rate predicts, under an over-dispersed
  Poisson model. A mostly-zero baseline has no usable spread, so two errors in half an hour
  against a rate of one per half hour must not look like a new regime, while forty must. The
  same persistence applies: the k - 1 most extreme window points are left out of the total.
  Dense counts keep the level test: their robust spread is well defined, and a single rate
  would misjudge baselines with quiet periods or drift that the median and MAD shrug off.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any, Literal

Direction = Literal["up", "down", "both"]
DIRECTIONS: tuple[Direction, ...] = ("up", "down", "both")
# How a series was scored: the robust z of its points, or its total against the baseline rate.
ScoreTest = Literal["level", "count"]

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
# The window score is the k-th most anomalous point, k = max(MIN_PERSISTENT, ceil(n / share)).
PERSISTENCE_SHARE = 6
MIN_PERSISTENT = 2
# A count whose baseline median is below this many events per point is tested as a count: its
# median/MAD summary is too coarse (at a mostly-zero baseline it has no spread at all), while
# from about ten events on Poisson noise is near normal and the level test measures it.
SPARSE_COUNT = 10.0
# Over-dispersion of event counts (log lines, failing spans): bursts are normal, so a large count
# must at least double (z = (ratio - 1) / DISPERSION = Z_THRESHOLD) to be anomalous.
DISPERSION = 0.25

# Checked in this order: "unhealthy" must win over "healthy".
_UP_WORDS = (
    "unhealthy", "latency", "duration", "error", "fault", "throttl", "cpu", "memory",
    "5xx", "4xx", "timeout", "queue",
)
_DOWN_WORDS = ("availability", "success", "healthy")

# Statistics that are totals of events per period, whatever the metric is called.
_COUNT_STATS = frozenset({"sum", "samplecount", "count"})
# Statistics of a gauge (a level sampled per period) or of a distribution (percentiles and
# CloudWatch's other extended statistics): such a series is never a count, even when its name
# says "count" (an Average of HealthyHostCount is a level).
_GAUGE_STATS = frozenset({"average", "avg", "mean", "minimum", "min", "maximum", "max"})
_GAUGE_STAT_PREFIXES = ("p", "tm", "wm", "tc", "ts", "pr")
# Names of event counts, for series whose statistic does not say.
_COUNT_WORDS = (
    "error", "fault", "throttl", "request", "count", "exception", "invocation", "5xx", "4xx",
)


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


def persistence_rank(points: int) -> int:
    """Which of a window's point scores is the window's score (1 = the largest): a fault must
    hold for max(2, ceil(n / 6)) of its n points; never more than the points there are."""
    if points <= 0:
        return 1
    return min(points, max(MIN_PERSISTENT, math.ceil(points / PERSISTENCE_SHARE)))


def _usable(window: Sequence[Any]) -> list[tuple[int, float]]:
    return [(i, float(v)) for i, v in enumerate(window) if finite([v])]


def score_window(
    baseline: Baseline, window: Sequence[Any], direction: Direction
) -> WindowScore | None:
    """The k-th largest directional z over the window's usable points (k from
    :func:`persistence_rank`: the second-largest for up to 12 points, the only z for one point);
    None when the window has no usable point."""
    indexed = _usable(window)
    if not indexed:
        return None
    zs = sorted(
        ((directional_z(v, baseline, direction), -i, v) for i, v in indexed), reverse=True
    )
    robust = zs[persistence_rank(len(zs)) - 1][0]
    _, neg_index, extreme = zs[0]
    return WindowScore(z=robust, extreme=extreme, extreme_index=-neg_index, points=len(indexed))


# -- counts ------------------------------------------------------------------------------------


def is_count_series(metric: str, stat: str, baseline: Sequence[Any]) -> bool:
    """True for a series of event counts: a Sum/SampleCount statistic with a non-negative
    baseline, or, when the statistic is not a gauge's, a count-like name with a baseline of
    non-negative integers."""
    clean = finite(baseline)
    if not clean or min(clean) < 0.0:
        return False
    kind = stat.strip().lower()
    if kind in _COUNT_STATS:
        return True
    if kind in _GAUGE_STATS or _is_percentile_like(kind):
        return False
    name = metric.lower()
    return any(word in name for word in _COUNT_WORDS) and all(v == int(v) for v in clean)


def _is_percentile_like(stat: str) -> bool:
    """p99, p99.9, tm90, wm99, tc(10%:90%), ...: extended statistics of a distribution."""
    for prefix in _GAUGE_STAT_PREFIXES:
        rest = stat[len(prefix):]
        if stat.startswith(prefix) and rest and (rest[0].isdigit() or rest[0] == "("):
            return True
    return False


@dataclass(frozen=True)
class CountBaseline:
    """A count series' normal behaviour: events per point, and the per-point spread beyond
    Poisson noise (the level drifting over the baseline), which is shared by a window's points."""

    rate: float
    excess: float
    points: int


def count_baseline(values: Sequence[Any]) -> CountBaseline | None:
    """Rate and excess spread of a non-negative series; None with fewer than
    MIN_BASELINE_POINTS usable points or a negative one."""
    clean = finite(values)
    if len(clean) < MIN_BASELINE_POINTS or min(clean) < 0.0:
        return None
    ordered = sorted(clean)
    centre = median(ordered)
    # Winsorised mean: an earlier burst in the baseline (a past incident) must not raise the
    # rate, yet the occasional rare events of a sparse series must count in full. Points above
    # both the tail quantile and what Poisson noise allows around the median are capped.
    tail = ordered[min(len(ordered) - 1, math.floor(TAIL_QUANTILE * (len(ordered) - 1)))]
    cap = max(tail, centre + Z_THRESHOLD * math.sqrt(centre + 1.0))
    rate = sum(min(v, cap) for v in ordered) / len(ordered)
    # The bulk's spread (MAD) beyond Poisson's is level drift; spikes do not enter it.
    bulk = MAD_TO_SIGMA * median(sorted(abs(v - centre) for v in ordered))
    excess = math.sqrt(max(bulk * bulk - rate, 0.0))
    return CountBaseline(rate=rate, excess=excess, points=len(clean))


def count_z(
    observed: float, points: int, baseline: CountBaseline, direction: Direction
) -> float:
    """How surprising a total of ``observed`` events over ``points`` points is, the bad way:
    expected = rate x points, variance = expected + 1 + (points x excess)^2 (Poisson noise; a
    handful of rare events is not alarming; drift moves all points of a window together)."""
    expected = baseline.rate * points
    spread = math.sqrt(expected + 1.0 + (points * baseline.excess) ** 2)
    z = (observed - expected) / spread
    if direction == "down":
        z = -z
    elif direction == "both":
        z = abs(z)
    return min(max(z, 0.0), Z_CAP)


def score_count_window(
    baseline: CountBaseline, window: Sequence[Any], direction: Direction
) -> WindowScore | None:
    """The count test of a window: its total without its k - 1 most extreme points the bad way
    (k from :func:`persistence_rank`), against the baseline rate; None when the window has no
    usable point."""
    indexed = _usable(window)
    if not indexed:
        return None
    drop = persistence_rank(len(indexed)) - 1
    values = sorted(v for _, v in indexed)
    kept = len(values) - drop
    high = count_z(sum(values[:kept]), kept, baseline, "up")
    low = count_z(sum(values[drop:]), kept, baseline, "down")
    z = {"up": high, "down": low}.get(direction, max(high, low))
    index, extreme = max(
        indexed, key=lambda p: (_count_badness(p[1], baseline.rate, direction, high >= low), -p[0])
    )
    return WindowScore(z=z, extreme=extreme, extreme_index=index, points=len(indexed))


def _count_badness(value: float, rate: float, direction: Direction, upward: bool) -> float:
    if direction == "up" or (direction == "both" and upward):
        return value - rate
    return rate - value


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
    """One scored metric series, with enough context to cite it as evidence. ``test`` says how
    it was scored: "level" (robust z of its points) or "count" (its total against the baseline
    rate, given in ``window_total`` and ``expected_total``)."""

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

    @property
    def anomalous(self) -> bool:
        return self.z >= Z_THRESHOLD

    def summary(self) -> str:
        """One phrase on what the window did against the baseline."""
        label = f"{self.metric} ({self.stat})"
        if self.test == "count" and self.window_total is not None:
            expected = self.expected_total or 0.0
            return (
                f"{label} totalled {self.window_total:.6g} in the window against "
                f"{expected:.4g} expected at the baseline rate (count z {self.z:.1f})"
            )
        return (
            f"{label} reached {self.window_extreme:.4g} against a baseline median of "
            f"{self.baseline_median:.4g} (robust z {self.z:.1f})"
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
    stat = str(item.get("stat", ""))
    direction = resolve_direction(metric, directions)
    counted = (
        _count_score(metric, stat, base_item["values"], item["values"], direction)
        if baseline.median < SPARSE_COUNT else None
    )
    window = counted[0] if counted else score_window(baseline, item["values"], direction)
    if window is None:
        return None
    stamps = item["timestamps"]
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
    )


def _count_score(
    metric: str, stat: str, base: Sequence[Any], window: Sequence[Any], direction: Direction
) -> tuple[WindowScore, float, float] | None:
    """The count test's score, window total and expected total; None when the series is not a
    count (or its window has a negative or no usable point). The caller decides whether the
    count is sparse enough to need it."""
    if not is_count_series(metric, stat, base):
        return None
    values = finite(window)
    reference = count_baseline(base)
    if reference is None or not values or min(values) < 0.0:
        return None
    scored = score_count_window(reference, window, direction)
    if scored is None:
        return None
    return scored, sum(values), reference.rate * len(values)
