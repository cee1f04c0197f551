"""Change-intelligence analyst: scores recent deployments and configuration changes by how
suspicious their timing, service relation and kind make them, and names the likely trigger.

Suspicion of one change (0..1) is ``time × relation × kind`` where

- ``time`` is 1 for a change at the window start (taken as the onset), halves every
  ``half_life`` before it, stays 1 for the first 10 % of the window and then halves every quarter
  of the window: a change made after most of the window has passed cannot have started it;
- ``relation`` is 1 for the incident service, 0.85/0.7/0.55 for a callee 1/2/3 hops down and
  0.3 further (faults climb from callees to callers), 0.45 for a direct caller (0.25 further up),
  0.35 when the graph cannot tell, 0.1 for an unrelated service, 0.05 for a service missing from
  the graph and 0 for a change whose service is unknown (reported, never named as root cause);
- ``kind`` is 1 for a deployment, 0.85 for a configuration change and 0.7 for infrastructure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opx.agents.base import AgentContext
from opx.agents.local.similarity import Relation, RelationKind, service_relation
from opx.agents.local.topology import Topology
from opx.agents.roster import CHANGE
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
from opx.tools.paging import CollectedResult, collect
from opx.tools.records import iso_z

KIND_WEIGHTS = {"DEPLOYMENT": 1.0, "CONFIG": 0.85, "INFRASTRUCTURE": 0.7}
CATEGORIES = {"DEPLOYMENT": "DEPLOYMENT", "CONFIG": "CONFIG_CHANGE",
              "INFRASTRUCTURE": "INFRASTRUCTURE_CHANGE"}
CONFIDENCE_CAP = 0.85
DEGRADED_FACTOR = 0.8
# Share of the window during which a change still counts as "at the onset".
_EARLY_SHARE = 0.1


@dataclass(frozen=True)
class ChangeRecord:
    """One change as ``list_deployments`` / ``list_config_changes`` describe it."""

    change_id: str
    timestamp: datetime
    kind: str
    event_source: str
    event_name: str
    resource: str
    service: str | None
    actor: str
    description: str

    @classmethod
    def from_data(cls, item: Mapping[str, Any]) -> ChangeRecord | None:
        """The change, or None when it has no id or no readable time zone-aware timestamp."""
        try:
            stamp = datetime.fromisoformat(str(item.get("timestamp")))
        except ValueError:
            return None
        if stamp.tzinfo is None or not item.get("change_id"):
            return None
        service = item.get("service")
        return cls(
            change_id=str(item["change_id"]),
            timestamp=stamp,
            kind=str(item.get("kind") or "CONFIG").upper(),
            event_source=str(item.get("event_source") or ""),
            event_name=str(item.get("event_name") or "change"),
            resource=str(item.get("resource") or ""),
            service=service if isinstance(service, str) and service else None,
            actor=str(item.get("actor") or ""),
            description=str(item.get("description") or ""),
        )

    @property
    def component(self) -> str:
        return resource_short_name(self.resource)

    @property
    def category(self) -> str:
        return CATEGORIES.get(self.kind, "CONFIG_CHANGE")


@dataclass(frozen=True)
class ScoredChange:
    change: ChangeRecord
    relation: Relation
    time_score: float
    relation_score: float
    kind_score: float
    suspicion: float
    minutes_before_window_start: float


def resource_short_name(resource: str) -> str:
    """The changed resource's short name: the last ARN segment after ':' or '/'; a parameter
    (an SSM name such as ``/app/flag`` or its ARN) keeps its full name."""
    if resource.startswith("arn:"):
        parts = resource.split(":", 5)
        tail = parts[5] if len(parts) == 6 else resource
        if tail.startswith("parameter/"):
            name = tail[len("parameter/"):]
            return f"/{name}" if "/" in name else name
        return tail.replace("/", ":").rsplit(":", 1)[-1] or resource
    if resource.startswith("/"):
        return resource
    return resource.replace("/", ":").rsplit(":", 1)[-1] or resource


def time_proximity(
    stamp: datetime, window_start: datetime, window_end: datetime, half_life: timedelta
) -> float:
    """How well a change's time fits the onset (the window start); see the module docstring."""
    if stamp >= window_end:
        return 0.0
    if stamp <= window_start:
        before = (window_start - stamp) / half_life
        return math.pow(0.5, before)
    share = (stamp - window_start) / (window_end - window_start)
    if share <= _EARLY_SHARE:
        return 1.0
    return math.pow(0.5, (share - _EARLY_SHARE) / 0.25)


def relation_score(relation: Relation, graph_known: bool, max_hops: int) -> float:
    """How a change's service relates to the incident service; see the module docstring."""
    kind = relation.kind
    if kind is RelationKind.SAME:
        return 1.0
    if kind is RelationKind.CALLEE:
        return 0.85 - 0.15 * (relation.hops - 1) if relation.hops <= max_hops else 0.3
    if kind is RelationKind.CALLER:
        return 0.45 if relation.hops <= 1 else 0.25
    if kind is RelationKind.UNRELATED:
        return 0.1
    # UNKNOWN: without a usable graph the change may still matter; a service the graph lacks
    # is probably not on the incident's call path.
    return 0.35 if not graph_known else 0.05


def score_change(
    change: ChangeRecord,
    incident: Incident,
    graph: Topology,
    half_life: timedelta,
    max_hops: int,
) -> ScoredChange:
    """The suspicion of one change, with the parts it is made of."""
    relation = service_relation(graph, incident.service, change.service)
    known = incident.service in graph
    rel = 0.0 if change.service is None else relation_score(relation, known, max_hops)
    timing = time_proximity(change.timestamp, incident.window_start, incident.window_end,
                            half_life)
    kind = KIND_WEIGHTS.get(change.kind, KIND_WEIGHTS["INFRASTRUCTURE"])
    suspicion = timing * rel * kind
    minutes = (incident.window_start - change.timestamp).total_seconds() / 60.0
    return ScoredChange(change, relation, round(timing, 4), round(rel, 4), kind,
                        round(suspicion, 4), round(minutes, 1))


def change_confidence(top: float, runner_up: float) -> float:
    """The top suspicion, discounted when another service's change is nearly as suspicious."""
    if top <= 0.0:
        return 0.0
    separation = max(0.0, top - runner_up) / top
    return round(min(CONFIDENCE_CAP, top * (0.55 + 0.45 * separation)), 4)


def best_per_service(scored: Sequence[ScoredChange]) -> list[ScoredChange]:
    """The most suspicious change of each known service, most suspicious first."""
    best: dict[str, ScoredChange] = {}
    for item in scored:
        service = item.change.service
        if service is not None and service not in best:
            best[service] = item
    return sorted(best.values(), key=_rank)


def _rank(item: ScoredChange) -> tuple[float, str, str]:
    return (-item.suspicion, iso_z(item.change.timestamp), item.change.change_id)


class ChangeAnalyst:
    """Deployments and configuration changes close to the incident, ranked by suspicion."""

    agent_id = CHANGE
    version = "local-change/1.0"

    def __init__(
        self,
        lookback: timedelta = timedelta(hours=24),
        *,
        half_life: timedelta = timedelta(minutes=45),
        max_hops: int = 3,
        floor: float = 0.15,
        rollback_threshold: float = 0.5,
        report_limit: int = 20,
    ) -> None:
        self.lookback = lookback
        self.half_life = half_life
        self.max_hops = max_hops
        self.floor = floor
        self.rollback_threshold = rollback_threshold
        self.report_limit = report_limit

    def analyze(self, ctx: AgentContext) -> Hypothesis:
        notes: list[str] = []
        changes = self._changes(ctx, notes)
        graph = self._graph(ctx, notes)
        scored = sorted(
            (score_change(c, ctx.incident, graph, self.half_life, self.max_hops)
             for c in changes),
            key=_rank,
        )
        ranked = [s for s in best_per_service(scored) if s.suspicion >= self.floor]
        if not ranked:
            return self._abstain(ctx, scored, notes)
        return self._build(ctx, scored, ranked, notes)

    # -- tools ---------------------------------------------------------------------------------

    def _changes(self, ctx: AgentContext, notes: list[str]) -> list[ChangeRecord]:
        start, end = ctx.incident.window_start - self.lookback, ctx.incident.window_end
        tools = ctx.tools
        results = {
            "list_deployments": collect(
                lambda t: tools.list_deployments(start, end, next_token=t)),
            "list_config_changes": collect(
                lambda t: tools.list_config_changes(start, end, next_token=t)),
        }
        usable = 0
        found: dict[str, ChangeRecord] = {}
        for name, result in results.items():
            if _note_failure(name, result, notes):
                continue
            usable += 1
            for item in result.data.get("changes", []):
                change = ChangeRecord.from_data(item) if isinstance(item, Mapping) else None
                if change is not None:
                    found.setdefault(change.change_id, change)
        if usable == 0:
            raise OpxError(ErrorCode.DATA_SOURCE_UNAVAILABLE,
                           "no change source could be read: " + "; ".join(notes))
        return [found[k] for k in sorted(found)]

    def _graph(self, ctx: AgentContext, notes: list[str]) -> Topology:
        result = collect(lambda t: ctx.tools.get_service_graph(next_token=t))
        _note_failure("get_service_graph", result, notes)
        return Topology.from_payload(result.data)

    # -- output --------------------------------------------------------------------------------

    def _abstain(
        self, ctx: AgentContext, scored: Sequence[ScoredChange], notes: list[str]
    ) -> Hypothesis:
        start = iso_z(ctx.incident.window_start - self.lookback)
        if scored:
            reason = (f"{len(scored)} change(s) since {start}, none suspicious enough "
                      f"(best suspicion {scored[0].suspicion:.2f} < {self.floor:.2f})")
        else:
            reason = f"No deployment or configuration change since {start}"
        return Hypothesis(
            agent_id=self.agent_id,
            agent_version=self.version,
            status=HypothesisStatus.PARTIAL if notes else HypothesisStatus.SUCCESS,
            description=reason + "; no change-related root cause to report.",
            findings=self._findings(scored, None, None, notes),
        )

    def _build(
        self,
        ctx: AgentContext,
        scored: Sequence[ScoredChange],
        ranked: Sequence[ScoredChange],
        notes: list[str],
    ) -> Hypothesis:
        top = ranked[0]
        runner_up = ranked[1].suspicion if len(ranked) > 1 else 0.0
        confidence = change_confidence(top.suspicion, runner_up)
        if notes:
            confidence = round(confidence * DEGRADED_FACTOR, 4)
        recommendation = self._recommendation(top)
        rollback = recommendation if recommendation.type is RecommendationType.ROLLBACK else None
        change = top.change
        return Hypothesis(
            agent_id=self.agent_id,
            agent_version=self.version,
            status=HypothesisStatus.PARTIAL if notes else HypothesisStatus.SUCCESS,
            root_cause=RootCause(service=str(change.service), component=change.component,
                                 category=change.category),
            description=_describe(top, ctx.incident, len(ranked)),
            confidence=confidence,
            confidence_basis=[ConfidenceBasis.DATA],
            alternatives=[
                AlternativeCause(service=str(s.change.service), component=s.change.component,
                                 category=s.change.category,
                                 confidence=round(confidence * s.suspicion / top.suspicion, 4))
                for s in ranked[1:5]
            ],
            evidence=_evidence(scored, self.floor),
            recommendations=[recommendation],
            findings=self._findings(scored, top, rollback, notes),
        )

    def _recommendation(self, top: ScoredChange) -> Recommendation:
        change = top.change
        when = iso_z(change.timestamp)
        if top.suspicion >= self.rollback_threshold:
            return Recommendation(
                type=RecommendationType.ROLLBACK,
                description=_clip(f"Consider rolling back {change.event_name} on "
                                  f"{change.resource} made at {when} (change {change.change_id})"
                                  ", after confirming it matches the onset."),
                risk=Risk.MEDIUM,
            )
        return Recommendation(
            type=RecommendationType.INVESTIGATION,
            description=_clip(f"Consider reviewing {change.event_name} on {change.resource} "
                              f"made at {when} (change {change.change_id}) for a link to the "
                              "incident."),
            risk=Risk.LOW,
        )

    def _findings(
        self,
        scored: Sequence[ScoredChange],
        top: ScoredChange | None,
        rollback: Recommendation | None,
        notes: list[str],
    ) -> dict[str, Any]:
        return {
            "recent_changes": [_change_finding(s) for s in scored[: self.report_limit]],
            "changes_considered": len(scored),
            "likely_trigger": None if top is None else _change_finding(top),
            "rollback_recommendation": None if rollback is None or top is None else {
                "change_id": top.change.change_id,
                "event_name": top.change.event_name,
                "resource": top.change.resource,
                "timestamp": iso_z(top.change.timestamp),
                "description": rollback.description,
            },
            "unattributed_changes": [s.change.change_id for s in scored
                                     if s.change.service is None],
            "degraded": notes,
        }


def _note_failure(name: str, result: CollectedResult, notes: list[str]) -> bool:
    """Record a failed or incomplete source; True when nothing usable came back."""
    if result.status is ToolStatus.FAILED:
        detail = "; ".join(e.message for e in result.errors) or "no detail"
        notes.append(f"{name} failed: {detail}")
        return not result.data
    if result.truncated:
        notes.append(f"{name} was truncated")
    return False


def _describe(top: ScoredChange, incident: Incident, plausible: int) -> str:
    change = top.change
    minutes = top.minutes_before_window_start
    when = (f"{minutes:.0f} min before the window start" if minutes >= 0
            else f"{-minutes:.0f} min after the window start")
    text = (f"{change.kind.lower()} {change.event_name} on {change.resource} "
            f"(service {change.service}, {top.relation.describe()} of {incident.service}) "
            f"{when}; suspicion {top.suspicion:.2f}.")
    if plausible > 1:
        text += f" {plausible - 1} other service(s) also changed plausibly."
    return text[:1].upper() + text[1:]


def _evidence(scored: Sequence[ScoredChange], floor: float) -> list[Evidence]:
    items = []
    for tool, kinds in (("list_deployments", {"DEPLOYMENT"}),
                        ("list_config_changes", {"CONFIG", "INFRASTRUCTURE"})):
        chosen = [s for s in scored if s.change.kind in kinds and s.suspicion >= floor][:5]
        if chosen:
            items.append(Evidence(
                tool=tool,
                record_ids=[s.change.change_id for s in chosen],
                summary="; ".join(f"{s.change.change_id} {s.change.event_name} on "
                                  f"{s.change.service or 'unknown service'} suspicion "
                                  f"{s.suspicion:.2f}" for s in chosen),
            ))
    return items


def _change_finding(item: ScoredChange) -> dict[str, Any]:
    change = item.change
    return {
        "change_id": change.change_id,
        "kind": change.kind,
        "event_name": change.event_name,
        "service": change.service,
        "resource": change.resource,
        "timestamp": iso_z(change.timestamp),
        "minutes_before_window_start": item.minutes_before_window_start,
        "relation": item.relation.describe() if change.service else "unknown service",
        "suspicion": item.suspicion,
    }


def _clip(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
