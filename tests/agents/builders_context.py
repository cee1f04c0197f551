"""Shared builders for the analyst tests: an incident, in-memory tools, a small call graph and
hand-built hypotheses, all around one fixed window."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from opx.agents.base import AgentContext
from opx.domain.hypothesis import (
    AlternativeCause,
    Hypothesis,
    HypothesisStatus,
    Recommendation,
    RecommendationType,
    Risk,
    RootCause,
)
from opx.domain.incident import EvidenceBundle, Incident
from opx.tools.memory import InMemoryTools, Source
from opx.tools.records import (
    Change,
    ChangeKind,
    DocType,
    GraphEdge,
    GraphNode,
    IncidentRootCause,
    KnowledgeDoc,
    KnowledgeSection,
    PastIncident,
    Resolution,
    ServiceGraph,
)

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
END = START + timedelta(minutes=60)

# web -> checkout -> payments -> payments-db, checkout -> inventory -> inventory-db, and an
# island reporting -> reporting-db that has nothing to do with checkout.
EDGES = (
    ("web", "checkout"),
    ("checkout", "payments"),
    ("payments", "payments-db"),
    ("checkout", "inventory"),
    ("inventory", "inventory-db"),
    ("reporting", "reporting-db"),
)


def at(minutes: float) -> datetime:
    """A time relative to the window start (negative: before it)."""
    return START + timedelta(minutes=minutes)


def graph(edges: Iterable[tuple[str, str]] = EDGES) -> ServiceGraph:
    pairs = list(edges)
    names = sorted({n for pair in pairs for n in pair})
    return ServiceGraph(tuple(GraphNode(n, "service") for n in names),
                        tuple(GraphEdge(s, t) for s, t in pairs))


def incident(
    service: str = "checkout",
    *,
    title: str | None = "Checkout p99 latency high with payment timeouts",
    detections: Sequence[Mapping[str, Any]] = (),
    severity: str = "SEV2",
    incident_id: str = "INC-NOW",
) -> Incident:
    return Incident(
        incident_id=incident_id,
        service=service,
        severity=severity,
        window_start=START,
        window_end=END,
        evidence_bundle=EvidenceBundle(evidence_id="ev-1",
                                       detections=[dict(d) for d in detections]),
        title=title,
    )


def tools(
    *,
    changes: Iterable[Change] = (),
    incidents: Iterable[PastIncident] = (),
    documents: Iterable[KnowledgeDoc] = (),
    edges: Iterable[tuple[str, str]] | None = EDGES,
    unavailable: Mapping[Source, str] | None = None,
) -> InMemoryTools:
    return InMemoryTools(
        "test",
        graph=None if edges is None else graph(edges),
        changes=changes,
        incidents=incidents,
        documents=documents,
        unavailable=unavailable,
    )


def context(
    tool_set: InMemoryTools | None = None,
    *,
    inc: Incident | None = None,
    prior: Mapping[str, Hypothesis] | None = None,
) -> AgentContext:
    return AgentContext(incident=inc or incident(), tools=tool_set or tools(),
                        prior=dict(prior or {}))


def change(
    change_id: str,
    minutes: float,
    service: str | None,
    *,
    kind: ChangeKind = ChangeKind.DEPLOYMENT,
    resource: str | None = None,
    event_name: str = "UpdateFunctionCode",
) -> Change:
    return Change(
        change_id=change_id,
        timestamp=at(minutes),
        kind=kind,
        event_source="lambda.amazonaws.com",
        event_name=event_name,
        resource=resource or f"arn:aws:lambda:us-east-1:111122223333:function:{service}-fn",
        service=service,
        actor="deployer",
        description=f"change {change_id}",
    )


def past(
    incident_id: str,
    *,
    service: str,
    title: str,
    symptoms: Sequence[str] = (),
    root: str,
    component: str | None = None,
    category: str = "RESOURCE_EXHAUSTION",
    days_ago: float = 30,
    severity: str = "SEV2",
    resolution: Resolution | None = None,
) -> PastIncident:
    return PastIncident(
        incident_id=incident_id,
        service=service,
        severity=severity,
        opened_at=START - timedelta(days=days_ago),
        title=title,
        symptoms=tuple(symptoms),
        root_cause=IncidentRootCause(root, category, component),
        resolution=resolution,
    )


def doc(
    doc_id: str,
    title: str,
    sections: Mapping[str, str],
    services: Sequence[str],
    doc_type: DocType = DocType.RUNBOOK,
) -> KnowledgeDoc:
    return KnowledgeDoc(doc_id, doc_type, tuple(services), START - timedelta(days=90), title,
                        tuple(KnowledgeSection(h, t) for h, t in sections.items()))


def hypothesis(
    agent_id: str,
    service: str | None,
    confidence: float = 0.0,
    *,
    component: str | None = None,
    category: str = "UNKNOWN",
    alternatives: Sequence[tuple[str, float]] = (),
    recommendations: Sequence[tuple[RecommendationType, str, Risk]] = (),
    status: HypothesisStatus = HypothesisStatus.SUCCESS,
    findings: Mapping[str, Any] | None = None,
) -> Hypothesis:
    return Hypothesis(
        agent_id=agent_id,
        status=status,
        root_cause=None if service is None else RootCause(service=service, component=component,
                                                          category=category),
        description=f"{agent_id} thinks {service}",
        confidence=confidence if service is not None else 0.0,
        alternatives=[AlternativeCause(service=s, confidence=c) for s, c in alternatives],
        recommendations=[Recommendation(type=t, description=d, risk=r)
                         for t, d, r in recommendations],
        findings=dict(findings or {}),
    )
