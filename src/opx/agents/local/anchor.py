"""The alarm as anchor of the level and count tests, when its own series is known
(:class:`AlarmProfile`): a cause is bad while the alarm is bad. A series must then be anomalous
over the window and at the points where the alarm series was at least half-way to anomalous,
both against its baseline and against its own level at the points where the alarm was quiet;
the least surprising of these is its score. A series that was just as bad while the alarm was
quiet (a drifted or shifted baseline, a pre-existing condition) explains nothing."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import pairwise
from statistics import median
from typing import Any

from opx.agents.local.counts import CountBaseline, score_count_window
from opx.agents.local.robust import (
    Z_THRESHOLD,
    Baseline,
    Direction,
    directional_z,
    finite,
    robust_baseline,
)
from opx.agents.local.windows import WindowScore, score_window, share_rank, usable

# An alarm series that never left its baseline by one robust spread in the window has no timing
# to anchor on: its profile would be noise.
MIN_ANCHOR_Z = 1.0


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


def split_points(
    window: Sequence[Any], times: Sequence[datetime | None], anchor: AlarmProfile
) -> tuple[list[tuple[int, float]], list[float]]:
    """The usable points while the alarm was active (with their index) and while it was quiet."""
    active: list[tuple[int, float]] = []
    quiet: list[float] = []
    for index, value in usable(window):
        state = anchor.state(times[index] if index < len(times) else None)
        if state is True:
            active.append((index, value))
        elif state is False:
            quiet.append(value)
    return active, quiet


# A test of some window points at a persistence rank, against one fixed reference.
Scorer = Callable[[Sequence[Any], int | None], WindowScore | None]


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

    def against(reference: Baseline) -> Scorer:
        return lambda values, within: score_window(reference, values, direction, within)

    return _anchored(
        against(baseline),
        lambda level: against(replace(baseline, median=level)),
        median,
        window,
        times,
        anchor,
        rank,
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

    def against(counts: CountBaseline) -> Scorer:
        return lambda values, within: score_count_window(counts, values, direction, within)

    return _anchored(
        against(reference),
        lambda level: against(replace(reference, rate=level)),
        lambda quiet: sum(quiet) / len(quiet),
        window,
        times,
        anchor,
        rank,
    )


def _anchored(
    score: Scorer,
    rebased: Callable[[float], Scorer],
    level_of: Callable[[list[float]], float],
    window: Sequence[Any],
    times: Sequence[datetime | None],
    anchor: AlarmProfile,
    rank: int | None,
) -> WindowScore | None:
    """The anchoring both tests share: ``score`` against the baseline, ``rebased`` against the
    quiet points' level (``level_of`` them)."""
    whole = score(window, rank)
    if whole is None:
        return None
    active, quiet = split_points(window, times, anchor)
    level = level_of(quiet) if quiet else None
    values = [v for _, v in active]
    within = share_rank(len(values))
    scored = score(values, within)
    if scored is None:
        return replace(whole, z=0.0, anchored=True, quiet=level)
    z = min(whole.z, scored.z)
    if level is not None:
        local = rebased(level)(values, within)
        z = min(z, local.z if local is not None else z)
    return WindowScore(
        z,
        scored.extreme,
        active[scored.extreme_index][0],
        whole.points,
        anchored=True,
        quiet=level,
    )
