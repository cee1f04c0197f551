"""The level test of a window: each point's directional robust z against the baseline, and the
window's score the k-th largest of them with k = max(2, ceil(n / 6)) for n window points. An
alarm-worthy fault is sustained: it must hold for a sixth of the window (5 of 30 one-minute
points), so a short blip does not dominate, while a window of a few coarse points (six 5-minute
rows) still needs only two bad points."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opx.agents.local.robust import Baseline, Direction, directional_z, finite

# The window score is the k-th most anomalous point, k = max(MIN_PERSISTENT, ceil(n / share)).
PERSISTENCE_SHARE = 6
MIN_PERSISTENT = 2


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


def usable(window: Sequence[Any]) -> list[tuple[int, float]]:
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
    indexed = usable(window)
    if not indexed:
        return None
    zs = sorted(((directional_z(v, baseline, direction), -i, v) for i, v in indexed), reverse=True)
    k = max(persistence_rank(len(zs)) if rank is None else rank, 1)
    robust = zs[k - 1][0] if k <= len(zs) else 0.0
    _, neg_index, extreme = zs[0]
    return WindowScore(z=robust, extreme=extreme, extreme_index=-neg_index, points=len(indexed))
