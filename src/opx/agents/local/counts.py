"""The count test of a window, for sparse event counts (stat Sum/SampleCount, or integer,
non-negative baselines of count-like names such as errors or requests, with a baseline median
below SPARSE_COUNT events per point): the window's total is compared with the total the baseline
rate predicts, under an over-dispersed Poisson model. A mostly-zero baseline has no usable
spread, so two errors in half an hour against a rate of one per half hour must not look like a
new regime, while forty must. The same persistence applies: the k - 1 most extreme window points
are left out of the total. Dense counts keep the level test: their robust spread is well defined,
and a single rate would misjudge baselines with quiet periods or drift that the median and MAD
shrug off."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

from opx.agents.local.robust import (
    MAD_TO_SIGMA,
    MIN_BASELINE_POINTS,
    TAIL_QUANTILE,
    Z_CAP,
    Z_THRESHOLD,
    Direction,
    finite,
)
from opx.agents.local.windows import WindowScore, persistence_rank, usable

# A count whose baseline median is below this many events per point is tested as a count: its
# median/MAD summary is too coarse (at a mostly-zero baseline it has no spread at all), while
# from about ten events on Poisson noise is near normal and the level test measures it.
SPARSE_COUNT = 10.0

# Statistics that are totals of events per period, whatever the metric is called.
_COUNT_STATS = frozenset({"sum", "samplecount", "count"})
# Statistics of a gauge (a level sampled per period) or of a distribution (percentiles and
# CloudWatch's other extended statistics): such a series is never a count, even when its name
# says "count" (an Average of HealthyHostCount is a level).
_GAUGE_STATS = frozenset({"average", "avg", "mean", "minimum", "min", "maximum", "max"})
_GAUGE_STAT_PREFIXES = ("p", "tm", "wm", "tc", "ts", "pr")
# Names of event counts, for series whose statistic does not say.
_COUNT_WORDS = (
    "error",
    "fault",
    "throttl",
    "request",
    "count",
    "exception",
    "invocation",
    "5xx",
    "4xx",
)


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
        rest = stat[len(prefix) :]
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


def count_z(observed: float, points: int, baseline: CountBaseline, direction: Direction) -> float:
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
    indexed = usable(window)
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
