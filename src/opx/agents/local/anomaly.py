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

The alarm anchors both tests when its own series is known (:class:`AlarmProfile`): a cause is
bad while the alarm is bad. A series must then be anomalous over the window (as above) and at
the points where the alarm series was at least half-way to anomalous, both against its baseline
and against its own level at the points where the alarm was quiet; the least surprising of these
is its score. A series that was just as bad while the alarm was quiet (a drifted or shifted
baseline, a pre-existing condition) explains nothing.

Persistence counts the periods the window has for a service (the usable points of its densest
series), not the points one series happens to have: a latency average reported in one period of
five, because only one request came, cannot show a sustained fault.

:func:`impact` turns a series' excess into absolute units that add up along a call chain:
request-seconds of extra latency (requests x the rise of the average), failed requests (requests
x the drop of availability) or extra error events. A cause must account for the alarm's impact,
which relative scores such as z cannot tell: a nearly idle node can move a lot in relative terms.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import pairwise
from statistics import median
from typing import Any, Literal

Direction = Literal["up", "down", "both"]
DIRECTIONS: tuple[Direction, ...] = ("up", "down", "both")
# How a series was scored: the robust z of its points, or its total against the baseline rate.
ScoreTest = Literal["level", "count"]
# What an impact measures: extra latency, failures from an availability share, or failure events.
ImpactKind = Literal["latency", "failure_rate", "failure_count"]

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
# An alarm series that never left its baseline by one robust spread in the window has no timing
# to anchor on: its profile would be noise.
MIN_ANCHOR_Z = 1.0
# Latency units an impact converts to seconds, so nodes reporting different units compare.
_SECONDS_PER_UNIT = {
    "seconds": 1.0, "second": 1.0, "s": 1.0,
    "milliseconds": 1e-3, "millisecond": 1e-3, "ms": 1e-3,
    "microseconds": 1e-6, "microsecond": 1e-6, "us": 1e-6,
}

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
    """The score of a window: the robust z, the most extreme point and how many points;
    ``anchored`` when only the alarm's active points were scored, ``quiet`` the series' level
    at the alarm's quiet points (None without any)."""

    z: float
    extreme: float
    extreme_index: int
    points: int
    anchored: bool = False
    quiet: float | None = None


def persistence_rank(points: int) -> int:
    """Which of a window's point scores is the window's score (1 = the largest): a fault must
    hold for max(2, ceil(n / 6)) of its n points; never more than the points there are."""
    if points <= 0:
        return 1
    return min(points, max(MIN_PERSISTENT, math.ceil(points / PERSISTENCE_SHARE)))


def _usable(window: Sequence[Any]) -> list[tuple[int, float]]:
    return [(i, float(v)) for i, v in enumerate(window) if finite([v])]


def share_rank(points: int) -> int:
    """The looser rank used within the alarm's active points: a sixth of them, at least one.
    Persistence itself is judged over the whole window (:func:`persistence_rank`)."""
    return max(1, math.ceil(points / PERSISTENCE_SHARE))


def score_window(
    baseline: Baseline, window: Sequence[Any], direction: Direction, rank: int | None = None
) -> WindowScore | None:
    """The k-th largest directional z over the window's usable points (k = ``rank``, by default
    from :func:`persistence_rank`: the second-largest for up to 12 points, the only z for one
    point; 0 when there are fewer than k points); None when the window has no usable point."""
    indexed = _usable(window)
    if not indexed:
        return None
    zs = sorted(
        ((directional_z(v, baseline, direction), -i, v) for i, v in indexed), reverse=True
    )
    k = max(persistence_rank(len(zs)) if rank is None else rank, 1)
    robust = zs[k - 1][0] if k <= len(zs) else 0.0
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
    baseline: CountBaseline, window: Sequence[Any], direction: Direction, rank: int | None = None
) -> WindowScore | None:
    """The count test of a window: its total without its k - 1 most extreme points the bad way
    (k = ``rank``, by default from :func:`persistence_rank`; z 0 when there are fewer than k
    points), against the baseline rate; None when the window has no usable point."""
    indexed = _usable(window)
    if not indexed:
        return None
    drop = max(persistence_rank(len(indexed)) if rank is None else rank, 1) - 1
    values = sorted(v for _, v in indexed)
    kept = len(values) - drop
    if kept <= 0:
        high = low = 0.0
    else:
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


# -- the alarm as anchor -------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 timestamp (a naive one taken as UTC), or None when it is not one."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AlarmProfile:
    """When the alarm's own series was bad in the window: its points' ``times`` in order,
    whether each was ``active`` (a directional z of at least min(Z_THRESHOLD, peak) / 2) and
    its largest directional z, ``peak``. A point of another series belongs to the alarm point
    whose period holds it; the last period ends ``until``."""

    series_id: str
    times: tuple[datetime, ...]
    active: tuple[bool, ...]
    peak: float
    until: datetime

    def state(self, moment: datetime | None) -> bool | None:
        """True while the alarm was active, False while quiet, None outside its points."""
        if moment is None or not self.times or moment >= self.until:
            return None
        index = bisect_right(self.times, moment) - 1
        return None if index < 0 else self.active[index]


def alarm_profile(
    series_id: str,
    baseline: Sequence[Any],
    stamps: Sequence[Any],
    window: Sequence[Any],
    direction: Direction,
) -> AlarmProfile | None:
    """The profile of the alarm series; None without a usable baseline or window, or when the
    series never moved one robust spread the bad way (its timing would be noise)."""
    reference = robust_baseline(baseline)
    if reference is None:
        return None
    points = sorted(
        (moment, directional_z(float(value), reference, direction))
        for moment, value in zip((parse_time(s) for s in stamps), window, strict=False)
        if moment is not None and finite([value])
    )
    if not points:
        return None
    peak = max(z for _, z in points)
    if peak < MIN_ANCHOR_Z:
        return None
    cut = min(Z_THRESHOLD, peak) / 2.0
    times = tuple(moment for moment, _ in points)
    return AlarmProfile(
        series_id, times, tuple(z >= cut for _, z in points), peak, _period_end(times)
    )


def _period_end(times: Sequence[datetime]) -> datetime:
    """Where the last point's period ends: one typical (median) gap after it."""
    if len(times) < 2:
        return datetime.max.replace(tzinfo=UTC)
    gaps = sorted(later - earlier for earlier, later in pairwise(times))
    return times[-1] + gaps[len(gaps) // 2]


def _split(
    window: Sequence[Any], times: Sequence[datetime | None], anchor: AlarmProfile
) -> tuple[list[tuple[int, float]], list[float]]:
    """The usable points while the alarm was active (with their index) and while it was quiet."""
    active: list[tuple[int, float]] = []
    quiet: list[float] = []
    for index, value in _usable(window):
        state = anchor.state(times[index] if index < len(times) else None)
        if state is True:
            active.append((index, value))
        elif state is False:
            quiet.append(value)
    return active, quiet


def score_anchored_window(
    baseline: Baseline,
    window: Sequence[Any],
    times: Sequence[datetime | None],
    direction: Direction,
    anchor: AlarmProfile,
    rank: int | None = None,
) -> WindowScore | None:
    """The level test anchored on the alarm: the least surprising of the window's persistent
    score (:func:`score_window`) and the score of the points where the alarm was active (rank
    from :func:`share_rank`) against the baseline and against the baseline moved to the median
    of the points where the alarm was quiet; z 0 without an active point. None when the window
    has no usable point. ``rank`` is the whole window's persistence rank (see
    :func:`score_window`)."""
    whole = score_window(baseline, window, direction, rank)
    if whole is None:
        return None
    active, quiet = _split(window, times, anchor)
    level = median(quiet) if quiet else None
    values = [v for _, v in active]
    within = share_rank(len(values))
    scored = score_window(baseline, values, direction, within)
    if scored is None:
        return replace(whole, z=0.0, anchored=True, quiet=level)
    z = min(whole.z, scored.z)
    if level is not None:
        local = score_window(replace(baseline, median=level), values, direction, within)
        z = min(z, local.z if local is not None else z)
    return WindowScore(
        z, scored.extreme, active[scored.extreme_index][0], whole.points, anchored=True,
        quiet=level,
    )


def score_anchored_count(
    reference: CountBaseline,
    window: Sequence[Any],
    times: Sequence[datetime | None],
    direction: Direction,
    anchor: AlarmProfile,
    rank: int | None = None,
) -> WindowScore | None:
    """The count test anchored on the alarm, as :func:`score_anchored_window`: the least
    surprising of the window's test and the test of the points where the alarm was active
    against the baseline rate and against the mean of the points where it was quiet."""
    whole = score_count_window(reference, window, direction, rank)
    if whole is None:
        return None
    active, quiet = _split(window, times, anchor)
    level = sum(quiet) / len(quiet) if quiet else None
    values = [v for _, v in active]
    within = share_rank(len(values))
    scored = score_count_window(reference, values, direction, within)
    if scored is None:
        return replace(whole, z=0.0, anchored=True, quiet=level)
    z = min(whole.z, scored.z)
    if level is not None:
        local = score_count_window(replace(reference, rate=level), values, direction, within)
        z = min(z, local.z if local is not None else z)
    return WindowScore(
        z, scored.extreme, active[scored.extreme_index][0], whole.points, anchored=True,
        quiet=level,
    )


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
            if self.quiet_level is not None else ""
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
        periods[service] = max(periods.get(service, 0), len(_usable(item.get("values") or [])))
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
        if baseline.median < SPARSE_COUNT else None
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
        points=tuple((str(stamps[i]), v) for i, v in _usable(item["values"]) if i < len(stamps)),
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
    active, _ = _split(window, times, anchor)
    total = sum(v for _, v in active)
    return anchored, total, reference.rate * len(active)


# -- impact in absolute units ------------------------------------------------------------------


def impact(
    score: SeriesScore,
    kind: ImpactKind,
    requests: Mapping[str, float] | None = None,
    anchor: AlarmProfile | None = None,
) -> float | None:
    """What the series' excess amounts to in absolute units that add up along a call chain:
    request-seconds for "latency" (requests x (average - baseline median), converted to seconds
    when the unit names one), failed requests for "failure_rate" (requests x the drop of an
    availability share, a percentage when its unit or level says so) and extra events for
    "failure_count" (count - baseline median). ``requests`` maps timestamps to request counts.
    With an anchor, the sum over the points where the alarm was active, each less the median
    excess of its quiet points when positive (what was already there explains nothing); without
    one, the sum over the window. None when the kind needs request counts and there are none."""
    excess = _point_excess(score, kind, requests)
    if excess is None:
        return None
    if anchor is None:
        return math.fsum(value for _, value in excess)
    active: list[float] = []
    quiet: list[float] = []
    for stamp, value in excess:
        state = anchor.state(parse_time(stamp))
        if state is True:
            active.append(value)
        elif state is False:
            quiet.append(value)
    floor = max(median(quiet), 0.0) if quiet else 0.0
    return math.fsum(value - floor for value in active)


def _point_excess(
    score: SeriesScore, kind: ImpactKind, requests: Mapping[str, float] | None
) -> list[tuple[str, float]] | None:
    if kind == "failure_count":
        return [(stamp, value - score.baseline_median) for stamp, value in score.points]
    if requests is None:
        return None
    unit = score.unit.strip().lower()
    if kind == "latency":
        factor = _SECONDS_PER_UNIT.get(unit, 1.0)
        per_point = [(t, (v - score.baseline_median) * factor) for t, v in score.points]
    else:
        share = 100.0 if unit in ("percent", "%") or score.baseline_median > 1.0 else 1.0
        per_point = [(t, (score.baseline_median - v) / share) for t, v in score.points]
    found = [(t, requests[t] * excess) for t, excess in per_point if t in requests]
    return found or None
