"""What the signal analyst read and derived for one incident."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from opx.agents.local.accounting import Accounting
from opx.agents.local.anchor import AlarmProfile
from opx.agents.local.logs import TemplateStat
from opx.agents.local.series_scores import SeriesScore
from opx.agents.local.service_signal import ServiceSignal
from opx.agents.local.spans import LatencyStat, OriginStat
from opx.agents.local.telemetry import DataGaps
from opx.agents.local.topology import Explained, Topology


@dataclass(frozen=True)
class Observed:
    """What the signal analyst read and derived for one incident."""

    graph: Topology | None
    scope: set[str] | None
    depth: dict[str, int]
    series: list[SeriesScore]
    templates: list[TemplateStat]
    origins: dict[str, OriginStat]
    latency: dict[str, LatencyStat]
    signals: dict[str, ServiceSignal]
    ranking: list[Explained]
    gaps: DataGaps
    lookback: timedelta
    anchor: AlarmProfile | None
    accounting: Accounting
