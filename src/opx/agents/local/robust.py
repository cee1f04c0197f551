"""Robust statistics of a series against its own baseline: which way is bad for a metric, the
baseline's median and robust spread, the directional robust z of a value, the 0..1 strength of a
z, and the surge z of an event count under an over-dispersed Poisson model."""

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
    "unhealthy",
    "latency",
    "duration",
    "error",
    "fault",
    "throttl",
    "cpu",
    "memory",
    "5xx",
    "4xx",
    "timeout",
    "queue",
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
    return [float(v) for v in values if (type(v) is float and math.isfinite(v)) or type(v) is int]


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


# A series, log template or trace kind is anomalous from this strength on (z = Z_THRESHOLD).
ANOMALOUS = strength(Z_THRESHOLD)
