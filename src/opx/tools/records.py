"""Typed telemetry records (metrics, logs, spans, graph, changes, incidents, knowledge) and
their JSON data shapes, as documented in :mod:`opx.tools.base`."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from itertools import pairwise
from typing import Any

JsonDict = dict[str, Any]


def utc(value: datetime, what: str = "timestamp") -> datetime:
    """``value`` converted to UTC; a naive datetime is rejected because its zone is a guess."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} {value.isoformat()} has no time zone")
    return value.astimezone(UTC)


def iso_z(value: datetime) -> str:
    """ISO-8601 UTC text ending in ``Z``, the form every tool result uses."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _set(obj: object, name: str, value: object) -> None:
    # Frozen dataclasses normalise their own fields once, at construction.
    object.__setattr__(obj, name, value)


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"
    FATAL = "FATAL"


class ChangeKind(StrEnum):
    DEPLOYMENT = "DEPLOYMENT"
    CONFIG = "CONFIG"
    INFRASTRUCTURE = "INFRASTRUCTURE"


class DocType(StrEnum):
    RUNBOOK = "RUNBOOK"
    POSTMORTEM = "POSTMORTEM"
    ARCHITECTURE = "ARCHITECTURE"
    PLAYBOOK = "PLAYBOOK"


@dataclass(frozen=True)
class MetricPoint:
    timestamp: datetime
    value: float

    def __post_init__(self) -> None:
        _set(self, "timestamp", utc(self.timestamp))
        if not math.isfinite(self.value):
            raise ValueError(f"metric value {self.value} is not a finite number")


@dataclass(frozen=True)
class MetricSeries:
    """One ``(service, metric, stat)`` series; timestamps strictly increase."""

    service: str
    metric: str
    stat: str
    unit: str
    timestamps: tuple[datetime, ...] = ()
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if len(self.timestamps) != len(self.values):
            raise ValueError(
                f"series {self.id}: {len(self.timestamps)} timestamps but {len(self.values)} values"
            )
        stamps = tuple(utc(t) for t in self.timestamps)
        for before, after in pairwise(stamps):
            if after <= before:
                raise ValueError(
                    f"series {self.id}: timestamps must strictly increase "
                    f"({iso_z(before)} then {iso_z(after)})"
                )
        for value in self.values:
            if not math.isfinite(value):
                raise ValueError(f"series {self.id}: value {value} is not a finite number")
        _set(self, "timestamps", stamps)
        _set(self, "values", tuple(float(v) for v in self.values))

    @classmethod
    def from_points(
        cls, service: str, metric: str, stat: str, unit: str, points: list[MetricPoint]
    ) -> MetricSeries:
        ordered = sorted(points, key=lambda p: p.timestamp)
        return cls(
            service,
            metric,
            stat,
            unit,
            tuple(p.timestamp for p in ordered),
            tuple(p.value for p in ordered),
        )

    @property
    def id(self) -> str:
        return series_id(self.service, self.metric, self.stat)

    @property
    def points(self) -> Iterator[MetricPoint]:
        for stamp, value in zip(self.timestamps, self.values, strict=True):
            yield MetricPoint(stamp, value)

    def header(self) -> JsonDict:
        """The series without its points: the ``list_metrics`` shape."""
        return {
            "id": self.id,
            "service": self.service,
            "metric": self.metric,
            "stat": self.stat,
            "unit": self.unit,
        }

    def to_data(self) -> JsonDict:
        return {
            **self.header(),
            "timestamps": [iso_z(t) for t in self.timestamps],
            "values": list(self.values),
        }


def series_id(service: str, metric: str, stat: str) -> str:
    return f"{service}|{metric}|{stat}"


@dataclass(frozen=True)
class LogEvent:
    id: str
    timestamp: datetime
    service: str
    level: LogLevel
    message: str
    trace_id: str | None = None
    span_id: str | None = None

    def __post_init__(self) -> None:
        _set(self, "timestamp", utc(self.timestamp))
        _set(self, "level", LogLevel(self.level))

    def to_data(self) -> JsonDict:
        data: JsonDict = {
            "id": self.id,
            "timestamp": iso_z(self.timestamp),
            "service": self.service,
            "level": self.level.value,
            "message": self.message,
        }
        if self.trace_id is not None:
            data["trace_id"] = self.trace_id
        if self.span_id is not None:
            data["span_id"] = self.span_id
        return data


@dataclass(frozen=True)
class Span:
    """An X-Ray-style span: ``error`` is a 4xx, ``fault`` a 5xx."""

    trace_id: str
    span_id: str
    parent_id: str | None
    service: str
    operation: str
    start: datetime
    duration_ms: float
    error: bool = False
    fault: bool = False
    status_code: int | None = None

    def __post_init__(self) -> None:
        _set(self, "start", utc(self.start, "span start"))
        if not math.isfinite(self.duration_ms) or self.duration_ms < 0:
            raise ValueError(f"span {self.span_id}: duration_ms must be a number >= 0")

    def to_data(self) -> JsonDict:
        data: JsonDict = {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "service": self.service,
            "operation": self.operation,
            "start": iso_z(self.start),
            "duration_ms": self.duration_ms,
            "error": self.error,
            "fault": self.fault,
        }
        if self.status_code is not None:
            data["status_code"] = self.status_code
        return data


@dataclass(frozen=True)
class GraphNode:
    name: str
    type: str | None = None

    def to_data(self) -> JsonDict:
        return {"name": self.name, "type": self.type}


@dataclass(frozen=True)
class GraphEdge:
    """``source`` calls ``target``: requests flow source → target, failures the other way."""

    source: str
    target: str

    def to_data(self) -> JsonDict:
        return {"source": self.source, "target": self.target}


@dataclass(frozen=True)
class ServiceGraph:
    """Nodes sorted by name and edges by (source, target), without duplicates; an edge
    endpoint missing from the nodes is added as a node of unknown type."""

    nodes: tuple[GraphNode, ...] = ()
    edges: tuple[GraphEdge, ...] = ()

    def __post_init__(self) -> None:
        by_name: dict[str, GraphNode] = {}
        for node in self.nodes:
            known = by_name.get(node.name)
            if known is None or known.type is None:
                by_name[node.name] = node
        for edge in self.edges:
            for name in (edge.source, edge.target):
                by_name.setdefault(name, GraphNode(name))
        _set(self, "nodes", tuple(by_name[n] for n in sorted(by_name)))
        _set(self, "edges", tuple(sorted(set(self.edges), key=lambda e: (e.source, e.target))))


@dataclass(frozen=True)
class Change:
    """A deployment or configuration change; ``service`` is None when unknown."""

    change_id: str
    timestamp: datetime
    kind: ChangeKind
    event_source: str
    event_name: str
    resource: str
    service: str | None
    actor: str
    description: str

    def __post_init__(self) -> None:
        _set(self, "timestamp", utc(self.timestamp))
        _set(self, "kind", ChangeKind(self.kind))

    def to_data(self) -> JsonDict:
        return {
            "change_id": self.change_id,
            "timestamp": iso_z(self.timestamp),
            "kind": self.kind.value,
            "event_source": self.event_source,
            "event_name": self.event_name,
            "resource": self.resource,
            "service": self.service,
            "actor": self.actor,
            "description": self.description,
        }


@dataclass(frozen=True)
class IncidentRootCause:
    service: str
    category: str
    component: str | None = None

    def to_data(self) -> JsonDict:
        return {"service": self.service, "component": self.component, "category": self.category}


@dataclass(frozen=True)
class Resolution:
    type: str
    summary: str
    actions: tuple[str, ...] = ()
    time_to_resolve_minutes: float | None = None

    def to_data(self) -> JsonDict:
        return {
            "type": self.type,
            "summary": self.summary,
            "actions": list(self.actions),
            "time_to_resolve_minutes": self.time_to_resolve_minutes,
        }


@dataclass(frozen=True)
class PastIncident:
    incident_id: str
    service: str
    severity: str
    opened_at: datetime
    title: str
    symptoms: tuple[str, ...]
    root_cause: IncidentRootCause
    resolution: Resolution | None = None

    def __post_init__(self) -> None:
        _set(self, "opened_at", utc(self.opened_at, "opened_at"))

    def to_data(self) -> JsonDict:
        """The ``search_incidents`` shape (the resolution is fetched separately)."""
        return {
            "incident_id": self.incident_id,
            "service": self.service,
            "severity": self.severity,
            "opened_at": iso_z(self.opened_at),
            "title": self.title,
            "symptoms": list(self.symptoms),
            "root_cause": self.root_cause.to_data(),
        }


@dataclass(frozen=True)
class KnowledgeSection:
    """One ``##`` section of a document; text before the first one is named after the title."""

    heading: str
    text: str


@dataclass(frozen=True)
class KnowledgeDoc:
    id: str
    type: DocType
    services: tuple[str, ...]
    updated: datetime
    title: str
    sections: tuple[KnowledgeSection, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        _set(self, "updated", utc(self.updated, "updated"))
        _set(self, "type", DocType(self.type))
