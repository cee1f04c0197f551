"""Impact accounting: the alarm's impact in absolute units (extra request-seconds for a latency
alarm, failed requests for an availability or error alarm) and each service's, so a service's
score is weighted by the share of the alarm's impact its own accounts for (its *coverage*): a
nearly idle node that moved a lot in relative terms does not outrank the busy one that carries
the failure, and a caller is a symptom of a callee in proportion to how much of its impact the
callee's accounts for.

:func:`impact` turns a series' excess into units that add up along a call chain: request-seconds
of extra latency (requests x the rise of the average), failed requests (requests x the drop of
availability) or extra error events."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Literal

from opx.agents.local.anchor import AlarmProfile, parse_time
from opx.agents.local.families import metric_family
from opx.agents.local.series_scores import SeriesScore

# What an impact measures: extra latency, failures from an availability share, or failure events.
ImpactKind = Literal["latency", "failure_rate", "failure_count"]
# Latency units an impact converts to seconds, so nodes reporting different units compare.
_SECONDS_PER_UNIT = {
    "seconds": 1.0,
    "second": 1.0,
    "s": 1.0,
    "milliseconds": 1e-3,
    "millisecond": 1e-3,
    "ms": 1e-3,
    "microseconds": 1e-6,
    "microsecond": 1e-6,
    "us": 1e-6,
}


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


# What the alarm's impact is measured in: extra request-seconds, or failed requests / events.
TIME, FAILURES = "time", "failures"
# A service that accounts for at least this share of the alarm's impact can be its origin on its
# own; a smaller anomaly is a contributor or a coincidence, not what the alarm reports.
MIN_COVERAGE = 0.5
_AVERAGE_STATS = frozenset({"average", "avg", "mean"})
_COUNT_STATS = frozenset({"sum", "samplecount", "count"})


def impact_dimension(score: SeriesScore) -> str | None:
    """TIME for a latency average, FAILURES for an availability average or an error count;
    None for what has no absolute impact (percentiles, saturation, traffic)."""
    family, stat = metric_family(score.metric), score.stat.strip().lower()
    if family == "LATENCY" and stat in _AVERAGE_STATS:
        return TIME
    if (family == "AVAILABILITY" and stat in _AVERAGE_STATS) or (
        family == "ERRORS" and stat in _COUNT_STATS
    ):
        return FAILURES
    return None


def node_impacts(
    series: Sequence[SeriesScore], dimension: str, anchor: AlarmProfile | None
) -> dict[str, float]:
    """Each service's impact in ``dimension`` (the largest of its measures'), where it has one:
    see :func:`impact`."""
    by_service: dict[str, list[SeriesScore]] = {}
    for score in series:
        by_service.setdefault(score.service, []).append(score)
    impacts: dict[str, float] = {}
    for service, scores in sorted(by_service.items()):
        requests = _request_counts(scores)
        found = [
            value
            for score in scores
            if impact_dimension(score) == dimension
            if (value := impact(score, _impact_kind(score), requests, anchor)) is not None
        ]
        if found:
            impacts[service] = max(found)
    return impacts


def _impact_kind(score: SeriesScore) -> ImpactKind:
    family = metric_family(score.metric)
    if family == "LATENCY":
        return "latency"
    return "failure_rate" if family == "AVAILABILITY" else "failure_count"


def _request_counts(scores: Sequence[SeriesScore]) -> dict[str, float] | None:
    """Requests per timestamp from the service's main request count (the busiest)."""
    counts = [
        s
        for s in scores
        if metric_family(s.metric) == "TRAFFIC" and s.stat.strip().lower() in _COUNT_STATS
    ]
    if not counts:
        return None
    main = min(counts, key=lambda s: (-s.baseline_median, s.series_id))
    return dict(main.points)


def alarm_dimension(score: SeriesScore) -> str | None:
    """What the alarm's harm is measured in: TIME for any latency statistic, FAILURES for
    availability or errors; None otherwise."""
    family = metric_family(score.metric)
    if family == "LATENCY":
        return TIME
    return FAILURES if family in ("AVAILABILITY", "ERRORS") else None


@dataclass(frozen=True)
class Accounting:
    """The alarm's impact (in ``dimension``) and each service's, and how much of the alarm's
    each accounts for (``coverage``; a service missing there cannot be judged)."""

    dimension: str | None = None
    alarm_impact: float | None = None
    impacts: Mapping[str, float] = field(default_factory=dict)
    coverage: Mapping[str, float] = field(default_factory=dict)


def account(series: Sequence[SeriesScore], anchor: AlarmProfile | None, alarm: str) -> Accounting:
    """The impact accounting of an anchored analysis (empty without an anchor)."""
    if anchor is None:
        return Accounting()
    alarm_series = next((s for s in series if s.series_id == anchor.series_id), None)
    dimension = None if alarm_series is None else alarm_dimension(alarm_series)
    if dimension is None:
        return Accounting()
    impacts = node_impacts(series, dimension, anchor)
    alarm_impact = impacts.get(alarm)
    return Accounting(dimension, alarm_impact, impacts, coverage(impacts, alarm_impact))


def coverage(impacts: Mapping[str, float], alarm_impact: float | None) -> dict[str, float]:
    """How much of the alarm's impact each service's accounts for (0..1); empty when the
    alarm's impact is unknown or not positive (nothing to account for)."""
    if alarm_impact is None or alarm_impact <= 0.0:
        return {}
    return {n: min(max(v / alarm_impact, 0.0), 1.0) for n, v in sorted(impacts.items())}
