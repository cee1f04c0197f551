"""The signal-intelligence analyst: scores metrics, error logs and traces of the services the
incident service depends on against their own baseline, then names the most downstream anomalous
service as the likely origin, discounting callers whose anomaly their callees explain.

Per service, each modality gives a 0..1 strength (0.5 at a robust z of 4): metrics the strongest
series, logs the most surging error template, traces the stronger of error origins and exclusive
latency. Metric series are scored by :mod:`opx.agents.local.anomaly`: levels by a sustained share
of their window's points, so a short blip is not a rival, and sparse counts by their total against
the baseline rate, so a few routine errors on a mostly-zero baseline are not either.
Modalities that are anomalous on their own combine by noisy-OR, so agreement raises the score.
Request-volume series are kept apart: load flows from callers to callees, so a traffic change
never explains a caller, and a service whose main anomaly is traffic is explained by its
anomalous callers. Confidence is ``adjusted score x (0.35 + 0.65 x separation) x corroboration x
completeness``: high only for a strong, clearly separated, corroborated candidate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from opx.agents.base import AgentContext
from opx.agents.local.anomaly import Z_THRESHOLD, SeriesScore, score_series, strength
from opx.agents.local.logs import TemplateStat, cluster_errors, service_log_scores
from opx.agents.local.spans import (
    LatencyStat,
    OriginStat,
    latency_stats,
    origin_stats,
    parse_spans,
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
    """Every series of ``services`` (all services when None) scored against its baseline;
    None when every metrics query failed."""
    start, end = window
    directions = metric_directions(tools)
    scores: list[SeriesScore] = []
    answered = False
    for service in [None] if services is None else sorted(services):
        base = gaps.read("metrics", _metrics_call(tools, start - lookback, start, service))
        win = gaps.read("metrics", _metrics_call(tools, start, end, service))
        if base is None or win is None:
            continue
        answered = True
        scores.extend(score_series(base.get("series") or [], win.get("series") or [], directions))
    scores.sort(key=lambda s: (-s.z, s.series_id))
    return scores if answered else None


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
        candidates = [e for e in observed.ranking if e.score >= ANOMALOUS]
        if not candidates:
            return self._no_anomaly(ctx.incident, observed)
        return self._hypothesis(ctx.incident, observed, candidates)

    # -- reading --

    def _observe(self, incident: Incident, tools: TelemetryTools) -> _Observed:
        gaps = DataGaps()
        graph = read_graph(tools, gaps)
        scope, depth = _scope(graph, incident.service)
        window = (incident.window_start, incident.window_end)
        series = read_metric_scores(tools, _sorted(scope), window, self.lookback, gaps)
        templates, log_events = self._logs(tools, window, gaps)
        origins, latency, spans = self._traces(tools, window, gaps)
        _check_usable(gaps, series, log_events, spans)
        signals = build_signals(series or [], templates, origins, latency, scope)
        explained = discount_symptoms(
            graph,
            {name: s.combined for name, s in signals.items()},
            faults={name: s.fault for name, s in signals.items()},
            load_driven={name for name, s in signals.items() if s.load_driven},
            min_explaining=ANOMALOUS,
        )
        return _Observed(
            graph, scope, depth, series or [], templates, origins, latency, signals,
            rank_nodes(explained, depth, {n: s.support for n, s in signals.items()}),
            gaps, self.lookback,
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
        return origins, latency_stats(base_spans, win_spans), len(base_spans) + len(win_spans)

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
        confidence = _confidence(top, candidates[1:], signal, observed.gaps)
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
            description=_describe(incident, top, signal, candidates, path),
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


def _corroboration(signal: ServiceSignal) -> float:
    """1 observation: 0.55; 2: 0.8; 3 or more (or two modalities and more): 1.0."""
    count = signal.support + max(signal.modalities - 1, 0)
    if count >= 3:
        return 1.0
    return 0.8 if count == 2 else 0.55


def _confidence(
    top: Explained, others: Sequence[Explained], signal: ServiceSignal, gaps: DataGaps
) -> float:
    runner_up = others[0].adjusted if others else 0.0
    separation = max(top.adjusted - runner_up, 0.0) / top.adjusted if top.adjusted > 0 else 0.0
    value = (
        top.adjusted * (0.35 + 0.65 * separation) * _corroboration(signal) * gaps.completeness
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
) -> str:
    text = f"{top.node} is the most likely origin: {_headline(signal)}."
    symptoms = [c.node for c in candidates if c.explained_by is not None and c.node != top.node]
    if symptoms:
        text += (
            f" {len(symptoms)} other anomalous service(s) are explained as symptoms of anomalous "
            f"callees ({', '.join(symptoms[:5])})."
        )
    if path and len(path) > 1:
        text += f" Propagation path to {incident.service}: {' -> '.join(path)}."
    return text


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
        "data_gaps": list(observed.gaps.notes),
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
    }
