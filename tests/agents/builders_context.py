"""Shared builders for the analyst tests: an incident, in-memory tools, a small call graph,
one-minute metric series and logs with chosen shifts, and hand-built hypotheses, all around one
fixed window."""

from __future__ import annotations

import random
import zlib
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
    LogEvent,
    LogLevel,
    MetricSeries,
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
    return ServiceGraph(
        tuple(GraphNode(n, "service") for n in names), tuple(GraphEdge(s, t) for s, t in pairs)
    )


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
        evidence_bundle=EvidenceBundle(
            evidence_id="ev-1", detections=[dict(d) for d in detections]
        ),
        title=title,
    )


def tools(
    *,
    changes: Iterable[Change] = (),
    incidents: Iterable[PastIncident] = (),
    documents: Iterable[KnowledgeDoc] = (),
    edges: Iterable[tuple[str, str]] | None = EDGES,
    unavailable: Mapping[Source, str] | None = None,
    series: Iterable[MetricSeries] = (),
    logs: Iterable[LogEvent] = (),
) -> InMemoryTools:
    return InMemoryTools(
        "test",
        graph=None if edges is None else graph(edges),
        changes=changes,
        incidents=incidents,
        documents=documents,
        unavailable=unavailable,
        series=series,
        logs=logs,
    )


# A shift: (from minute, until minute or None for "to the end", added amount).
Shift = tuple[float, float | None, float]


def metric(
    service: str,
    name: str,
    *,
    level: float = 100.0,
    spread: float = 5.0,
    shifts: Sequence[Shift] = (),
    stat: str = "Average",
    first: int = -180,
) -> MetricSeries:
    """A one-minute series from ``first`` minutes before the window start to the window end:
    seeded noise around ``level`` plus the given shifts (minutes relative to the window start)."""
    rng = random.Random(zlib.crc32(f"{service}|{name}|{stat}".encode()))
    total = int((END - START).total_seconds() // 60)
    minutes = range(first, total)
    values = []
    for minute in minutes:
        value = level + rng.gauss(0.0, spread)
        for start, until, amount in shifts:
            if minute >= start and (until is None or minute < until):
                value += amount
        values.append(round(max(value, 0.0), 3))
    return MetricSeries(service, name, stat, "None", tuple(at(m) for m in minutes), tuple(values))


def healthy(*services: str) -> list[MetricSeries]:
    """Latency, errors and requests of each service, with nothing happening."""
    return [s for name in services for s in service_metrics(name)]


def service_metrics(
    service: str,
    *,
    latency: Sequence[Shift] = (),
    errors: Sequence[Shift] = (),
    requests: Sequence[Shift] = (),
) -> list[MetricSeries]:
    """The usual three series of one service, each with optional shifts."""
    return [
        metric(service, "latency", level=120.0, spread=6.0, shifts=latency),
        metric(service, "errors", level=4.0, spread=1.5, shifts=errors, stat="Sum"),
        metric(service, "requests", level=600.0, spread=20.0, shifts=requests, stat="Sum"),
    ]


def log_lines(
    service: str, message: str, minutes: Iterable[float], level: LogLevel = LogLevel.ERROR
) -> list[LogEvent]:
    """One log event of ``service`` at each of ``minutes`` (relative to the window start)."""
    return [
        LogEvent(f"{service}-{level.value}-{i}", at(m), service, level, message)
        for i, m in enumerate(minutes)
    ]


def context(
    tool_set: InMemoryTools | None = None,
    *,
    inc: Incident | None = None,
    prior: Mapping[str, Hypothesis] | None = None,
) -> AgentContext:
    return AgentContext(
        incident=inc or incident(), tools=tool_set or tools(), prior=dict(prior or {})
    )


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
    return KnowledgeDoc(
        doc_id,
        doc_type,
        tuple(services),
        START - timedelta(days=90),
        title,
        tuple(KnowledgeSection(h, t) for h, t in sections.items()),
    )


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
        root_cause=None
        if service is None
        else RootCause(service=service, component=component, category=category),
        description=f"{agent_id} thinks {service}",
        confidence=confidence if service is not None else 0.0,
        alternatives=[AlternativeCause(service=s, confidence=c) for s, c in alternatives],
        recommendations=[
            Recommendation(type=t, description=d, risk=r) for t, d, r in recommendations
        ],
        findings=dict(findings or {}),
    )
