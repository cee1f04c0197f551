"""The signal-intelligence analyst: scores metrics, error logs and traces of the services the
incident service depends on against their own baseline, then names the most downstream anomalous
service that accounts for the alarm as the likely origin, discounting callers whose anomaly their
callees explain.

Per service, each modality gives a 0..1 strength (0.5 at a robust z of 4): metrics the strongest
series, logs the most surging error template, traces the stronger of error origins and exclusive
latency. Metric series are scored by :mod:`opx.agents.local.anomaly`: levels by a sustained share
of their window's points, so a short blip is not a rival, and sparse counts by their total against
the baseline rate, so a few routine errors on a mostly-zero baseline are not either.
Modalities that are anomalous on their own combine by noisy-OR, so agreement raises the score.
Request-volume series are kept apart: load flows from callers to callees, so a traffic change
never explains a caller, and a service whose main anomaly is traffic is explained by its
anomalous callers.

The alarm is the anchor. Its series (the one a detection names, else one whose metric the alarm's
text mentions, else the incident service's most anomalous one) says when the alarm was active:
a series must be anomalous at those points, against its baseline and against its own level while
the alarm was quiet, so a condition that was already there (a drifted or shifted baseline) is no
cause. If no series is anomalous that way, the alarm's timing says nothing and every anomaly of
the window counts. The alarm's impact in absolute units (extra request-seconds for a latency alarm,
failed requests for an availability or error alarm) must be accounted for: a service's score is
weighted by the share of that impact its own accounts for (its *coverage*), so a nearly idle node
that moved a lot in relative terms does not outrank the busy one that carries the failure, and a
caller is a symptom of a callee in proportion to how much of its impact the callee's accounts for.

Confidence is ``adjusted score x (0.35 + 0.65 x separation) x corroboration x completeness``:
high only for a strong, clearly separated, corroborated candidate. Corroboration counts the
candidate's anomalous series, log templates and trace kinds, and two checks against the alarm:
its anomaly coincides with a clearly anomalous alarm, and it accounts for most of its impact.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from opx.agents.base import AgentContext
from opx.agents.local.anomaly import (
    Z_THRESHOLD,
    AlarmProfile,
    ImpactKind,
    SeriesScore,
    alarm_profile,
    impact,
    merge_series,
    resolve_direction,
    score_series,
    strength,
)
from opx.agents.local.logs import TemplateStat, cluster_errors, service_log_scores
from opx.agents.local.spans import (
    LatencyStat,
    OriginStat,
    origin_stats,
    parse_spans,
    trace_latency,
)
from opx.agents.local.topology import (
    Explained,
    Topology,
    descendants,
    discount_symptoms,
    propagation_path,
    rank_nodes,
)
from opx.agents.roster import SIGNAL
from opx.domain.errors import ErrorCode, OpxError
from opx.domain.hypothesis import (
    AlternativeCause,
    ConfidenceBasis,
    Evidence,
    Hypothesis,
    HypothesisStatus,
    Recommendation,
    RecommendationType,
    RootCause,
)
from opx.domain.incident import Incident
from opx.domain.tool_result import ToolResult, ToolStatus
from opx.tools.base import TelemetryTools
from opx.tools.paging import collect
from opx.tools.records import iso_z

DEFAULT_LOOKBACK = timedelta(hours=24)
MAX_PAGES = 2000
ANOMALOUS = strength(Z_THRESHOLD)
CONFIDENCE_CAP = 0.95
# Each missing data source (graph, metrics, logs, traces) costs this share of confidence.
GAP_PENALTY = 0.15
MAX_ALTERNATIVES = 4
MAX_FINDINGS = 20

# Checked in order; the first family whose word appears in the metric name wins.
_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ERRORS", ("error", "fault", "5xx", "4xx", "exception", "fail", "timeout")),
    ("AVAILABILITY", ("availability", "success", "healthy", "uptime")),
    ("LATENCY", ("latency", "duration", "responsetime", "response_time", "elapsed", "delay")),
    ("SATURATION", ("cpu", "memory", "mem", "throttl", "queue", "saturation", "disk",
                    "connection", "thread", "utiliz", "gc", "network", "iops")),
    ("TRAFFIC", ("request", "invocation", "throughput", "rps", "calls", "hits", "traffic",
                 "workload", "count")),
)


def metric_family(metric: str) -> str:
    """The category a metric name belongs to (ERRORS, LATENCY, …), or UNKNOWN."""
    name = metric.lower()
    for family, words in _FAMILIES:
        if any(word in name for word in words):
            return family
    return "UNKNOWN"


# -- reading telemetry -----------------------------------------------------------------------


@dataclass
class DataGaps:
    """What could not be read, so the hypothesis can say so and lower its confidence."""

    failed: set[str] = field(default_factory=set)
    truncated: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    partial: bool = False

    def read(self, source: str, call: Callable[[str | None], ToolResult]) -> dict[str, Any] | None:
        """Every page of one query, or None (and a note) when the tool failed."""
        result = collect(call, max_pages=MAX_PAGES)
        if result.status is ToolStatus.FAILED:
            self.failed.add(source)
            self.partial = True
            reason = "; ".join(e.message for e in result.errors) or "no reason given"
            self._note(f"{source} unavailable: {reason}")
            return None
        if result.status is ToolStatus.PARTIAL or result.truncated:
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


# -- the alarm and the impact it must be explained by --------------------------------------------


@dataclass(frozen=True)
class AlarmRef:
    """The series the incident's alarm watches, as far as the incident says: ``metric`` and
    ``stat`` when a detection names them, else ``text`` (title, rule ids, alarm names) in which
    a metric name of the service may appear."""

    service: str
    metric: str | None = None
    stat: str | None = None
    text: str = ""


def incident_alarm(incident: Incident) -> AlarmRef:
    """The alarm of an incident: the first detection naming a series of the incident service
    ("service|metric|stat" or separate service, metric and stat fields)."""
    texts = [incident.title or ""]
    for detection in incident.evidence_bundle.detections:
        texts.extend(str(detection.get(key) or "") for key in ("rule_id", "description"))
        named = _named_series(detection, incident.service)
        if named is not None:
            return AlarmRef(incident.service, named[0], named[1], " ".join(texts))
    return AlarmRef(incident.service, text=" ".join(texts))


def _named_series(detection: Mapping[str, Any], service: str) -> tuple[str, str | None] | None:
    metric = detection.get("metric")
    if not isinstance(metric, str) or not metric.strip():
        return None
    parts = [part.strip() for part in metric.split("|")]
    if len(parts) >= 2:
        owner, name, stat = parts[0], parts[1], parts[2] if len(parts) > 2 else None
    else:
        owner, name = str(detection.get("service") or service), parts[0]
        stat = str(detection["stat"]) if detection.get("stat") else None
    return (name, stat or None) if owner == service and name else None


def anchor_profile(
    alarm: AlarmRef,
    baseline: Mapping[str, Mapping[str, Any]],
    window: Mapping[str, Mapping[str, Any]],
    directions: Mapping[str, str],
) -> AlarmProfile | None:
    """The profile of the alarm's series: the one the alarm names, else one whose metric its
    text mentions, else the alarm service's most anomalous series other than request volume."""
    own = {
        sid: item for sid, item in sorted(window.items())
        if item.get("service") == alarm.service and sid in baseline
    }
    sid = _alarm_series(alarm, own, baseline, directions)
    if sid is None:
        return None
    item = own[sid]
    direction = resolve_direction(str(item.get("metric", "")), directions)
    return alarm_profile(
        sid, baseline[sid]["values"], item["timestamps"], item["values"], direction
    )


def _alarm_series(
    alarm: AlarmRef,
    own: Mapping[str, Mapping[str, Any]],
    baseline: Mapping[str, Mapping[str, Any]],
    directions: Mapping[str, str],
) -> str | None:
    # A text that mentions "requests" is not an alarm on request volume: only a detection that
    # names such a series makes it the alarm's.
    names = sorted(
        {name for item in own.values()
         if (name := str(item.get("metric", ""))) and metric_family(name) != "TRAFFIC"},
        key=lambda n: (-len(n), n),
    )
    wanted = alarm.metric or next((n for n in names if _mentions(alarm.text, n)), None)
    if wanted is not None:
        matching = [sid for sid, item in own.items()
                    if str(item.get("metric", "")).lower() == wanted.lower()]
        if matching:
            return _preferred_stat(matching, own, alarm.stat)
    scored = score_series([baseline[sid] for sid in own], list(own.values()), directions)
    faults = [s for s in scored if metric_family(s.metric) != "TRAFFIC"]
    return faults[0].series_id if faults else None


def _mentions(text: str, name: str) -> bool:
    pattern = rf"(?<![a-z0-9]){re.escape(name.lower())}(?![a-z0-9])"
    return re.search(pattern, text.lower()) is not None


def _preferred_stat(
    matching: Sequence[str], own: Mapping[str, Mapping[str, Any]], stat: str | None
) -> str:
    """The series with the named statistic, else an average, else the first by id."""
    def stat_of(sid: str) -> str:
        return str(own[sid].get("stat", "")).lower()

    if stat is not None:
        named = [sid for sid in matching if stat_of(sid) == stat.lower()]
        if named:
            return named[0]
    averages = [sid for sid in matching if stat_of(sid) in _AVERAGE_STATS]
    return (averages or list(matching))[0]


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
    see :func:`opx.agents.local.anomaly.impact`."""
    by_service: dict[str, list[SeriesScore]] = {}
    for score in series:
        by_service.setdefault(score.service, []).append(score)
    impacts: dict[str, float] = {}
    for service, scores in sorted(by_service.items()):
        requests = _request_counts(scores)
        found = [
            value for score in scores if impact_dimension(score) == dimension
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
        s for s in scores
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


def _metrics_call(
    tools: TelemetryTools, start: datetime, end: datetime, service: str | None
) -> Callable[[str | None], ToolResult]:
    return lambda token: tools.get_metrics(start, end, service=service, next_token=token)


def _coverage_seconds(
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


# -- per-service evidence ----------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceSignal:
    """Everything anomalous about one service, by modality."""

    service: str
    series: tuple[SeriesScore, ...] = ()
    log: TemplateStat | None = None
    log_templates: int = 0
    origin: OriginStat | None = None
    latency: LatencyStat | None = None

    @property
    def top_series(self) -> SeriesScore | None:
        return self.series[0] if self.series else None

    def top_of(self, traffic: bool) -> SeriesScore | None:
        return next((s for s in self.series if (metric_family(s.metric) == "TRAFFIC") == traffic),
                    None)

    @property
    def anomalous_series(self) -> int:
        return sum(1 for s in self.series if s.anomalous)

    def strengths(self) -> dict[str, float]:
        """0..1 per modality; request volume is kept apart from the other metrics because
        load flows from callers to callees, the opposite way of failures."""
        fault, traffic = self.top_of(traffic=False), self.top_of(traffic=True)
        trace = max(
            self.origin.strength if self.origin else 0.0,
            self.latency.strength if self.latency else 0.0,
        )
        return {
            "metrics": fault.strength if fault else 0.0,
            "traffic": traffic.strength if traffic else 0.0,
            "logs": self.log.strength if self.log else 0.0,
            "traces": trace,
        }

    @property
    def combined(self) -> float:
        """The fault score, or the traffic change if stronger. A traffic change does not count
        as an agreeing modality: a drop in requests and in availability are often one fact."""
        return max(self.fault, self.strengths()["traffic"])

    @property
    def fault(self) -> float:
        """The combined score without request volume: what can explain a caller's anomaly."""
        return _agree(v for k, v in self.strengths().items() if k != "traffic")

    @property
    def load_driven(self) -> bool:
        """True when a traffic change is the strongest anomaly of the service."""
        return self.strengths()["traffic"] > self.fault

    @property
    def modalities(self) -> int:
        """How many of metrics, logs and traces are anomalous on their own."""
        return sum(1 for k, v in self.strengths().items() if k != "traffic" and v >= ANOMALOUS)

    @property
    def support(self) -> int:
        """Independent anomalous observations: series, extra log templates and trace kinds."""
        traces = sum(1 for t in (self.origin, self.latency) if t is not None and t.anomalous)
        return self.anomalous_series + min(self.log_templates, 2) + traces

    def dominant(self) -> str:
        strengths = self.strengths()
        return max(("metrics", "traffic", "traces", "logs"), key=lambda m: strengths[m])

    def category(self) -> str:
        dominant = self.dominant()
        top = self.top_of(traffic=dominant == "traffic")
        if dominant in ("metrics", "traffic") and top is not None:
            return metric_family(top.metric)
        if dominant == "traces" and self.latency is not None and (
            self.origin is None or self.latency.z > self.origin.z
        ):
            return "LATENCY"
        return "ERRORS"


def _agree(values: Iterable[float]) -> float:
    """The strongest value, raised by noisy-OR over the values that are anomalous alone."""
    items = list(values)
    missing = 1.0
    for value in items:
        if value >= ANOMALOUS:
            missing *= 1.0 - value
    return max(*items, 1.0 - missing, 0.0)


def build_signals(
    series: Sequence[SeriesScore],
    templates: Sequence[TemplateStat],
    origins: Mapping[str, OriginStat],
    latency: Mapping[str, LatencyStat],
    scope: set[str] | None,
) -> dict[str, ServiceSignal]:
    """Per-service evidence for the services in ``scope`` (all when None)."""
    by_service: dict[str, list[SeriesScore]] = {}
    for score in series:
        by_service.setdefault(score.service, []).append(score)
    best_log = service_log_scores(templates)
    names = set(by_service) | set(best_log) | set(origins) | set(latency)
    if scope is not None:
        names &= scope
    return {
        name: ServiceSignal(
            service=name,
            series=tuple(by_service.get(name, ())),
            log=best_log.get(name),
            log_templates=sum(1 for t in templates if t.service == name and t.anomalous),
            origin=origins.get(name),
            latency=latency.get(name),
        )
        for name in sorted(names)
    }


def metric_evidence(series: Sequence[SeriesScore], traced: bool) -> list[SeriesScore]:
    """The series that count as a service's metric evidence. Where span latency could be
    measured (``traced``), latency series are left to the traces: a service's latency metric
    includes its callees' time and the hops to them, which spans separate, so metrics are kept
    for what only they show (saturation, availability, volume)."""
    if not traced:
        return list(series)
    return [s for s in series if metric_family(s.metric) != "LATENCY"]


# -- the analyst -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Observed:
    """What the analyst read and derived for one incident."""

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


class SignalAnalyst:
    """Anomalies in metrics, logs and traces, localised on the service graph."""

    agent_id = SIGNAL
    version = "local-signal/1.0"

    def __init__(self, lookback: timedelta = DEFAULT_LOOKBACK) -> None:
        if lookback <= timedelta(0):
            raise ValueError("lookback must be positive")
        self.lookback = lookback

    def analyze(self, ctx: AgentContext) -> Hypothesis:
        observed = self._observe(ctx.incident, ctx.tools)
        # Anomalous services are candidates; how much of the alarm they account for ranks them.
        candidates = [
            e for e in observed.ranking if observed.signals[e.node].combined >= ANOMALOUS
        ]
        if not candidates:
            return self._no_anomaly(ctx.incident, observed)
        return self._hypothesis(ctx.incident, observed, candidates)

    # -- reading --

    def _observe(self, incident: Incident, tools: TelemetryTools) -> _Observed:
        gaps = DataGaps()
        graph = read_graph(tools, gaps)
        scope, depth = _scope(graph, incident.service)
        window = (incident.window_start, incident.window_end)
        scored = read_anchored_scores(
            tools, _sorted(scope), window, self.lookback, gaps, incident_alarm(incident)
        )
        series = None if scored is None else scored.series
        anchor = None if scored is None else scored.anchor
        templates, log_events = self._logs(tools, window, gaps)
        origins, latency, spans = self._traces(tools, window, gaps)
        _check_usable(gaps, series, log_events, spans)
        signals = build_signals(
            metric_evidence(series or [], bool(latency)), templates, origins, latency, scope
        )
        accounting = account(series or [], anchor, incident.service)
        cover = accounting.coverage
        explained = discount_symptoms(
            graph,
            {name: s.combined * cover.get(name, 1.0) for name, s in signals.items()},
            faults={name: s.fault * cover.get(name, 1.0) for name, s in signals.items()},
            load_driven={name for name, s in signals.items() if s.load_driven},
            min_explaining=ANOMALOUS,
            impacts=accounting.impacts,
        )
        return _Observed(
            graph, scope, depth, series or [], templates, origins, latency, signals,
            rank_nodes(explained, depth, {n: s.support for n, s in signals.items()}),
            gaps, self.lookback, anchor, accounting,
        )

    def _logs(
        self, tools: TelemetryTools, window: tuple[datetime, datetime], gaps: DataGaps
    ) -> tuple[list[TemplateStat], int]:
        start, end = window
        base_start = start - self.lookback
        base = gaps.read("logs", lambda t: tools.search_logs(base_start, start, next_token=t))
        win = gaps.read("logs", lambda t: tools.search_logs(start, end, next_token=t))
        if base is None or win is None:
            return [], 0
        base_events = base.get("events") or []
        win_events = win.get("events") or []
        stats = cluster_errors(
            base_events,
            win_events,
            baseline_seconds=_coverage_seconds(
                base_events, "timestamp", (base_start, start), "logs" in gaps.truncated
            ),
            window_seconds=(end - start).total_seconds(),
        )
        return stats, len(base_events) + len(win_events)

    def _traces(
        self, tools: TelemetryTools, window: tuple[datetime, datetime], gaps: DataGaps
    ) -> tuple[dict[str, OriginStat], dict[str, LatencyStat], int]:
        start, end = window
        base_start = start - self.lookback
        base = gaps.read("traces", lambda t: tools.get_traces(base_start, start, next_token=t))
        win = gaps.read("traces", lambda t: tools.get_traces(start, end, next_token=t))
        if base is None or win is None:
            return {}, {}, 0
        base_items = base.get("spans") or []
        base_spans, win_spans = parse_spans(base_items), parse_spans(win.get("spans") or [])
        origins = origin_stats(
            base_spans,
            win_spans,
            baseline_seconds=_coverage_seconds(
                base_items, "start", (base_start, start), "traces" in gaps.truncated
            ),
            window_seconds=(end - start).total_seconds(),
        )
        return origins, trace_latency(base_spans, win_spans), len(base_spans) + len(win_spans)

    # -- answers --

    def _no_anomaly(self, incident: Incident, observed: _Observed) -> Hypothesis:
        checked = len(observed.signals)
        description = (
            f"No significant anomaly found: none of the {checked} services checked around "
            f"{incident.service} shows a metric, error-log or trace anomaly reaching a robust z "
            f"of {Z_THRESHOLD:g} between {iso_z(incident.window_start)} and "
            f"{iso_z(incident.window_end)}."
        )
        if observed.gaps.failed:
            description += f" Not checked: {', '.join(sorted(observed.gaps.failed))}."
        advice = Recommendation(
            type=RecommendationType.INVESTIGATION,
            description=(
                f"Check whether the alarm on {incident.service} reflects a real user impact: its "
                "telemetry and that of its dependencies look like their own baseline, so the "
                "alarm threshold or the data feeding it may be worth reviewing."
            ),
        )
        return Hypothesis(
            agent_id=self.agent_id,
            agent_version=self.version,
            status=_status(observed.gaps),
            root_cause=None,
            description=description,
            confidence=0.0,
            confidence_basis=[ConfidenceBasis.DATA],
            recommendations=[advice],
            findings=_findings(observed),
        )

    def _hypothesis(
        self, incident: Incident, observed: _Observed, candidates: list[Explained]
    ) -> Hypothesis:
        top = candidates[0]
        signal = observed.signals[top.node]
        checks = _confirmations(observed, top.node, incident.service)
        confidence = _confidence(top, candidates[1:], signal, observed.gaps, checks)
        alternatives = [
            AlternativeCause(
                service=c.node,
                category=observed.signals[c.node].category(),
                confidence=round(min(confidence * c.adjusted / top.adjusted, confidence), 4)
                if top.adjusted > 0 else 0.0,
            )
            for c in candidates[1 : 1 + MAX_ALTERNATIVES]
        ]
        path = _path(observed.graph, top.node, incident.service)
        return Hypothesis(
            agent_id=self.agent_id,
            agent_version=self.version,
            status=_status(observed.gaps),
            root_cause=RootCause(service=top.node, category=signal.category()),
            description=_describe(
                incident, top, signal, candidates, path, _accounted(observed, top.node, incident)
            ),
            confidence=round(confidence, 4),
            confidence_basis=[ConfidenceBasis.DATA],
            alternatives=alternatives,
            evidence=_evidence(incident, observed, signal, candidates),
            contradicting_evidence=_contradicting(observed, candidates),
            recommendations=_recommendations(incident, signal, path),
            findings=_findings(observed),
        )


def _sorted(scope: set[str] | None) -> list[str] | None:
    return None if scope is None else sorted(scope)


def _scope(graph: Topology | None, service: str) -> tuple[set[str] | None, dict[str, int]]:
    """The incident service and everything it calls, with hop distances; None (every service)
    when there is no graph or the graph does not know the incident service."""
    if graph is None or service not in graph:
        return None, {}
    depth = descendants(graph, service)
    return set(depth), depth


def _check_usable(
    gaps: DataGaps, series: list[SeriesScore] | None, log_events: int, spans: int
) -> None:
    if series or log_events or spans:
        return
    if {"metrics", "logs", "traces"} <= gaps.failed:
        raise OpxError(
            ErrorCode.DATA_SOURCE_UNAVAILABLE,
            "metrics, logs and traces are all unavailable: " + "; ".join(gaps.notes),
        )
    raise OpxError(
        ErrorCode.INSUFFICIENT_DATA,
        "no metric series with both baseline and window points, and no logs or traces",
    )


def _status(gaps: DataGaps) -> HypothesisStatus:
    return HypothesisStatus.PARTIAL if gaps.partial else HypothesisStatus.SUCCESS


def _corroboration(signal: ServiceSignal, confirmations: int = 0) -> float:
    """1 observation: 0.55; 2: 0.8; 3 or more (or two modalities and more): 1.0. The alarm's own
    checks (``confirmations``: the anomaly coincides with a clearly anomalous alarm; it accounts
    for most of the alarm's impact) count as observations too."""
    count = signal.support + max(signal.modalities - 1, 0) + confirmations
    if count >= 3:
        return 1.0
    return 0.8 if count == 2 else 0.55


def _confirmations(observed: _Observed, service: str, alarmed: str) -> int:
    """How many of the alarm's checks the service passes: its anomaly coincides with the alarm's
    while the alarm itself was clearly anomalous, and it accounts for at least half of the
    alarm's impact (MIN_COVERAGE). The alarm's own service passes both by construction: they
    confirm nothing."""
    if service == alarmed:
        return 0
    anchor, shares = observed.anchor, observed.accounting.coverage
    coincides = anchor is not None and anchor.peak >= Z_THRESHOLD
    accounts = shares.get(service, 0.0) >= MIN_COVERAGE
    return int(coincides) + int(accounts)


def _confidence(
    top: Explained,
    others: Sequence[Explained],
    signal: ServiceSignal,
    gaps: DataGaps,
    confirmations: int = 0,
) -> float:
    runner_up = others[0].adjusted if others else 0.0
    separation = max(top.adjusted - runner_up, 0.0) / top.adjusted if top.adjusted > 0 else 0.0
    value = (
        top.adjusted * (0.35 + 0.65 * separation) * _corroboration(signal, confirmations)
        * gaps.completeness
    )
    return min(max(value, 0.0), CONFIDENCE_CAP)


def _path(graph: Topology | None, origin: str, incident: str) -> list[str] | None:
    if graph is None or origin not in graph or incident not in graph:
        return None
    return propagation_path(graph, origin, incident)


def _headline(signal: ServiceSignal) -> str:
    """One sentence on the strongest evidence of a service."""
    dominant = signal.dominant()
    top = signal.top_of(traffic=dominant == "traffic")
    if dominant in ("metrics", "traffic") and top is not None:
        return top.summary()
    if dominant == "traces" and signal.origin is not None and (
        signal.latency is None or signal.origin.z >= signal.latency.z
    ):
        return (
            f"it is the deepest failing span in {signal.origin.window_count} traces "
            f"({signal.origin.expected:.1f} expected)"
        )
    if dominant == "traces" and signal.latency is not None:
        return (
            f"its own span time rose to {signal.latency.window_quantile_ms:.4g} ms (p75) from a "
            f"baseline median of {signal.latency.baseline_median_ms:.4g} ms"
        )
    if signal.log is not None:
        kind = "new" if signal.log.new else "surging"
        return f"a {kind} error log template appeared {signal.log.window_count} times"
    return "it is anomalous"


def _describe(
    incident: Incident,
    top: Explained,
    signal: ServiceSignal,
    candidates: Sequence[Explained],
    path: list[str] | None,
    accounted: str = "",
) -> str:
    text = f"{top.node} is the most likely origin: {_headline(signal)}."
    if accounted:
        text += f" {accounted}."
    symptoms = [c.node for c in candidates if c.explained_by is not None and c.node != top.node]
    if symptoms:
        text += (
            f" {len(symptoms)} other anomalous service(s) are explained as symptoms of anomalous "
            f"callees ({', '.join(symptoms[:5])})."
        )
    if path and len(path) > 1:
        text += f" Propagation path to {incident.service}: {' -> '.join(path)}."
    return text


_IMPACT_UNITS = {TIME: "extra request-seconds", FAILURES: "failed requests"}


def _accounted(observed: _Observed, service: str, incident: Incident) -> str:
    """One phrase on how much of the alarm's impact ``service`` accounts for ("" if unknown)."""
    accounting = observed.accounting
    share = accounting.coverage.get(service)
    if share is None or service == incident.service or accounting.dimension is None:
        return ""
    units = _IMPACT_UNITS[accounting.dimension]
    return (
        f"Its {units} while the alarm was active ({accounting.impacts[service]:.4g}) account for "
        f"{share:.0%} of {incident.service}'s ({accounting.alarm_impact or 0.0:.4g})"
    )


def _alarm_evidence(observed: _Observed, service: str, incident: Incident) -> Evidence | None:
    """How the candidate's anomaly lines up with the alarm's, when the analysis was anchored."""
    anchor = observed.anchor
    if anchor is None:
        return None
    active = sum(anchor.active)
    summary = (
        f"the alarm series {anchor.series_id} was active at {active} of its {len(anchor.active)} "
        f"window points (peak robust z {anchor.peak:.1f}); anomalies are scored at those points "
        "against both the baseline and each series' level while the alarm was quiet"
    )
    accounted = _accounted(observed, service, incident)
    if accounted:
        summary += f"; {service}: {accounted[0].lower()}{accounted[1:]}"
    return Evidence(
        tool="get_metrics",
        query=f"alarm series {anchor.series_id}, window=[{iso_z(incident.window_start)}, "
              f"{iso_z(incident.window_end)})",
        record_ids=[anchor.series_id],
        summary=summary,
    )


def _series_evidence(score: SeriesScore, incident: Incident, lookback: timedelta) -> Evidence:
    query = (
        f"service={score.service} metric={score.metric} stat={score.stat} "
        f"window=[{iso_z(incident.window_start)}, {iso_z(incident.window_end)}) "
        f"baseline={lookback.total_seconds() / 3600:g}h before"
    )
    summary = (
        f"{score.service}: {score.summary()}, bad direction {score.direction}; window extreme "
        f"{score.window_extreme:.4g}"
        + (f" at {score.extreme_at}" if score.extreme_at else "")
    )
    return Evidence(tool="get_metrics", query=query, record_ids=[score.series_id], summary=summary)


def _log_evidence(stat: TemplateStat) -> Evidence:
    kind = "new" if stat.new else "surging"
    return Evidence(
        tool="search_logs",
        query=f"service={stat.service} error events, template {stat.template_id}",
        record_ids=[stat.template_id, *stat.event_ids],
        summary=(
            f"{kind} error template in {stat.service}: {stat.window_count} events in the window "
            f"vs {stat.expected:.1f} expected (z {stat.z:.1f}): {stat.template[:160]}"
        ),
    )


def _trace_evidence(signal: ServiceSignal) -> list[Evidence]:
    items: list[Evidence] = []
    origin, latency = signal.origin, signal.latency
    if origin is not None and origin.anomalous:
        items.append(Evidence(
            tool="get_traces",
            query=f"spans in the window, error origin service={origin.service}",
            record_ids=list(origin.trace_ids),
            summary=(
                f"{origin.service} is the deepest failing span in {origin.window_count} traces "
                f"({origin.expected:.1f} expected from the baseline, z {origin.z:.1f})"
            ),
        ))
    if latency is not None and latency.anomalous:
        items.append(Evidence(
            tool="get_traces",
            query=f"spans in the window, exclusive time of service={latency.service}",
            record_ids=list(latency.trace_ids),
            summary=(
                f"{latency.service} own span time p75 {latency.window_quantile_ms:.4g} ms vs "
                f"baseline median {latency.baseline_median_ms:.4g} ms (z {latency.z:.1f})"
            ),
        ))
    return items


def _signal_evidence(
    signal: ServiceSignal, incident: Incident, lookback: timedelta
) -> list[Evidence]:
    items = [
        _series_evidence(s, incident, lookback) for s in signal.series[:3] if s.anomalous
    ]
    if signal.log is not None and signal.log.anomalous:
        items.append(_log_evidence(signal.log))
    items.extend(_trace_evidence(signal))
    return items


def _evidence(
    incident: Incident,
    observed: _Observed,
    signal: ServiceSignal,
    candidates: Sequence[Explained],
) -> list[Evidence]:
    items = _signal_evidence(signal, incident, observed.lookback)
    anchored = _alarm_evidence(observed, signal.service, incident)
    if anchored is not None:
        items.append(anchored)
    symptom = observed.signals.get(incident.service)
    if symptom is not None and symptom.service != signal.service and symptom.combined >= ANOMALOUS:
        items.append(Evidence(
            tool="get_service_graph",
            query=f"callees of {incident.service}",
            record_ids=[incident.service, signal.service],
            summary=(
                f"{incident.service} is anomalous too ({_headline(symptom)}), and it depends on "
                f"{signal.service}: its anomaly is treated as a symptom"
            ),
        ))
    return items


def _contradicting(observed: _Observed, candidates: Sequence[Explained]) -> list[Evidence]:
    """Comparable candidates (and missing sources) that weaken the top one."""
    items: list[Evidence] = []
    top = candidates[0]
    for other in candidates[1:3]:
        if other.adjusted >= 0.5 * top.adjusted:
            sig = observed.signals[other.node]
            items.append(Evidence(
                tool="get_metrics" if sig.top_series else "get_traces",
                query=f"service={other.node}",
                record_ids=[sig.top_series.series_id] if sig.top_series else [],
                summary=(
                    f"{other.node} is comparably anomalous ({_headline(sig)}) and not explained "
                    "by its callees"
                ),
            ))
    for note in observed.gaps.notes:
        items.append(Evidence(tool="data_gaps", summary=note))
    return items


def _recommendations(
    incident: Incident, signal: ServiceSignal, path: list[str] | None
) -> list[Recommendation]:
    items: list[Recommendation] = []
    top = signal.top_series
    start = iso_z(incident.window_start)
    if top is not None and top.anomalous:
        items.append(_advice(
            f"Review {top.metric} ({top.stat}) of {signal.service} from {start} on, and what "
            f"changed in {signal.service} around that time."
        ))
    if signal.log is not None and signal.log.anomalous:
        items.append(_advice(
            f"Read the {signal.service} error logs matching template {signal.log.template_id} "
            f"(\"{signal.log.template[:200]}\") to find the failing operation."
        ))
    if signal.origin is not None and signal.origin.anomalous:
        traces = ", ".join(signal.origin.trace_ids[:3])
        items.append(_advice(
            f"Inspect traces {traces}, where {signal.service} is the deepest failing span."
        ))
    if path and len(path) > 1:
        items.append(_advice(
            f"Check whether the symptoms of {incident.service} follow those of "
            f"{signal.service} along {' -> '.join(path)} before acting on the callers."
        ))
    return items


def _advice(text: str) -> Recommendation:
    return Recommendation(type=RecommendationType.INVESTIGATION, description=text[:600])


def _findings(observed: _Observed) -> dict[str, Any]:
    anomalies = [s.to_finding() for s in observed.series if s.anomalous][:MAX_FINDINGS]
    templates = [t.to_finding() for t in observed.templates if t.anomalous][:MAX_FINDINGS]
    traces = sorted(
        [o.to_finding() for o in observed.origins.values() if o.anomalous]
        + [lat.to_finding() for lat in observed.latency.values() if lat.anomalous],
        key=lambda f: (-float(f["z"]), str(f["service"]), str(f["kind"])),
    )[:MAX_FINDINGS]
    return {
        "anomalies": anomalies,
        "log_templates": templates,
        "trace_findings": traces,
        "ranking": [_rank_entry(observed, e) for e in observed.ranking[:10]],
        "scope": {
            "services": len(observed.signals),
            "graph": observed.graph is not None,
            "incident_in_graph": observed.scope is not None,
        },
        "series_scored": len(observed.series),
        "z_threshold": Z_THRESHOLD,
        "alarm": _alarm_finding(observed),
        "data_gaps": list(observed.gaps.notes),
    }


def _alarm_finding(observed: _Observed) -> dict[str, Any]:
    anchor, accounting = observed.anchor, observed.accounting
    return {
        "anchored": anchor is not None,
        "series": None if anchor is None else anchor.series_id,
        "active_points": None if anchor is None else sum(anchor.active),
        "window_points": None if anchor is None else len(anchor.active),
        "peak_z": None if anchor is None else round(anchor.peak, 3),
        "impact_dimension": accounting.dimension,
        "impact": None if accounting.alarm_impact is None else round(accounting.alarm_impact, 6),
    }


def _rank_entry(observed: _Observed, entry: Explained) -> dict[str, Any]:
    signal = observed.signals[entry.node]
    return {
        "service": entry.node,
        "score": round(entry.score, 4),
        "adjusted": round(entry.adjusted, 4),
        "explained_by": entry.explained_by,
        "depth": observed.depth.get(entry.node),
        "category": signal.category(),
        "top_series": signal.top_series.series_id if signal.top_series else None,
        "modalities": {k: round(v, 4) for k, v in signal.strengths().items()},
        "impact": _rounded(observed.accounting.impacts.get(entry.node)),
        "coverage": _rounded(observed.accounting.coverage.get(entry.node)),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
