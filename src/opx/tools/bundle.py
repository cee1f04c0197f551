"""Reading a telemetry bundle directory (docs/bundle-format.md) into in-memory tools."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from opx.tools.memory import DIRECTIONS, InMemoryTools, Source
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
    MetricPoint,
    MetricSeries,
    PastIncident,
    Resolution,
    ServiceGraph,
    Span,
    series_id,
)

FORMAT = "opx-bundle/v1"
METRICS_HEADER = ["timestamp", "service", "metric", "stat", "value", "unit"]
_LEVEL_ALIASES = {"WARNING": "WARN", "CRITICAL": "FATAL"}


class BundleError(Exception):
    """The bundle as a whole cannot be read (no directory, no usable manifest)."""


class DataFileError(Exception):
    """One data file is malformed (the message names file and line); the bundle loader makes
    that source unavailable and keeps the others."""


@dataclass(frozen=True)
class Manifest:
    name: str
    description: str = ""
    metric_directions: dict[str, str] = field(default_factory=dict)
    # Sources a snapshot could not read: offline they must stay "unavailable", not "no data".
    missing_sources: dict[str, str] = field(default_factory=dict)


def load_bundle(path: Path) -> InMemoryTools:
    """The tools over the bundle at ``path``; :class:`BundleError` if it is not a bundle. A
    malformed data file only makes its own tools fail (see ``unavailable_sources``)."""
    if not path.is_dir():
        raise BundleError(f"{path}: bundle directory not found")
    manifest = read_manifest(path / "manifest.json")
    loaded: dict[Source, Any] = {}
    unavailable: dict[Source, str] = {
        Source(name): f"not captured when the bundle was made: {reason}"
        for name, reason in manifest.missing_sources.items()
    }
    for source, loader in _LOADERS.items():
        if source in unavailable:
            continue
        try:
            loaded[source] = loader(path)
        except DataFileError as exc:
            unavailable[source] = str(exc)
        except ValueError as exc:
            # A record that passed the file checks but is still inconsistent.
            unavailable[source] = f"{path}: {source.value}: {exc}"
    return InMemoryTools(
        f"bundle:{manifest.name}",
        series=loaded.get(Source.METRICS, ()),
        logs=loaded.get(Source.LOGS, ()),
        spans=loaded.get(Source.TRACES, ()),
        graph=loaded.get(Source.GRAPH),
        changes=loaded.get(Source.CHANGES, ()),
        incidents=loaded.get(Source.INCIDENTS, ()),
        documents=loaded.get(Source.KNOWLEDGE, ()),
        metric_directions=manifest.metric_directions,
        unavailable=unavailable,
    )


def read_manifest(path: Path) -> Manifest:
    """The manifest at ``path``; :class:`BundleError` naming the file (and line) if unusable."""
    if not path.is_file():
        raise BundleError(f"{path}: manifest.json is missing")
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from exc
    except (OSError, UnicodeError) as exc:
        raise BundleError(f"{path}: cannot be read ({exc})") from exc
    if not isinstance(raw, dict):
        raise BundleError(f"{path}: the manifest must be a JSON object")
    if raw.get("format") != FORMAT:
        raise BundleError(f"{path}: format is {raw.get('format')!r}; expected {FORMAT!r}")
    name, description = raw.get("name"), raw.get("description", "")
    if not isinstance(name, str) or not name.strip():
        raise BundleError(f"{path}: name must be a non-empty string")
    if not isinstance(description, str):
        raise BundleError(f"{path}: description must be a string")
    return Manifest(
        name,
        description,
        _directions(path, raw.get("metric_directions", {})),
        _missing(path, raw.get("missing_sources", {})),
    )


def _missing(path: Path, raw: object) -> dict[str, str]:
    known = {source.value for source in Source}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise BundleError(f"{path}: missing_sources must map source names to reasons")
    unknown = sorted(set(raw) - known)
    if unknown:
        raise BundleError(
            f"{path}: missing_sources names unknown source(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(sorted(known))}"
        )
    return dict(sorted(raw.items()))


def _directions(path: Path, raw: object) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise BundleError(f"{path}: metric_directions must be an object")
    for metric, direction in sorted(raw.items()):
        if direction not in DIRECTIONS:
            raise BundleError(
                f"{path}: metric_directions[{metric!r}] is {direction!r}; "
                "expected 'up', 'down' or 'both'"
            )
    return dict(sorted(raw.items()))


# -- field access ------------------------------------------------------------------------------


def parse_time(text: object, where: str) -> datetime:
    """A timezone-aware ISO-8601 time (``Z`` or an offset) converted to UTC."""
    if not isinstance(text, str):
        raise DataFileError(f"{where}: expected an ISO-8601 time string, got {text!r}")
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise DataFileError(f"{where}: {text!r} is not an ISO-8601 time") from exc
    if value.tzinfo is None or value.utcoffset() is None:
        raise DataFileError(
            f"{where}: time {text!r} has no time zone; add 'Z' or an offset such as +00:00"
        )
    return value.astimezone(UTC)


@dataclass(frozen=True)
class _Row:
    """One JSON object with its location, for typed reads with clear messages."""

    raw: dict[str, Any]
    where: str

    def _fail(self, key: str, expected: str) -> DataFileError:
        return DataFileError(f"{self.where}: {key!r} must be {expected}, got {self.raw.get(key)!r}")

    def text(self, key: str) -> str:
        value = self.raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self._fail(key, "a non-empty string")
        return value

    def opt_text(self, key: str, default: str | None = None) -> str | None:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._fail(key, "a string or null")
        return value

    def some_text(self, key: str) -> str:
        return self.opt_text(key, "") or ""

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "a list of strings")
        return tuple(value)

    def time(self, key: str) -> datetime:
        return parse_time(self.raw.get(key), f"{self.where}: {key!r}")

    def number(self, key: str) -> float:
        value = self.raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(key, "a finite number")
        if not math.isfinite(value):
            raise self._fail(key, "a finite number")
        return float(value)

    def opt_number(self, key: str) -> float | None:
        return None if self.raw.get(key) is None else self.number(key)

    def flag(self, key: str) -> bool:
        value = self.raw.get(key, False)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value

    def child(self, key: str) -> _Row:
        value = self.raw.get(key)
        if not isinstance(value, dict):
            raise self._fail(key, "an object")
        return _Row(value, f"{self.where}: {key}")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeError) as exc:
        raise DataFileError(f"{path}: cannot be read ({exc})") from exc


def _jsonl(path: Path) -> Iterator[tuple[int, _Row]]:
    """Line number and object of each non-blank line of a JSON Lines file."""
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{where}: invalid JSON ({exc.msg})") from exc
        if not isinstance(raw, dict):
            raise DataFileError(f"{where}: each line must be a JSON object")
        yield number, _Row(raw, where)


def _no_duplicate(seen: set[object], key: object, where: str, what: str) -> None:
    if key in seen:
        raise DataFileError(f"{where}: duplicate {what} {key!r}")
    seen.add(key)


# -- the data files ----------------------------------------------------------------------------


def load_metrics(root: Path) -> list[MetricSeries]:
    path = root / "metrics.csv"
    if not path.is_file():
        return []
    points: dict[tuple[str, str, str], dict[datetime, MetricPoint]] = {}
    units: dict[tuple[str, str, str], str] = {}
    for where, row in _csv_rows(path):
        key, point, unit = _metric_row(row, where)
        # A series whose values are all missing still exists: list_metrics shows it.
        known = points.setdefault(key, {})
        if unit and units.setdefault(key, unit) != unit:
            raise DataFileError(f"{where}: unit {unit!r} differs from {units[key]!r} earlier")
        if point is None:
            continue
        if point.timestamp in known:
            raise DataFileError(f"{where}: duplicate point for {series_id(*key)} at {row[0]}")
        known[point.timestamp] = point
    return [
        MetricSeries.from_points(*key, units.get(key, ""), list(known.values()))
        for key, known in sorted(points.items())
    ]


def _csv_rows(path: Path) -> Iterator[tuple[str, list[str]]]:
    reader = csv.reader(_read_text(path).splitlines())
    try:
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != METRICS_HEADER:
            raise DataFileError(f"{path}:1: header must be {','.join(METRICS_HEADER)}")
        for row in reader:
            if row:
                yield f"{path}:{reader.line_num}", row
    except csv.Error as exc:
        raise DataFileError(f"{path}:{reader.line_num}: {exc}") from exc


def _metric_row(row: list[str], where: str) -> tuple[tuple[str, str, str], MetricPoint | None, str]:
    """The series key, point (None for an empty value: a missing point) and unit of a row."""
    if len(row) != len(METRICS_HEADER):
        raise DataFileError(f"{where}: expected {len(METRICS_HEADER)} columns, got {len(row)}")
    stamp, service, metric, stat, value, unit = (cell.strip() for cell in row)
    if not (service and metric and stat):
        raise DataFileError(f"{where}: service, metric and stat must not be empty")
    when = parse_time(stamp, where)
    if not value:
        return (service, metric, stat), None, unit
    try:
        number = float(value)
    except ValueError as exc:
        raise DataFileError(f"{where}: value {value!r} is not a number") from exc
    if not math.isfinite(number):
        raise DataFileError(f"{where}: value {value!r} is not a finite number")
    return (service, metric, stat), MetricPoint(when, number), unit


def load_logs(root: Path) -> list[LogEvent]:
    path = root / "logs.jsonl"
    if not path.is_file():
        return []
    events, seen = [], set[object]()
    for number, row in _jsonl(path):
        event_id = row.opt_text("id") or f"log-{number}"
        _no_duplicate(seen, event_id, row.where, "log id")
        events.append(
            LogEvent(
                id=event_id,
                timestamp=row.time("timestamp"),
                service=row.text("service"),
                level=_level(row),
                message=row.some_text("message"),
                trace_id=row.opt_text("trace_id"),
                span_id=row.opt_text("span_id"),
            )
        )
    return events


def _level(row: _Row) -> LogLevel:
    text = row.text("level").strip().upper()
    text = _LEVEL_ALIASES.get(text, text)
    if text not in LogLevel.__members__:
        raise DataFileError(f"{row.where}: level {text!r} is not one of {', '.join(LogLevel)}")
    return LogLevel(text)


def load_traces(root: Path) -> list[Span]:
    path = root / "traces.jsonl"
    if not path.is_file():
        return []
    spans, seen = [], set[object]()
    for _, row in _jsonl(path):
        span = _span(row)
        _no_duplicate(seen, (span.trace_id, span.span_id), row.where, "span (trace_id, span_id)")
        spans.append(span)
    return spans


def _span(row: _Row) -> Span:
    duration = row.number("duration_ms")
    if duration < 0:
        raise DataFileError(f"{row.where}: 'duration_ms' must not be negative")
    status = row.opt_number("status_code")
    if status is not None and not status.is_integer():
        raise DataFileError(f"{row.where}: 'status_code' must be a whole number")
    return Span(
        trace_id=row.text("trace_id"),
        span_id=row.text("span_id"),
        parent_id=row.opt_text("parent_id") or None,
        service=row.text("service"),
        operation=row.some_text("operation"),
        start=row.time("start"),
        duration_ms=duration,
        error=row.flag("error"),
        fault=row.flag("fault"),
        status_code=None if status is None else int(status),
    )


def load_graph(root: Path) -> ServiceGraph | None:
    path = root / "graph.json"
    if not path.is_file():
        return None
    try:
        raw = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise DataFileError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from exc
    if not isinstance(raw, dict):
        raise DataFileError(f"{path}: the graph must be a JSON object")
    nodes = [_node(row) for row in _items(raw, "nodes", path)]
    edges = [
        GraphEdge(row.text("source"), row.text("target")) for row in _items(raw, "edges", path)
    ]
    return ServiceGraph(tuple(nodes), tuple(edges))


def _items(raw: dict[str, Any], key: str, path: Path) -> list[_Row]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise DataFileError(f"{path}: {key!r} must be a list")
    rows = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise DataFileError(f"{path}: {key}[{index}] must be an object")
        rows.append(_Row(item, f"{path}: {key}[{index}]"))
    return rows


def _node(row: _Row) -> GraphNode:
    return GraphNode(row.text("name"), row.opt_text("type") or None)


def load_changes(root: Path) -> list[Change]:
    path = root / "changes.jsonl"
    if not path.is_file():
        return []
    changes, seen = [], set[object]()
    for _, row in _jsonl(path):
        change = _change(row)
        _no_duplicate(seen, change.change_id, row.where, "change_id")
        changes.append(change)
    return changes


def _change(row: _Row) -> Change:
    kind = row.text("kind").strip().upper()
    if kind not in ChangeKind.__members__:
        raise DataFileError(f"{row.where}: kind {kind!r} is not one of {', '.join(ChangeKind)}")
    return Change(
        change_id=row.text("change_id"),
        timestamp=row.time("timestamp"),
        kind=ChangeKind(kind),
        event_source=row.some_text("event_source"),
        event_name=row.some_text("event_name"),
        resource=row.some_text("resource"),
        service=row.opt_text("service") or None,
        actor=row.some_text("actor"),
        description=row.some_text("description"),
    )


def load_incidents(root: Path) -> list[PastIncident]:
    path = root / "incidents.jsonl"
    if not path.is_file():
        return []
    incidents, seen = [], set[object]()
    for _, row in _jsonl(path):
        incident = _incident(row)
        _no_duplicate(seen, incident.incident_id, row.where, "incident_id")
        incidents.append(incident)
    return incidents


def _incident(row: _Row) -> PastIncident:
    cause = row.child("root_cause")
    return PastIncident(
        incident_id=row.text("incident_id"),
        service=row.text("service"),
        severity=row.text("severity"),
        opened_at=row.time("opened_at"),
        title=row.text("title"),
        symptoms=row.texts("symptoms"),
        root_cause=IncidentRootCause(
            service=cause.text("service"),
            category=cause.opt_text("category") or "UNKNOWN",
            component=cause.opt_text("component") or None,
        ),
        resolution=None if row.raw.get("resolution") is None else _resolution(row),
    )


def _resolution(row: _Row) -> Resolution:
    fix = row.child("resolution")
    return Resolution(
        type=fix.text("type"),
        summary=fix.some_text("summary"),
        actions=fix.texts("actions"),
        time_to_resolve_minutes=fix.opt_number("time_to_resolve_minutes"),
    )


def load_knowledge(root: Path) -> list[KnowledgeDoc]:
    folder = root / "knowledge"
    if not folder.exists():
        return []
    if not folder.is_dir():
        raise DataFileError(f"{folder}: must be a directory of Markdown files")
    docs, seen = [], set[object]()
    for path in sorted(folder.glob("*.md")):
        doc = parse_knowledge(_read_text(path), str(path))
        _no_duplicate(seen, doc.id, str(path), "document id")
        docs.append(doc)
    return docs


def parse_knowledge(text: str, where: str) -> KnowledgeDoc:
    """A Markdown document with its ``---`` header block; ``where`` names it in errors."""
    lines = text.splitlines()
    header, body_start = _header(lines, where)
    for key in ("id", "type", "updated"):
        if not header.get(key):
            raise DataFileError(f"{where}: the header has no {key!r}")
    doc_type = header["type"].split()[0].upper()
    if doc_type not in DocType.__members__:
        raise DataFileError(f"{where}: type {doc_type!r} is not one of {', '.join(DocType)}")
    title, sections = _sections(lines[body_start:], header["id"])
    return KnowledgeDoc(
        id=header["id"],
        type=DocType(doc_type),
        services=tuple(s.strip() for s in header.get("services", "").split(",") if s.strip()),
        updated=_updated(header["updated"], where),
        title=title,
        sections=sections,
    )


def _header(lines: list[str], where: str) -> tuple[dict[str, str], int]:
    """The ``key: value`` pairs between the first two ``---`` lines, and where the body starts."""
    start = next((i for i, line in enumerate(lines) if line.strip()), None)
    if start is None or lines[start].strip() != "---":
        raise DataFileError(f"{where}:1: a document must start with a '---' header block")
    header: dict[str, str] = {}
    for number in range(start + 1, len(lines)):
        line = lines[number].strip()
        if line == "---":
            return header, number + 1
        key, colon, value = line.partition(":")
        if not colon or not key.strip():
            raise DataFileError(f"{where}:{number + 1}: expected 'key: value' in the header")
        header[key.strip().lower()] = value.strip()
    raise DataFileError(f"{where}: the header block is not closed with '---'")


def _updated(text: str, where: str) -> datetime:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return parse_time(text, f"{where}: 'updated'")
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _sections(lines: list[str], fallback_title: str) -> tuple[str, tuple[KnowledgeSection, ...]]:
    """The ``#`` title and the ``##`` sections; text before the first section is a section
    named after the title. Headings inside fenced code blocks are text."""
    title: str | None = None
    parts: list[tuple[str | None, list[str]]] = [(None, [])]
    fenced = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
        if not fenced and stripped.startswith("# ") and title is None:
            title = stripped[2:].strip()
        elif not fenced and stripped.startswith("## "):
            parts.append((stripped[3:].strip(), []))
        else:
            parts[-1][1].append(line)
    name = title or fallback_title
    sections = tuple(
        KnowledgeSection(heading or name, "\n".join(body).strip())
        for heading, body in parts
        if heading is not None or "\n".join(body).strip()
    )
    return name, sections


_LOADERS: dict[Source, Callable[[Path], Any]] = {
    Source.METRICS: load_metrics,
    Source.LOGS: load_logs,
    Source.TRACES: load_traces,
    Source.GRAPH: load_graph,
    Source.CHANGES: load_changes,
    Source.INCIDENTS: load_incidents,
    Source.KNOWLEDGE: load_knowledge,
}
