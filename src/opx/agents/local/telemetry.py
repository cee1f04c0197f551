"""Reading the telemetry an analyst needs through the tools: every page of a query, with what
could not be read (or was cut short) kept as data gaps; the service graph; metric series scored
against their baseline, anchored on the alarm when it can be found."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from opx.agents.local.alarm import AlarmRef, anchor_profile
from opx.agents.local.anchor import AlarmProfile
from opx.agents.local.families import metric_family
from opx.agents.local.series_scores import SeriesScore, merge_series, score_series
from opx.agents.local.topology import Topology
from opx.domain.tool_result import ToolResult, ToolStatus
from opx.tools.base import TelemetryTools
from opx.tools.paging import collect

DEFAULT_LOOKBACK = timedelta(hours=24)
MAX_PAGES = 2000
# Each missing data source (graph, metrics, logs, traces) costs this share of confidence.
GAP_PENALTY = 0.15


@dataclass
class DataGaps:
    """What could not be read, so the hypothesis can say so and lower its confidence."""

    failed: set[str] = field(default_factory=set)
    truncated: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    partial: bool = False

    def read(
        self,
        source: str,
        call: Callable[[str | None], ToolResult],
        intact: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> dict[str, Any] | None:
        """Every page of one query, or None (and a note) when the tool failed. ``intact`` says
        whether a truncated answer still holds all the caller reads (e.g. only the tails of
        overlong messages were cut): every page was read and nothing used was lost, so it is
        no gap."""
        result = collect(call, max_pages=MAX_PAGES)
        if result.status is ToolStatus.FAILED:
            self.failed.add(source)
            self.partial = True
            reason = "; ".join(e.message for e in result.errors) or "no reason given"
            self._note(f"{source} unavailable: {reason}")
            return None
        whole = (
            result.status is ToolStatus.SUCCESS
            and result.pages < MAX_PAGES
            and intact is not None
            and intact(result.data)
        )
        if (result.status is ToolStatus.PARTIAL or result.truncated) and not whole:
            self.partial = True
            self.truncated.add(source)
            self._note(f"{source}: the answer was partial or truncated")
        return result.data

    def _note(self, text: str) -> None:
        # One query per service can fail the same way many times: say it once.
        if text not in self.notes:
            self.notes.append(text)

    @property
    def completeness(self) -> float:
        return max(0.0, 1.0 - GAP_PENALTY * len(self.failed))


def read_graph(tools: TelemetryTools, gaps: DataGaps) -> Topology | None:
    """The service graph, or None if it is unavailable or empty."""
    data = gaps.read("graph", lambda token: tools.get_service_graph(next_token=token))
    if data is None:
        return None
    graph = Topology.from_payload(data)
    return None if graph.empty else graph


def metric_directions(tools: TelemetryTools) -> dict[str, str]:
    """The source's metric directions when it exposes them (not part of the protocol)."""
    given = getattr(tools, "metric_directions", None)
    if isinstance(given, Mapping):
        return {str(k): str(v) for k, v in given.items()}
    return {}


def read_metric_scores(
    tools: TelemetryTools,
    services: Sequence[str] | None,
    window: tuple[datetime, datetime],
    lookback: timedelta,
    gaps: DataGaps,
) -> list[SeriesScore] | None:
    """Every series of ``services`` (all services when None) scored against its baseline over
    the whole window; None when every metrics query failed."""
    payloads = _read_payloads(tools, services, window, lookback, gaps)
    if payloads is None:
        return None
    return score_series(*payloads, metric_directions(tools))


@dataclass(frozen=True)
class MetricScores:
    """Scored series and the alarm profile that anchored them (None when none was usable)."""

    series: list[SeriesScore]
    anchor: AlarmProfile | None


def read_anchored_scores(
    tools: TelemetryTools,
    services: Sequence[str] | None,
    window: tuple[datetime, datetime],
    lookback: timedelta,
    gaps: DataGaps,
    alarm: AlarmRef,
) -> MetricScores | None:
    """Like :func:`read_metric_scores`, but anchored on the alarm's series when it can be found
    and it moved: a series must also be anomalous where the alarm was active, against its
    baseline and against its own level while the alarm was quiet. When no series other than
    request volume is anomalous that way, the alarm's timing says nothing (it may be too weak to
    tell active from quiet points): the series are scored over the whole window, unanchored."""
    payloads = _read_payloads(tools, services, window, lookback, gaps)
    if payloads is None:
        return None
    directions = metric_directions(tools)
    base_items, win_items = (merge_series(part) for part in payloads)
    baseline, current = list(base_items.values()), list(win_items.values())
    anchor = anchor_profile(alarm, base_items, win_items, directions)
    if anchor is not None:
        series = score_series(baseline, current, directions, anchor)
        if any(s.anomalous and metric_family(s.metric) != "TRAFFIC" for s in series):
            return MetricScores(series, anchor)
    return MetricScores(score_series(baseline, current, directions), None)


def _read_payloads(
    tools: TelemetryTools,
    services: Sequence[str] | None,
    window: tuple[datetime, datetime],
    lookback: timedelta,
    gaps: DataGaps,
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]] | None:
    """Baseline and window series payloads of ``services``; None when every query failed."""
    start, end = window
    baseline: list[Mapping[str, Any]] = []
    current: list[Mapping[str, Any]] = []
    answered = False
    for service in [None] if services is None else sorted(services):
        base = gaps.read("metrics", _metrics_call(tools, start - lookback, start, service))
        win = gaps.read("metrics", _metrics_call(tools, start, end, service))
        if base is None or win is None:
            continue
        answered = True
        baseline.extend(base.get("series") or [])
        current.extend(win.get("series") or [])
    return (baseline, current) if answered else None


def _metrics_call(
    tools: TelemetryTools, start: datetime, end: datetime, service: str | None
) -> Callable[[str | None], ToolResult]:
    return lambda token: tools.get_metrics(start, end, service=service, next_token=token)


def coverage_seconds(
    items: Sequence[Mapping[str, Any]], key: str, span: tuple[datetime, datetime], cut: bool
) -> float:
    """How much of ``span`` the (time-ordered) items really cover: from the first item to the
    end of the span, or to the last item when the answer was cut short. A baseline shorter than
    the lookback must not look like a quiet one."""
    start, end = span
    if not items:
        return 0.0
    try:
        first = _clamp(datetime.fromisoformat(str(items[0][key])), span)
        last = _clamp(datetime.fromisoformat(str(items[-1][key])), span) if cut else end
    except (KeyError, ValueError):
        return (end - start).total_seconds()
    return (last - first).total_seconds()


def _clamp(moment: datetime, span: tuple[datetime, datetime]) -> datetime:
    return min(max(moment, span[0]), span[1])
