"""Historical-pattern analyst: finds past incidents similar to this one and proposes the root
cause and remediation they shared, as a pattern rather than proof.

Candidates come from searching the incident service's neighbourhood and its title. Each is
compared with what is measurably wrong now: the symptom fingerprint of the neighbourhood's
metrics (see :mod:`opx.agents.local.similarity` for the similarity and its weights), so a past
incident worded differently but with the same symptoms is found, and one whose root-cause
service is quiet now counts much less. Matches are grouped by root-cause service."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opx.agents.base import AgentContext
from opx.agents.local.robust import ANOMALOUS
from opx.agents.local.similarity import (
    Fingerprint,
    Relation,
    RelationKind,
    fingerprint_similarities,
    generic_tokens,
    incident_similarity,
    is_command_like,
    past_symptom_tokens,
    relation_closeness,
    service_relation,
    severity_match,
    strings_in,
    symptom_fingerprint,
    tfidf_similarities,
    tokenize,
)
from opx.agents.local.telemetry import DataGaps, read_metric_scores
from opx.agents.local.topology import Topology, descendants
from opx.agents.roster import HISTORICAL
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
from opx.domain.tool_result import ToolStatus
from opx.tools.paging import collect

CONFIDENCE_CAP = 0.75
DEGRADED_FACTOR = 0.8
# How plausible a past root cause is for *this* incident, by where it sits on the graph:
# faults travel from callees to callers, so a callee is as plausible as the service itself.
_PLAUSIBILITY = {
    RelationKind.SAME: 1.0,
    RelationKind.CALLEE: 1.0,
    RelationKind.UNKNOWN: 0.8,
    RelationKind.CALLER: 0.5,
    RelationKind.UNRELATED: 0.3,
}
_ROLLBACK_WORDS = ("rollback", "roll back", "rolled back", "revert")
_INVESTIGATE_WORDS = ("investigat", "check", "review", "inspect", "verify", "confirm", "analy")
_RISKY_WORDS = ("restart", "failover", "fail over", "scale", "disable", "purge", "flush", "drain")


@dataclass(frozen=True)
class PastIncident:
    """A past incident as ``search_incidents`` describes it."""

    incident_id: str
    service: str
    severity: str | None
    opened_at: datetime | None
    title: str
    symptoms: tuple[str, ...]
    root_service: str | None
    root_component: str | None
    root_category: str

    @classmethod
    def from_data(cls, item: Mapping[str, Any]) -> PastIncident:
        raw_root = item.get("root_cause")
        root: Mapping[str, Any] = raw_root if isinstance(raw_root, Mapping) else {}
        symptoms = item.get("symptoms")
        return cls(
            incident_id=str(item.get("incident_id", "")),
            service=str(item.get("service", "")),
            severity=_text_or_none(item.get("severity")),
            opened_at=_parse_time(item.get("opened_at")),
            title=str(item.get("title") or ""),
            symptoms=tuple(strings_in(symptoms if isinstance(symptoms, list) else [])),
            root_service=_text_or_none(root.get("service")),
            root_component=_text_or_none(root.get("component")),
            root_category=str(root.get("category") or "UNKNOWN"),
        )

    @property
    def tokens(self) -> list[str]:
        return tokenize(" ".join([self.title, *self.symptoms]))


@dataclass(frozen=True)
class Match:
    incident: PastIncident
    similarity: float
    text: float
    symptoms: float | None = None
    root_activity: float | None = None


@dataclass(frozen=True)
class CauseGroup:
    """Similar incidents that share one root-cause service."""

    service: str
    support: float
    matches: tuple[Match, ...]

    @property
    def component(self) -> str | None:
        return _weighted_vote([(m.incident.root_component, m.similarity) for m in self.matches])

    @property
    def category(self) -> str:
        vote = _weighted_vote([(m.incident.root_category, m.similarity) for m in self.matches])
        return vote or "UNKNOWN"


def _text_or_none(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value.strip() else None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _weighted_vote(votes: Sequence[tuple[str | None, float]]) -> str | None:
    totals: dict[str, float] = defaultdict(float)
    for value, weight in votes:
        if value:
            totals[value] += weight
    if not totals:
        return None
    return min(totals, key=lambda v: (-round(totals[v], 9), v))


def incident_query_tokens(incident: Incident) -> list[str]:
    """The symptom words of the current incident: its title and every string of its detections."""
    parts = [incident.title or ""]
    for detection in incident.evidence_bundle.detections:
        parts.extend(strings_in(detection))
    return tokenize(" ".join(parts))


def neighbourhood(graph: Topology, service: str, depth: int, limit: int) -> list[str]:
    """The incident service, its callees within ``depth`` hops and its direct callers."""
    down = descendants(graph, service) if service in graph else {}
    callees = sorted((s for s in down if 0 < down[s] <= depth), key=lambda s: (down[s], s))
    callers = sorted(graph.callers.get(service, ()))
    ordered = list(dict.fromkeys([service, *callees, *callers]))
    return ordered[:limit]


def score_matches(
    incident: Incident,
    candidates: Sequence[PastIncident],
    graph: Topology,
    threshold: float,
    fingerprint: Fingerprint | None = None,
) -> list[Match]:
    """Past incidents whose similarity reaches ``threshold``, most similar first; without a
    fingerprint the similarity is text-led."""
    if not candidates:
        return []
    texts = tfidf_similarities(incident_query_tokens(incident), [c.tokens for c in candidates])
    symptoms: list[float | None] = [None] * len(candidates)
    if fingerprint is not None:
        generic = generic_tokens(graph.nodes)
        docs = [
            past_symptom_tokens(c.service, c.root_service, c.symptoms, generic) for c in candidates
        ]
        symptoms = list(fingerprint_similarities(fingerprint, docs))
    matches = []
    for past, text, symptom in zip(candidates, texts, symptoms, strict=True):
        activity = None if fingerprint is None else fingerprint.root_activity(past.root_service)
        similarity = incident_similarity(
            _closest_relation(graph, incident.service, past),
            text,
            severity_match(incident.severity.value, past.severity),
            _age_days(incident, past),
            symptoms=symptom,
            root_activity=activity,
        )
        if similarity >= threshold:
            matches.append(
                Match(
                    past,
                    round(similarity, 4),
                    round(text, 4),
                    None if symptom is None else round(symptom, 4),
                    activity,
                )
            )
    return sorted(matches, key=lambda m: (-m.similarity, m.incident.incident_id))


def _closest_relation(graph: Topology, service: str, past: PastIncident) -> Relation:
    """The closer of the past incident's service and its root-cause service."""
    relation = service_relation(graph, service, past.service)
    if past.root_service and past.root_service != past.service:
        via_root = service_relation(graph, service, past.root_service)
        relation = max(relation, via_root, key=relation_closeness)
    return relation


def _age_days(incident: Incident, past: PastIncident) -> float | None:
    if past.opened_at is None:
        return None
    return (incident.window_start - past.opened_at).total_seconds() / 86400.0


def fingerprint_services(
    neighbours: Sequence[str], candidates: Sequence[PastIncident], graph: Topology, limit: int
) -> list[str]:
    """The services whose metrics make the fingerprint: the neighbourhood first, then the
    candidates' root-cause services the graph knows, at most ``limit``."""
    roots = sorted(
        {c.root_service for c in candidates if c.root_service and c.root_service in graph}
        - set(neighbours)
    )
    return list(dict.fromkeys([*neighbours, *roots]))[:limit]


def group_by_cause(
    matches: Sequence[Match], incident: Incident, graph: Topology
) -> list[CauseGroup]:
    """Matches grouped by root-cause service; support is similarity times plausibility."""
    grouped: dict[str, list[Match]] = defaultdict(list)
    for match in matches:
        if match.incident.root_service:
            grouped[match.incident.root_service].append(match)
    groups = []
    for service, members in grouped.items():
        plausibility = _PLAUSIBILITY[service_relation(graph, incident.service, service).kind]
        support = sum(m.similarity for m in members) * plausibility
        groups.append(CauseGroup(service, round(support, 4), tuple(members)))
    return sorted(groups, key=lambda g: (-g.support, g.service))


def pattern_confidence(groups: Sequence[CauseGroup]) -> float:
    """Rises with the best match and the number of consistent matches, falls with the share
    of support that points elsewhere; capped because history is a pattern, not proof."""
    if not groups:
        return 0.0
    best = groups[0]
    total = sum(g.support for g in groups)
    share = best.support / total if total else 0.0
    top = max(m.similarity for m in best.matches)
    count = len(best.matches)
    strength = 0.5 * top + 0.5 * count / (count + 1)
    return round(min(CONFIDENCE_CAP, CONFIDENCE_CAP * strength * share), 4)


def classify_action(action: str, resolution_type: str) -> tuple[RecommendationType, Risk]:
    """Which kind of advice an action of a past resolution is, and how risky it looks."""
    lowered, kind = action.lower(), resolution_type.lower()
    if any(w in lowered for w in _INVESTIGATE_WORDS) and not any(
        w in lowered for w in _ROLLBACK_WORDS
    ):
        return RecommendationType.INVESTIGATION, Risk.LOW
    if any(w in lowered or w in kind.replace("_", " ") for w in _ROLLBACK_WORDS):
        return RecommendationType.ROLLBACK, Risk.MEDIUM
    risky = any(w in lowered for w in _RISKY_WORDS)
    return RecommendationType.MITIGATION, Risk.MEDIUM if risky else Risk.LOW


def advice_from_action(action: str, incident_id: str, summary: str) -> str:
    """Advice wording for a past action; command text is never copied into advice."""
    context = "" if not summary or is_command_like(summary) else f" ({summary.rstrip('.')})"
    if is_command_like(action):
        text = (
            f"Consider the remediation that resolved similar incident {incident_id}"
            f"{context}; review its documented steps before acting."
        )
    else:
        step = action.strip().rstrip(".")
        step = step[:1].lower() + step[1:]
        text = f"Consider: {step}, as in similar incident {incident_id}{context}."
    return _clip(text)


def _clip(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class HistoricalAnalyst:
    """Similar past incidents, their root causes and how they were resolved."""

    agent_id = HISTORICAL
    version = "local-historical/1.0"

    def __init__(
        self,
        *,
        threshold: float = 0.35,
        depth: int = 3,
        max_services: int = 10,
        search_limit: int = 10,
        resolutions: int = 3,
        fingerprint_services: int = 12,
        baseline: timedelta = timedelta(hours=24),
    ) -> None:
        self.threshold = threshold
        self.depth = depth
        self.max_services = max_services
        self.search_limit = search_limit
        self.resolutions = resolutions
        self.fingerprint_services = fingerprint_services
        self.baseline = baseline

    def analyze(self, ctx: AgentContext) -> Hypothesis:
        notes: list[str] = []
        graph = self._graph(ctx, notes)
        services = neighbourhood(graph, ctx.incident.service, self.depth, self.max_services)
        candidates = self._search(ctx, services, notes)
        fingerprint = self._fingerprint(ctx, graph, services, candidates, notes)
        matches = score_matches(ctx.incident, candidates, graph, self.threshold, fingerprint)
        groups = group_by_cause(matches, ctx.incident, graph)
        if not groups:
            return self._abstain(ctx, services, len(candidates), matches, fingerprint, notes)
        resolutions = self._resolutions(ctx, matches, notes)
        return self._build(
            ctx,
            services=services,
            matches=matches,
            groups=groups,
            resolutions=resolutions,
            fingerprint=fingerprint,
            notes=notes,
        )

    # -- tools ---------------------------------------------------------------------------------

    def _graph(self, ctx: AgentContext, notes: list[str]) -> Topology:
        result = collect(lambda token: ctx.tools.get_service_graph(next_token=token))
        if result.status is ToolStatus.FAILED:
            notes.append(
                f"get_service_graph failed ({_errors(result.errors)}); "
                "searched the incident service only"
            )
        return Topology.from_payload(result.data)

    def _fingerprint(
        self,
        ctx: AgentContext,
        graph: Topology,
        services: Sequence[str],
        candidates: Sequence[PastIncident],
        notes: list[str],
    ) -> Fingerprint | None:
        """What is anomalous now; None when no metric could be read (text-led similarity)."""
        if not candidates:
            return None
        chosen = fingerprint_services(services, candidates, graph, self.fingerprint_services)
        gaps = DataGaps()
        incident = ctx.incident
        scores = read_metric_scores(
            ctx.tools, chosen, (incident.window_start, incident.window_end), self.baseline, gaps
        )
        notes.extend(f"get_metrics: {note}" for note in gaps.notes)
        if not scores:
            return None
        return symptom_fingerprint(scores, graph, generic_tokens(graph.nodes))

    def _search(
        self, ctx: AgentContext, services: Sequence[str], notes: list[str]
    ) -> list[PastIncident]:
        found: dict[str, PastIncident] = {}
        failed = 0
        queries: list[tuple[str | None, str | None]] = [(s, None) for s in services]
        if ctx.incident.title:
            queries.append((None, ctx.incident.title))
        for service, text in queries:
            result = ctx.tools.search_incidents(service=service, text=text, limit=self.search_limit)
            if result.status is ToolStatus.FAILED:
                failed += 1
                message = result.error.message if result.error else "no detail"
                notes.append(f"search_incidents({service or text}) failed: {message}")
                continue
            for item in result.data.get("incidents", []):
                if isinstance(item, Mapping):
                    past = PastIncident.from_data(item)
                    found.setdefault(past.incident_id, past)
        if failed == len(queries):
            raise OpxError(
                ErrorCode.DATA_SOURCE_UNAVAILABLE,
                "search_incidents failed for every query: " + "; ".join(notes),
            )
        return [p for _, p in sorted(found.items()) if self._is_history(ctx.incident, p)]

    @staticmethod
    def _is_history(incident: Incident, past: PastIncident) -> bool:
        # An incident opened inside or after this window is not history (it may be this one).
        if not past.incident_id or past.incident_id == incident.incident_id:
            return False
        return past.opened_at is None or past.opened_at < incident.window_start

    def _resolutions(
        self, ctx: AgentContext, matches: Sequence[Match], notes: list[str]
    ) -> dict[str, dict[str, Any]]:
        resolved: dict[str, dict[str, Any]] = {}
        for match in matches[: self.resolutions]:
            incident_id = match.incident.incident_id
            result = ctx.tools.get_resolution(incident_id)
            if result.status is ToolStatus.FAILED:
                message = result.error.message if result.error else "no detail"
                notes.append(f"get_resolution({incident_id}) failed: {message}")
                continue
            resolution = result.data.get("resolution")
            if result.data.get("found") and isinstance(resolution, Mapping):
                resolved[incident_id] = dict(resolution)
        return resolved

    # -- output --------------------------------------------------------------------------------

    def _abstain(
        self,
        ctx: AgentContext,
        services: Sequence[str],
        searched: int,
        matches: Sequence[Match],
        fingerprint: Fingerprint | None,
        notes: list[str],
    ) -> Hypothesis:
        reason = (
            f"No past incident reached similarity {self.threshold:.2f} "
            f"({searched} candidate(s) compared around {ctx.incident.service})"
        )
        if matches:
            reason = "Similar past incidents were found but none records a root-cause service"
        return Hypothesis(
            agent_id=self.agent_id,
            agent_version=self.version,
            status=HypothesisStatus.PARTIAL if notes else HypothesisStatus.SUCCESS,
            description=reason + "; no historical pattern to report.",
            findings={
                "similar_incidents": [_match_finding(m, {}) for m in matches],
                "patterns": [],
                "services_searched": list(services),
                "fingerprint": _fingerprint_finding(fingerprint),
                "degraded": notes,
            },
        )

    def _build(
        self,
        ctx: AgentContext,
        *,
        services: Sequence[str],
        matches: Sequence[Match],
        groups: Sequence[CauseGroup],
        resolutions: Mapping[str, Mapping[str, Any]],
        fingerprint: Fingerprint | None,
        notes: list[str],
    ) -> Hypothesis:
        best = groups[0]
        confidence = pattern_confidence(groups)
        if notes:
            confidence = round(confidence * DEGRADED_FACTOR, 4)
        ids = [m.incident.incident_id for m in best.matches]
        description = (
            f"{len(best.matches)} similar past incident(s) ({', '.join(ids[:5])}) had their root "
            f"cause in {best.service} ({best.category}); top similarity "
            f"{best.matches[0].similarity:.2f}. Historical pattern, not proof."
        )
        activity = None if fingerprint is None else fingerprint.root_activity(best.service)
        if activity is not None:
            state = "is anomalous" if activity >= ANOMALOUS else "is not clearly anomalous"
            description += f" {best.service} {state} now (activity {activity:.2f})."
        if len(groups) > 1:
            description += f" {len(groups) - 1} other root cause(s) also appear in history."
        return Hypothesis(
            agent_id=self.agent_id,
            agent_version=self.version,
            status=HypothesisStatus.PARTIAL if notes else HypothesisStatus.SUCCESS,
            root_cause=RootCause(
                service=best.service, component=best.component, category=best.category
            ),
            description=description,
            confidence=confidence,
            confidence_basis=[ConfidenceBasis.PATTERN],
            alternatives=_alternatives(groups, confidence),
            evidence=_evidence(services, matches, resolutions),
            contradicting_evidence=_contradictions(groups),
            recommendations=_recommendations(best, matches, resolutions),
            findings={
                "similar_incidents": [_match_finding(m, resolutions) for m in matches],
                "patterns": [_pattern_finding(g, groups) for g in groups],
                "services_searched": list(services),
                "fingerprint": _fingerprint_finding(fingerprint),
                "degraded": notes,
            },
        )


def _errors(errors: Sequence[Any]) -> str:
    return "; ".join(str(getattr(e, "message", e)) for e in errors) or "no detail"


def _alternatives(groups: Sequence[CauseGroup], confidence: float) -> list[AlternativeCause]:
    best = groups[0]
    return [
        AlternativeCause(
            service=g.service,
            component=g.component,
            category=g.category,
            confidence=round(confidence * g.support / best.support, 4),
        )
        for g in groups[1:5]
    ]


def _evidence(
    services: Sequence[str], matches: Sequence[Match], resolutions: Mapping[str, Mapping[str, Any]]
) -> list[Evidence]:
    top = matches[:10]
    items = [
        Evidence(
            tool="search_incidents",
            query="services=" + ",".join(services),
            record_ids=[m.incident.incident_id for m in top],
            summary="; ".join(
                f"{m.incident.incident_id} similarity {m.similarity:.2f} root cause "
                f"{m.incident.root_service or 'unknown'}"
                for m in top[:5]
            ),
        )
    ]
    for incident_id in sorted(resolutions):
        summary = str(resolutions[incident_id].get("summary") or "resolution recorded")
        items.append(
            Evidence(
                tool="get_resolution",
                query=incident_id,
                record_ids=[incident_id],
                summary=summary[:300],
            )
        )
    return items


def _contradictions(groups: Sequence[CauseGroup]) -> list[Evidence]:
    others = [m for g in groups[1:] for m in g.matches]
    if not others:
        return []
    return [
        Evidence(
            tool="search_incidents",
            record_ids=[m.incident.incident_id for m in others[:10]],
            summary="Similar incidents with other root causes: "
            + ", ".join(f"{g.service} ({len(g.matches)})" for g in groups[1:5]),
        )
    ]


def _recommendations(
    best: CauseGroup, matches: Sequence[Match], resolutions: Mapping[str, Mapping[str, Any]]
) -> list[Recommendation]:
    ids = ", ".join(m.incident.incident_id for m in best.matches[:3])
    target = f"{best.component} on {best.service}" if best.component else best.service
    recs = [
        Recommendation(
            type=RecommendationType.INVESTIGATION,
            description=_clip(
                f"Consider checking whether {target} shows the same "
                f"{best.category} pattern as past incidents {ids}."
            ),
            risk=Risk.LOW,
        )
    ]
    seen = {recs[0].description}
    for match in matches:
        resolution = resolutions.get(match.incident.incident_id)
        if resolution is None or match.incident.root_service != best.service:
            continue
        for rec in _resolution_advice(match.incident.incident_id, resolution):
            if rec.description not in seen and len(recs) < 5:
                seen.add(rec.description)
                recs.append(rec)
    return recs


def _resolution_advice(incident_id: str, resolution: Mapping[str, Any]) -> list[Recommendation]:
    kind = str(resolution.get("type") or "")
    summary = str(resolution.get("summary") or "")
    actions = [a for a in strings_in(resolution.get("actions") or []) if a.strip()]
    if not actions and summary:
        actions = [summary]
    recs = []
    for action in actions[:3]:
        rec_type, risk = classify_action(action, kind)
        recs.append(
            Recommendation(
                type=rec_type,
                risk=risk,
                description=advice_from_action(action, incident_id, summary),
            )
        )
    return recs


def _match_finding(match: Match, resolutions: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    past = match.incident
    resolution = resolutions.get(past.incident_id)
    return {
        "incident_id": past.incident_id,
        "similarity": match.similarity,
        "text_similarity": match.text,
        "symptom_similarity": match.symptoms,
        "root_cause_activity": match.root_activity,
        "service": past.service,
        "title": past.title,
        "root_cause": {
            "service": past.root_service,
            "component": past.root_component,
            "category": past.root_category,
        },
        "resolution_summary": None if resolution is None else resolution.get("summary"),
    }


def _pattern_finding(group: CauseGroup, groups: Sequence[CauseGroup]) -> dict[str, Any]:
    total = sum(g.support for g in groups)
    return {
        "root_cause_service": group.service,
        "component": group.component,
        "category": group.category,
        "incidents": [m.incident.incident_id for m in group.matches],
        "support": group.support,
        "share": round(group.support / total, 4) if total else 0.0,
    }


def _fingerprint_finding(fingerprint: Fingerprint | None) -> dict[str, Any] | None:
    if fingerprint is None:
        return None
    return {
        "anomalous_series": [
            {"series_id": s.series_id, "z": round(s.z, 3)} for s in fingerprint.anomalous[:10]
        ],
        "service_activity": {k: v for k, v in sorted(fingerprint.activity.items()) if v > 0},
    }
