"""Shared builders for the telemetry tool tests: small typed records around a fixed time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
    Span,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def series(service: str, metric: str, stat: str = "Average", points: int = 10) -> MetricSeries:
    stamps = tuple(at(i) for i in range(points))
    values = tuple(float(i) * 1.5 for i in range(points))
    return MetricSeries(service, metric, stat, "Count", stamps, values)


def log(index: int, minutes: float, service: str = "api", message: str = "ok") -> LogEvent:
    return LogEvent(f"log-{index}", at(minutes), service, LogLevel.INFO, message)


def span(span_id: str, minutes: float, service: str = "api", *, fault: bool = False) -> Span:
    return Span("t-1", span_id, None, service, "GET /", at(minutes), 12.5, fault=fault)


def change(change_id: str, minutes: float, kind: ChangeKind, service: str | None = "api") -> Change:
    return Change(
        change_id,
        at(minutes),
        kind,
        "lambda.amazonaws.com",
        "UpdateFunctionCode",
        f"arn:fn:{service}",
        service,
        "deployer",
        f"change {change_id}",
    )


def incident(
    incident_id: str, days_ago: int, service: str = "api", title: str = "slow", cause: str = "db"
) -> PastIncident:
    return PastIncident(
        incident_id,
        service,
        "SEV2",
        T0 - timedelta(days=days_ago),
        title,
        ("latency high",),
        IncidentRootCause(cause, "CAPACITY", "table"),
        Resolution("MITIGATION", f"fixed {incident_id}", ("scale up",), 42.0),
    )


def doc(
    doc_id: str, title: str, sections: dict[str, str], services: tuple[str, ...] = ()
) -> KnowledgeDoc:
    return KnowledgeDoc(
        doc_id,
        DocType.RUNBOOK,
        services,
        T0,
        title,
        tuple(KnowledgeSection(h, t) for h, t in sections.items()),
    )


def graph() -> ServiceGraph:
    return ServiceGraph(
        (GraphNode("web", "client"), GraphNode("api", "service")),
        (GraphEdge("api", "db"), GraphEdge("web", "api")),
    )
