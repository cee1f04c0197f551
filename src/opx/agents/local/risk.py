"""The risk-blast-radius analyst: from the service graph and each service's metric anomaly,
estimates which services a failure reaches, how it propagates to the incident service, how wide
the scope is and how many requests it touches, and names the most downstream anomalous service
that can account for the alarm.

Anomalies are read as the signal analyst reads them (:func:`read_anchored_scores`): anchored on
the alarm's series, so a condition that was already there while the alarm was quiet is not an
anomaly of this incident. A possible origin must account for at least MIN_COVERAGE of the alarm's
impact in absolute units (extra request-seconds, failed requests), so a nearly idle node that
failed a lot in relative terms neither becomes the origin nor hides the busy one above it.

Scope is INFRASTRUCTURE when the suspected origin is a shared dependency by graph structure: at
least SHARED_CALLERS distinct services call it directly, or at least two do and at least
SHARED_SHARE of the other services depend on it transitively. A change in request volume shows
that a service is affected but cannot make it the origin (load flows from callers to callees,
failures the other way). The root-cause confidence is capped at CONFIDENCE_CAP: graph position is
indirect evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opx.agents.base import AgentContext
from opx.agents.local.accounting import MIN_COVERAGE, account
from opx.agents.local.alarm import incident_alarm
from opx.agents.local.families import is_client_side, metric_family
from opx.agents.local.robust import ANOMALOUS, Z_THRESHOLD, finite
from opx.agents.local.series_scores import SeriesScore
from opx.agents.local.telemetry import DEFAULT_LOOKBACK, DataGaps, read_anchored_scores, read_graph
from opx.agents.local.topology import (
    Topology,
    ancestors,
    fan_in,
    most_downstream,
    propagation_path,
)
from opx.agents.roster import RISK
from opx.domain.errors import ErrorCode, OpxError
from opx.domain.hypothesis import (
    AlternativeCause,
    ConfidenceBasis,
    Evidence,
    Hypothesis,
    HypothesisStatus,
    Recommendation,
    RecommendationType,
    Risk,
    RootCause,
)
from opx.domain.incident import Incident
from opx.domain.tool_result import ToolResult
from opx.tools.base import TelemetryTools
from opx.tools.records import iso_z

CONFIDENCE_CAP = 0.6
# Without a usable graph position the opinion rests on anomaly strength alone.
NO_STRUCTURE_FACTOR = 0.5
SHARED_CALLERS = 3
SHARED_SHARE = 0.5
MAX_PATHS = 5
MAX_ALTERNATIVES = 4
_REQUEST_WORDS = ("request", "invocation", "throughput", "calls", "hits", "traffic")
_COUNT_STATS = ("sum", "samplecount", "count")
_LEVELS = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
_SEVERITY_LEVEL = {"SEV1": 3, "SEV2": 2, "SEV3": 1, "SEV4": 0}


@dataclass(frozen=True)
class BlastRadius:
    """Which services a failure reaches and how it travels to the incident service."""

    origin: str | None
    ends: tuple[str, ...]
    affected: tuple[str, ...]
    paths: tuple[tuple[str, ...], ...]
    scope: str
    callers: int
    dependents: int


def service_strengths(scores: Sequence[SeriesScore]) -> dict[str, SeriesScore]:
    """Each service's most anomalous series (scores sorted by descending z)."""
    best: dict[str, SeriesScore] = {}
    for score in scores:
        best.setdefault(score.service, score)
    return best


def is_shared(graph: Topology, node: str) -> bool:
    """True when ``node`` is a shared dependency by the structure of the graph alone."""
    callers, dependents = fan_in(graph, node)
    others = max(len(graph.nodes) - 1, 1)
    return callers >= SHARED_CALLERS or (callers >= 2 and dependents / others >= SHARED_SHARE)


def blast_radius(
    graph: Topology | None,
    incident: str,
    anomalous: Mapping[str, float],
    loaded: Collection[str] = (),
    coverage: Mapping[str, float] | None = None,
) -> BlastRadius:
    """The blast radius of the anomalous services as seen from ``incident``; ``loaded``
    services only saw their traffic change: they are affected but cannot be the origin. Only a
    service that accounts for at least MIN_COVERAGE of the alarm's impact (``coverage``, 1 where
    unknown) can be an origin; the origins (the most downstream of those) rank by anomaly x
    coverage."""
    located = graph is not None and incident in graph
    shares = coverage or {}
    weight = {
        n: v * shares.get(n, 1.0)
        for n, v in anomalous.items()
        if shares.get(n, 1.0) >= MIN_COVERAGE
    }
    ends = tuple(most_downstream(graph, incident, weight)) if graph and located else ()
    if not ends and not located:
        ends = tuple(sorted(weight, key=lambda n: (-weight[n], n)))[:1]
    origin = ends[0] if ends else None
    affected = {incident, *anomalous, *loaded}
    if graph is not None:
        for node in anomalous:
            if node in graph:
                affected.update(ancestors(graph, node))
    paths: list[tuple[str, ...]] = []
    if graph is not None and located:
        for end in ends[:MAX_PATHS]:
            path = propagation_path(graph, end, incident)
            if path:
                paths.append(tuple(path))
    callers, dependents = (0, 0)
    if graph is not None and origin is not None and origin in graph:
        callers, dependents = fan_in(graph, origin)
    scope = _scope(graph, origin, affected)
    return BlastRadius(
        origin, ends, tuple(sorted(affected)), tuple(paths), scope, callers, dependents
    )


def _scope(graph: Topology | None, origin: str | None, affected: set[str]) -> str:
    if graph is not None and origin is not None and origin in graph and is_shared(graph, origin):
        return "INFRASTRUCTURE"
    return "MULTI_SERVICE" if len(affected) > 1 else "SINGLE_SERVICE"


def window_requests(series: Sequence[Mapping[str, Any]]) -> float | None:
    """Requests in a ``get_traffic`` answer: the sum of the request-count series' points, or
    None when no request series is a count (an average rate is not a number of requests)."""
    total, found = 0.0, False
    for item in series:
        metric = str(item.get("metric", "")).lower()
        stat = str(item.get("stat", "")).lower()
        if stat in _COUNT_STATS and any(word in metric for word in _REQUEST_WORDS):
            total += sum(finite(item.get("values") or []))
            found = True
    return total if found else None


@dataclass(frozen=True)
class _State:
    """What the analyst read and derived for one incident."""

    graph: Topology | None
    best: Mapping[str, SeriesScore]
    anomalous: Mapping[str, float]
    support: Mapping[str, int]
    loaded: set[str]
    radius: BlastRadius
    requests: Mapping[str, float]
    gaps: DataGaps
    coverage: Mapping[str, float]
    coincident: bool

    def weight(self, service: str) -> float:
        """Anomaly x the share of the alarm's impact the service accounts for."""
        return self.anomalous[service] * self.coverage.get(service, 1.0)


class RiskAnalyst:
    """Blast radius and propagation over the service graph."""

    agent_id = RISK
    version = "local-risk/1.0"

    def __init__(self, lookback: timedelta = DEFAULT_LOOKBACK) -> None:
        if lookback <= timedelta(0):
            raise ValueError("lookback must be positive")
        self.lookback = lookback

    def analyze(self, ctx: AgentContext) -> Hypothesis:
        incident, tools = ctx.incident, ctx.tools
        gaps = DataGaps()
        graph = read_graph(tools, gaps)
        window = (incident.window_start, incident.window_end)
        services = None if graph is None else list(graph.nodes)
        read = read_anchored_scores(
            tools, services, window, self.lookback, gaps, incident_alarm(incident)
        )
        scores = None if read is None else read.series
        if scores is None:
            raise OpxError(
                ErrorCode.DATA_SOURCE_UNAVAILABLE,
                "metrics are unavailable, so no service can be judged anomalous: "
                + "; ".join(gaps.notes),
            )
        if not scores:
            raise OpxError(
                ErrorCode.INSUFFICIENT_DATA,
                "no metric series has both baseline and window points",
            )
        # Request volume follows load down the graph, not failures up it: it shows who is
        # affected, but it cannot make a service the origin.
        # Nor can the time a service waits on its callees (a client-side latency).
        faults = [
            s
            for s in scores
            if metric_family(s.metric) != "TRAFFIC" and not is_client_side(s.metric)
        ]
        best = service_strengths(faults)
        anomalous = {n: s.strength for n, s in best.items() if s.strength >= ANOMALOUS}
        support = {n: sum(1 for s in faults if s.service == n and s.anomalous) for n in anomalous}
        loaded = {s.service for s in scores if s.anomalous} - set(anomalous)
        anchor = None if read is None else read.anchor
        cover = account(scores, anchor, incident.service).coverage
        radius = blast_radius(graph, incident.service, anomalous, loaded, cover)
        requests = self._requests(tools, radius, window, gaps)
        coincident = anchor is not None and anchor.peak >= Z_THRESHOLD
        state = _State(
            graph, best, anomalous, support, loaded, radius, requests, gaps, cover, coincident
        )
        return _hypothesis(self, incident, state)

    def _requests(
        self,
        tools: TelemetryTools,
        radius: BlastRadius,
        window: tuple[datetime, datetime],
        gaps: DataGaps,
    ) -> dict[str, float]:
        start, end = window
        found: dict[str, float] = {}
        for service in radius.affected:
            data = gaps.read("traffic", _traffic_call(tools, service, start, end))
            count = None if data is None else window_requests(data.get("series") or [])
            if count is not None:
                found[service] = count
        return found


def _traffic_call(
    tools: TelemetryTools, service: str, start: datetime, end: datetime
) -> Callable[[str | None], ToolResult]:
    return lambda token: tools.get_traffic(service, start, end, next_token=token)


def _confidence(state: _State, located: bool, alarmed: str) -> float:
    """Anomaly x coverage of the origin, separated from the other possible origins, corroborated
    by its series and the alarm's checks, and always below CONFIDENCE_CAP."""
    radius = state.radius
    if radius.origin is None:
        return 0.0
    first = state.weight(radius.origin)
    second = state.weight(radius.ends[1]) if len(radius.ends) > 1 else 0.0
    separation = max(first - second, 0.0) / first if first > 0 else 0.0
    value = (
        CONFIDENCE_CAP
        * first
        * (0.5 + 0.5 * separation)
        * _corroboration(state, alarmed)
        * state.gaps.completeness
    )
    if not located:
        value *= NO_STRUCTURE_FACTOR
    return min(value, CONFIDENCE_CAP)


def _corroboration(state: _State, alarmed: str) -> float:
    """1 observation: 0.6; 2: 0.8; 3 or more: 1.0. Observations are the origin's anomalous series
    and, for an origin other than the alarm's own service, the alarm's checks: its anomaly
    coincides with a clearly anomalous alarm, and it accounts for at least MIN_COVERAGE of the
    alarm's impact."""
    origin = state.radius.origin
    if origin is None:
        return 0.0
    count = state.support.get(origin, 0)
    if origin != alarmed:
        count += int(state.coincident) + int(state.coverage.get(origin, 0.0) >= MIN_COVERAGE)
    if count >= 3:
        return 1.0
    return 0.8 if count == 2 else 0.6


def _assessment(
    incident: Incident, radius: BlastRadius, graph: Topology | None, anomalous: Mapping[str, float]
) -> dict[str, Any]:
    level = _SEVERITY_LEVEL.get(incident.severity.value, 1)
    total = len(graph.nodes) if graph is not None else len(radius.affected)
    share = len(radius.affected) / total if total else 0.0
    if radius.scope == "INFRASTRUCTURE" or share >= 0.5:
        level += 1
    if not anomalous:
        level -= 1
    level = min(max(level, 0), len(_LEVELS) - 1)
    severity = _LEVELS[level]
    urgency = "IMMEDIATE" if level >= 2 and anomalous else ("HIGH" if level >= 1 else "NORMAL")
    return {
        "severity": severity,
        "urgency": urgency,
        "affected_share": round(share, 4),
        "basis": (
            f"incident {incident.severity.value}, scope {radius.scope}, "
            f"{len(radius.affected)} of {total} services affected"
        ),
    }


def _priorities(radius: BlastRadius, incident: Incident) -> list[dict[str, Any]]:
    """Origin first (contain it), then the services on the main path towards the incident."""
    order: list[str] = []
    if radius.origin is not None:
        order.append(radius.origin)
    if radius.paths:
        order.extend(n for n in radius.paths[0] if n not in order)
    order.extend(n for n in radius.affected if n not in order)
    items = []
    for rank, service in enumerate(order, start=1):
        if service == radius.origin:
            reason = "suspected origin: restoring it relieves every caller"
        elif service == incident.service:
            reason = "incident service: user-facing impact"
        else:
            reason = "propagates the failure towards the incident service"
        items.append({"rank": rank, "service": service, "reason": reason})
    return items


def _recommendations(radius: BlastRadius, incident: Incident) -> list[Recommendation]:
    origin = radius.origin
    if origin is None:
        return [
            Recommendation(
                type=RecommendationType.INVESTIGATION,
                description=(
                    f"No anomalous dependency of {incident.service} was found; consider checking "
                    f"{incident.service} itself and whether the alarm reflects user impact."
                ),
            )
        ]
    items: list[Recommendation] = []
    path = radius.paths[0] if radius.paths else ()
    if len(path) > 1:
        caller = path[1]
        items.append(
            Recommendation(
                type=RecommendationType.MITIGATION,
                description=(
                    f"Consider shedding load or failing over calls from {caller} to {origin}, or "
                    f"tightening timeouts on them, to stop the failure from climbing to "
                    f"{incident.service}."
                ),
                risk=Risk.MEDIUM,
            )
        )
    if radius.scope == "INFRASTRUCTURE":
        items.append(
            Recommendation(
                type=RecommendationType.MITIGATION,
                description=(
                    f"Consider treating {origin} as a shared-dependency incident: {radius.callers} "
                    f"services call it directly and {radius.dependents} depend on it, so restoring "
                    "it comes before per-caller fixes."
                ),
                risk=Risk.MEDIUM,
            )
        )
    items.append(
        Recommendation(
            type=RecommendationType.INVESTIGATION,
            description=(
                f"Verify the health and recent changes of {origin}: it is the most downstream "
                f"anomalous service on the call paths from {incident.service}."
            ),
        )
    )
    return items


def _evidence(
    radius: BlastRadius,
    best: Mapping[str, SeriesScore],
    incident: Incident,
    requests: Mapping[str, float],
) -> list[Evidence]:
    items: list[Evidence] = []
    if radius.paths:
        items.append(
            Evidence(
                tool="get_service_graph",
                query=f"callers of {radius.origin} up to {incident.service}",
                record_ids=list(radius.paths[0]),
                summary=(
                    f"failure path {' -> '.join(radius.paths[0])}; {radius.origin} has "
                    f"{radius.callers} direct callers and {radius.dependents} dependents"
                ),
            )
        )
    for service in radius.ends[:3]:
        score = best[service]
        items.append(
            Evidence(
                tool="get_metrics",
                query=f"service={service} window=[{iso_z(incident.window_start)}, "
                f"{iso_z(incident.window_end)})",
                record_ids=[score.series_id],
                summary=f"{service}: {score.summary()}",
            )
        )
    if requests:
        items.append(
            Evidence(
                tool="get_traffic",
                query=f"request counts of the affected services in the window ({len(requests)})",
                record_ids=sorted(requests),
                summary="; ".join(f"{s}: {requests[s]:.0f} requests" for s in sorted(requests)[:8]),
            )
        )
    return items


def _describe(radius: BlastRadius, incident: Incident, estimated: float | None) -> str:
    if radius.origin is None:
        return (
            f"No anomalous dependency found for {incident.service}: blast radius limited to "
            f"{len(radius.affected)} service(s), scope {radius.scope}."
        )
    text = (
        f"{radius.origin} is the most downstream anomalous service reachable from "
        f"{incident.service}; {len(radius.affected)} services are affected, scope {radius.scope}."
    )
    if radius.paths:
        text += f" Propagation: {' -> '.join(radius.paths[0])}."
    if estimated is not None:
        text += f" About {estimated:.0f} requests reached {incident.service} in the window."
    return text


def _hypothesis(analyst: RiskAnalyst, incident: Incident, state: _State) -> Hypothesis:
    radius, best, gaps = state.radius, state.best, state.gaps
    located = state.graph is not None and incident.service in state.graph
    confidence = _confidence(state, located, incident.service)
    estimated = state.requests.get(incident.service)
    root = None
    if radius.origin is not None:
        root = RootCause(service=radius.origin, category=metric_family(best[radius.origin].metric))
    alternatives = [
        AlternativeCause(
            service=end,
            category=metric_family(best[end].metric),
            confidence=round(confidence * state.weight(end) / state.weight(radius.ends[0]), 4)
            if state.weight(radius.ends[0]) > 0
            else 0.0,
        )
        for end in radius.ends[1 : 1 + MAX_ALTERNATIVES]
    ]
    return Hypothesis(
        agent_id=analyst.agent_id,
        agent_version=analyst.version,
        status=HypothesisStatus.PARTIAL if gaps.partial else HypothesisStatus.SUCCESS,
        root_cause=root,
        description=_describe(radius, incident, estimated),
        confidence=round(confidence, 4),
        confidence_basis=[ConfidenceBasis.DATA],
        alternatives=alternatives,
        evidence=_evidence(radius, best, incident, state.requests),
        contradicting_evidence=[Evidence(tool="data_gaps", summary=n) for n in gaps.notes],
        recommendations=_recommendations(radius, incident),
        findings=_findings(incident, state, estimated),
    )


def _findings(incident: Incident, state: _State, estimated: float | None) -> dict[str, Any]:
    radius, requests = state.radius, state.requests
    return {
        "blast_radius": {
            "scope": radius.scope,
            "origin": radius.origin,
            "affected_services": list(radius.affected),
            "propagation_paths": [list(p) for p in radius.paths],
            "estimated_requests": None if estimated is None else round(estimated, 3),
            "requests_by_service": {s: round(requests[s], 3) for s in sorted(requests)},
            "origin_direct_callers": radius.callers,
            "origin_dependents": radius.dependents,
        },
        "risk_assessment": _assessment(incident, radius, state.graph, state.anomalous),
        "mitigation_priority": _priorities(radius, incident),
        "anomalous_services": {n: round(v, 4) for n, v in sorted(state.anomalous.items())},
        "alarm_coverage": {
            n: round(v, 4) for n, v in sorted(state.coverage.items()) if n in state.anomalous
        },
        "traffic_only_services": sorted(set(radius.affected) & state.loaded),
        "data_gaps": list(state.gaps.notes),
    }
