"""The signal-intelligence analyst: scores metrics, error logs and traces of the services the
incident service depends on against their own baseline, then names the most downstream anomalous
service that accounts for the alarm as the likely origin, discounting callers whose anomaly their
callees explain.

Per service, each modality gives a 0..1 strength (0.5 at a robust z of 4): metrics the strongest
series, logs the most surging error template, traces the stronger of error origins and exclusive
latency. Metric series are scored by :mod:`opx.agents.local.series_scores`: levels by a sustained
share of their window's points, so a short blip is not a rival, and sparse counts by their total
against the baseline rate, so a few routine errors on a mostly-zero baseline are not either.
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

from collections.abc import Sequence
from datetime import datetime, timedelta

from opx.agents.base import AgentContext
from opx.agents.local.accounting import MIN_COVERAGE, account
from opx.agents.local.alarm import incident_alarm
from opx.agents.local.log_rates import operation_stats, split_tied
from opx.agents.local.logs import TemplateStat, cluster_errors, reads_whole
from opx.agents.local.observation import Observed
from opx.agents.local.robust import ANOMALOUS, Z_THRESHOLD
from opx.agents.local.series_scores import SeriesScore
from opx.agents.local.service_signal import ServiceSignal, build_signals, metric_evidence
from opx.agents.local.signal_report import (
    accounted,
    contradicting_evidence,
    describe,
    findings,
    recommendations,
    supporting_evidence,
)
from opx.agents.local.spans import (
    LatencyStat,
    OriginStat,
    SpanView,
    origin_stats,
    parse_spans,
    trace_latency,
)
from opx.agents.local.telemetry import (
    DEFAULT_LOOKBACK,
    DataGaps,
    coverage_seconds,
    read_anchored_scores,
    read_graph,
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
    Hypothesis,
    HypothesisStatus,
    Recommendation,
    RecommendationType,
    RootCause,
)
from opx.domain.incident import Incident
from opx.tools.base import TelemetryTools
from opx.tools.records import iso_z

CONFIDENCE_CAP = 0.95
MAX_ALTERNATIVES = 4


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
        candidates = [e for e in observed.ranking if observed.signals[e.node].combined >= ANOMALOUS]
        if not candidates:
            return self._no_anomaly(ctx.incident, observed)
        return self._hypothesis(ctx.incident, observed, candidates)

    # -- reading --

    def _observe(self, incident: Incident, tools: TelemetryTools) -> Observed:
        gaps = DataGaps()
        graph = read_graph(tools, gaps)
        scope, depth = _scope(graph, incident.service)
        window = (incident.window_start, incident.window_end)
        scored = read_anchored_scores(
            tools, _sorted(scope), window, self.lookback, gaps, incident_alarm(incident)
        )
        series = None if scored is None else scored.series
        anchor = None if scored is None else scored.anchor
        origins, latency, spans = self._traces(tools, window, gaps)
        templates, log_events = self._logs(tools, window, gaps, spans)
        _check_usable(gaps, series, log_events, len(spans[0]) + len(spans[1]))
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
            own={name: s.own * cover.get(name, 1.0) for name, s in signals.items()},
        )
        return Observed(
            graph,
            scope,
            depth,
            series or [],
            templates,
            origins,
            latency,
            signals,
            rank_nodes(explained, depth, {n: s.support for n, s in signals.items()}),
            gaps,
            self.lookback,
            anchor,
            accounting,
        )

    def _logs(
        self,
        tools: TelemetryTools,
        window: tuple[datetime, datetime],
        gaps: DataGaps,
        spans: tuple[list[SpanView], list[SpanView]],
    ) -> tuple[list[TemplateStat], int]:
        """Error templates and quieted operations: lines tied to a span are counted per call of
        its operation, the others per second (:mod:`opx.agents.local.log_rates`)."""
        start, end = window
        base_start = start - self.lookback
        base = gaps.read(
            "logs", lambda t: tools.search_logs(base_start, start, next_token=t), reads_whole
        )
        win = gaps.read("logs", lambda t: tools.search_logs(start, end, next_token=t), reads_whole)
        if base is None or win is None:
            return [], 0
        base_events = base.get("events") or []
        win_events = win.get("events") or []
        base_tied, base_loose = split_tied(base_events, spans[0])
        win_tied, win_loose = split_tied(win_events, spans[1])
        stats = cluster_errors(
            base_loose,
            win_loose,
            baseline_seconds=coverage_seconds(
                base_events, "timestamp", (base_start, start), "logs" in gaps.truncated
            ),
            window_seconds=(end - start).total_seconds(),
        )
        stats += operation_stats((base_tied, spans[0]), (win_tied, spans[1]))
        stats.sort(key=lambda s: (-s.z, s.service, s.template_id))
        return stats, len(base_events) + len(win_events)

    def _traces(
        self, tools: TelemetryTools, window: tuple[datetime, datetime], gaps: DataGaps
    ) -> tuple[
        dict[str, OriginStat], dict[str, LatencyStat], tuple[list[SpanView], list[SpanView]]
    ]:
        """Error origins, latency per service, and the baseline and window spans."""
        start, end = window
        base_start = start - self.lookback
        base = gaps.read("traces", lambda t: tools.get_traces(base_start, start, next_token=t))
        win = gaps.read("traces", lambda t: tools.get_traces(start, end, next_token=t))
        if base is None or win is None:
            return {}, {}, ([], [])
        base_items = base.get("spans") or []
        base_spans, win_spans = parse_spans(base_items), parse_spans(win.get("spans") or [])
        origins = origin_stats(
            base_spans,
            win_spans,
            baseline_seconds=coverage_seconds(
                base_items, "start", (base_start, start), "traces" in gaps.truncated
            ),
            window_seconds=(end - start).total_seconds(),
        )
        return origins, trace_latency(base_spans, win_spans), (base_spans, win_spans)

    # -- answers --

    def _no_anomaly(self, incident: Incident, observed: Observed) -> Hypothesis:
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
            findings=findings(observed),
        )

    def _hypothesis(
        self, incident: Incident, observed: Observed, candidates: list[Explained]
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
                if top.adjusted > 0
                else 0.0,
            )
            for c in candidates[1 : 1 + MAX_ALTERNATIVES]
        ]
        path = _path(observed.graph, top.node, incident.service)
        return Hypothesis(
            agent_id=self.agent_id,
            agent_version=self.version,
            status=_status(observed.gaps),
            root_cause=RootCause(service=top.node, category=signal.category()),
            description=describe(
                incident, top, signal, candidates, path, accounted(observed, top.node, incident)
            ),
            confidence=round(confidence, 4),
            confidence_basis=[ConfidenceBasis.DATA],
            alternatives=alternatives,
            evidence=supporting_evidence(incident, observed, signal, candidates),
            contradicting_evidence=contradicting_evidence(observed, candidates),
            recommendations=recommendations(incident, signal, path),
            findings=findings(observed),
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


def _confirmations(observed: Observed, service: str, alarmed: str) -> int:
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
        top.adjusted
        * (0.35 + 0.65 * separation)
        * _corroboration(signal, confirmations)
        * gaps.completeness
    )
    return min(max(value, 0.0), CONFIDENCE_CAP)


def _path(graph: Topology | None, origin: str, incident: str) -> list[str] | None:
    if graph is None or origin not in graph or incident not in graph:
        return None
    return propagation_path(graph, origin, incident)
