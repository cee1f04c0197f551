"""``opx snapshot EVENT.json --out DIR``: capture, through the AWS telemetry source, what an
incident's analysis would read (the incident window and the baseline before it) into a local
bundle (docs/bundle-format.md), so that the incident can be analysed and replayed offline.

A source that cannot be read at all is recorded in the manifest's ``missing_sources`` with a
warning and its file is not written; a source read only in part is listed in
``partial_sources``. A read that succeeds with no data counts as read. The command fails (exit 3)
only when every source failed. AWS access honours the standard SDK configuration
(``AWS_PROFILE``, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from opx.config import ConfigError, load_settings
from opx.domain.errors import InputRejected
from opx.domain.incident import Incident
from opx.domain.tool_result import ToolResult, ToolStatus
from opx.runtime.intake import MAX_EVENT_BYTES, Accepted, parse_event
from opx.tools.base import TelemetryTools
from opx.tools.bundle import FORMAT, BundleError, load_bundle
from opx.tools.paging import collect
from opx.tools.records import iso_z

EXIT_OK, EXIT_REJECTED, EXIT_INFRA = 0, 2, 3
SOURCES = ("graph", "metrics", "logs", "traces", "changes", "incidents", "knowledge")
MAX_SERVICES = 50
MAX_INCIDENTS = 50
MAX_DOCUMENTS = 10
# Widens the tools to services found on the way (the AWS source reads them when not told one).
Widen = Callable[[Sequence[str]], TelemetryTools]
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class SourceRead:
    """What one source gave: its records and how the reads went."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reads: int = 0
    failures: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)

    def take(self, status: ToolStatus, errors: Iterable[Any], truncated: bool = False) -> bool:
        """Count one collected read; True when it gave data to keep."""
        messages = [f"{e.code}: {e.message}" for e in errors]
        if status is ToolStatus.FAILED:
            self.failures += messages or ["failed"]
            return False
        self.reads += 1
        if status is ToolStatus.PARTIAL or truncated:
            self.partial += messages or ["truncated: more data than the tools return"]
        return True

    @property
    def missing(self) -> bool:
        return self.reads == 0

    def add(self, key: str, items: Iterable[dict[str, Any]]) -> None:
        self.records.setdefault(key, []).extend(items)


@dataclass
class Capture:
    incident: Incident
    baseline_start: datetime
    source_name: str
    sources: dict[str, SourceRead] = field(
        default_factory=lambda: {name: SourceRead() for name in SOURCES}
    )
    metric_directions: dict[str, str] = field(default_factory=dict)


def _collected(read: SourceRead, call: Callable[[str | None], ToolResult]) -> dict[str, Any]:
    result = collect(call)
    return result.data if read.take(result.status, result.errors, result.truncated) else {}


def capture(
    tools: TelemetryTools, incident: Incident, baseline: timedelta, widen: Widen | None = None
) -> Capture:
    """Everything the analysis of ``incident`` would read, from ``tools``. The graph is read
    first; its nodes (with the incident's service) are the services whose telemetry is read."""
    start = incident.window_start - baseline
    end = incident.window_end
    found = Capture(incident, start, tools.source_name, metric_directions=tools.metric_directions)
    graph = _collected(found.sources["graph"], lambda t: tools.get_service_graph(next_token=t))
    found.sources["graph"].add("nodes", graph.get("nodes", []))
    found.sources["graph"].add("edges", graph.get("edges", []))
    services = _services(incident.service, graph.get("nodes", []))
    wide = widen(services) if widen is not None else tools
    _per_service(found, wide, services, start, end)
    _system_wide(found, wide, start, end)
    _history(found, wide, incident)
    _knowledge(found, wide, incident)
    return found


def _services(service: str, nodes: Iterable[dict[str, Any]]) -> list[str]:
    names = sorted({str(n["name"]) for n in nodes if n.get("name")} - {service})
    return [service, *names][:MAX_SERVICES]


def _per_service(
    found: Capture, tools: TelemetryTools, services: Sequence[str], start: datetime, end: datetime
) -> None:
    metrics, logs = found.sources["metrics"], found.sources["logs"]
    for service in services:
        data = _collected(metrics, _metric_pages(tools, service, start, end))
        metrics.add("series", data.get("series", []))
        data = _collected(logs, _log_pages(tools, service, start, end))
        logs.add("events", data.get("events", []))


def _metric_pages(
    tools: TelemetryTools, service: str, start: datetime, end: datetime
) -> Callable[[str | None], ToolResult]:
    return lambda token: tools.get_metrics(start, end, service=service, next_token=token)


def _log_pages(
    tools: TelemetryTools, service: str, start: datetime, end: datetime
) -> Callable[[str | None], ToolResult]:
    return lambda token: tools.search_logs(start, end, service=service, next_token=token)


def _system_wide(found: Capture, tools: TelemetryTools, start: datetime, end: datetime) -> None:
    traces, changes = found.sources["traces"], found.sources["changes"]
    spans = _collected(traces, lambda t: tools.get_traces(start, end, next_token=t))
    traces.add("spans", spans.get("spans", []))
    deployments = _collected(changes, lambda t: tools.list_deployments(start, end, next_token=t))
    config = _collected(changes, lambda t: tools.list_config_changes(start, end, next_token=t))
    changes.add("changes", [*deployments.get("changes", []), *config.get("changes", [])])


def _history(found: Capture, tools: TelemetryTools, incident: Incident) -> None:
    read = found.sources["incidents"]
    incidents: dict[str, dict[str, Any]] = {}
    for service in (incident.service, None):
        result = tools.search_incidents(service=service, limit=MAX_INCIDENTS)
        if read.take(result.status, [result.error] if result.error else [], result.truncated):
            for item in result.data.get("incidents", []):
                incidents.setdefault(str(item["incident_id"]), item)
    for incident_id in sorted(incidents):
        answer = tools.get_resolution(incident_id)
        if answer.status is not ToolStatus.FAILED and answer.data.get("found"):
            incidents[incident_id] = {
                **incidents[incident_id],
                "resolution": answer.data["resolution"],
            }
        elif answer.error is not None:
            read.partial.append(f"{answer.error.code}: {answer.error.message}")
    read.add("incidents", incidents.values())


def _knowledge(found: Capture, tools: TelemetryTools, incident: Incident) -> None:
    read = found.sources["knowledge"]
    queries = [
        q
        for q in (
            incident.title,
            f"{incident.service} {incident.title or ''}".strip(),
            incident.service,
        )
        if q
    ]
    for query in dict.fromkeys(queries):
        result = tools.retrieve_knowledge(query, limit=MAX_DOCUMENTS)
        if read.take(result.status, [result.error] if result.error else [], result.truncated):
            read.add("documents", result.data.get("documents", []))


# -- writing the bundle ------------------------------------------------------------------------


# Sources written as JSON Lines: file, record key, identity fields, order fields.
_JSONL: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {
    "logs": ("logs.jsonl", "events", ("id",), ("timestamp", "id")),
    "traces": ("traces.jsonl", "spans", ("trace_id", "span_id"), ("start", "span_id", "trace_id")),
    "changes": ("changes.jsonl", "changes", ("change_id",), ("timestamp", "change_id")),
    "incidents": ("incidents.jsonl", "incidents", ("incident_id",), ("incident_id",)),
}


def write_bundle(found: Capture, out: Path) -> dict[str, Any]:
    """Write the bundle into ``out`` (created if needed) and return its manifest; a missing
    source gets no file."""
    out.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        read = found.sources[name]
        if read.missing:
            continue
        if name in _JSONL:
            file, key, identity, order = _JSONL[name]
            _write_jsonl(out / file, _unique(read.records.get(key, []), identity, order))
        elif name == "graph":
            _write_graph(read, out)
        elif name == "metrics":
            _write_metrics(read, out)
        else:
            _write_knowledge(read, out, found.incident.window_end)
    manifest = _manifest(found)
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (out / "manifest.json").write_text(text, encoding="utf-8")
    return manifest


def _manifest(found: Capture) -> dict[str, Any]:
    incident = found.incident
    missing = {
        n: "; ".join(dict.fromkeys(r.failures)) for n, r in found.sources.items() if r.missing
    }
    partial = {
        n: "; ".join(dict.fromkeys(r.partial))
        for n, r in found.sources.items()
        if r.partial and not r.missing
    }
    return {
        "format": FORMAT,
        "name": _SAFE_NAME.sub("-", f"snapshot-{incident.incident_id}"),
        "description": f"Telemetry of {incident.service} from {iso_z(found.baseline_start)} to "
        f"{iso_z(incident.window_end)} (incident window from "
        f"{iso_z(incident.window_start)}), captured from {found.source_name}.",
        "metric_directions": dict(sorted(found.metric_directions.items())),
        "snapshot": {
            "incident_id": incident.incident_id,
            "service": incident.service,
            "window_start": iso_z(incident.window_start),
            "window_end": iso_z(incident.window_end),
            "baseline_start": iso_z(found.baseline_start),
            "source": found.source_name,
        },
        "missing_sources": dict(sorted(missing.items())),
        "partial_sources": dict(sorted(partial.items())),
    }


def _unique(
    items: Iterable[dict[str, Any]], key: Sequence[str], order: Sequence[str]
) -> list[dict[str, Any]]:
    kept: dict[tuple[str, ...], dict[str, Any]] = {}
    for item in items:
        kept.setdefault(tuple(str(item.get(k)) for k in key), item)
    return sorted(kept.values(), key=lambda i: tuple(str(i.get(k)) for k in order))


def _write_jsonl(path: Path, items: Iterable[dict[str, Any]]) -> None:
    lines = [json.dumps(item, ensure_ascii=False, sort_keys=True) for item in items]
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _write_graph(read: SourceRead, out: Path) -> None:
    nodes = _unique(read.records.get("nodes", []), ("name",), ("name",))
    edges = _unique(read.records.get("edges", []), ("source", "target"), ("source", "target"))
    document = {
        "nodes": [{"name": n["name"], "type": n.get("type")} for n in nodes],
        "edges": [{"source": e["source"], "target": e["target"]} for e in edges],
    }
    (out / "graph.json").write_text(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def _write_metrics(read: SourceRead, out: Path) -> None:
    points: dict[tuple[str, str, str, str], tuple[str, float]] = {}
    for series in read.records.get("series", []):
        name = (series["service"], series["metric"], series["stat"])
        for stamp, value in zip(series["timestamps"], series["values"], strict=True):
            points[(*name, stamp)] = (series.get("unit") or "", value)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["timestamp", "service", "metric", "stat", "value", "unit"])
    for (service, metric, stat, stamp), (unit, value) in sorted(points.items()):
        writer.writerow([stamp, service, metric, stat, repr(float(value)), unit])
    (out / "metrics.csv").write_text(buffer.getvalue(), encoding="utf-8")


def _write_knowledge(read: SourceRead, out: Path, updated: datetime) -> None:
    """One Markdown document per retrieved document, one section per retrieved excerpt. The
    retrieval does not date documents, so they are dated on the incident's day."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for item in read.records.get("documents", []):
        by_id.setdefault(str(item["document_id"]), []).append(item)
    folder = out / "knowledge"
    folder.mkdir(exist_ok=True)
    used: set[str] = set()
    for document_id in sorted(by_id):
        parts = _unique(by_id[document_id], ("section", "excerpt"), ("section", "excerpt"))
        stem = _SAFE_NAME.sub("-", document_id).strip("-") or "document"
        while stem in used:
            stem += "-1"
        used.add(stem)
        (folder / f"{stem}.md").write_text(_markdown(document_id, parts, updated), encoding="utf-8")


def _markdown(document_id: str, parts: list[dict[str, Any]], updated: datetime) -> str:
    first = parts[0]
    services = sorted({str(s) for p in parts for s in p.get("services", [])})
    lines = [
        "---",
        f"id: {_line(document_id)}",
        f"type: {_line(str(first.get('doc_type') or 'RUNBOOK'))}",
        f"services: {_line(', '.join(services))}",
        f"updated: {updated.date().isoformat()}",
        "---",
        f"# {_line(str(first.get('title') or document_id))}",
    ]
    for index, part in enumerate(parts, start=1):
        lines += [
            "",
            f"## {_line(str(part.get('section') or f'Excerpt {index}'))}",
            "",
            _text(str(part.get("excerpt", ""))),
        ]
    return "\n".join(lines) + "\n"


def _line(text: str) -> str:
    return " ".join(text.split())


def _text(text: str) -> str:
    # An excerpt is one line; one that starts like a heading or a header rule stays text.
    flat = _line(text)
    return "\\" + flat if flat.startswith(("#", "---")) else flat


# -- the command -------------------------------------------------------------------------------


def _fail(code: int, message: str) -> NoReturn:
    typer.echo(f"opx: {message}", err=True)
    raise typer.Exit(code)


def _incident(event: Path) -> Incident:
    if not event.is_file():
        _fail(EXIT_REJECTED, f"event file not found: {event}")
    with event.open("rb") as handle:
        raw = handle.read(MAX_EVENT_BYTES + 1)
    try:
        parsed = parse_event(raw)
    except InputRejected as exc:
        _fail(EXIT_REJECTED, str(exc))
    if not isinstance(parsed, Accepted):
        _fail(EXIT_REJECTED, f"the alarm is {parsed.state}, not firing: nothing to capture")
    return parsed.incident


def _aws_tools(config: Path | None, incident: Incident) -> tuple[TelemetryTools, Widen]:
    from opx.tools.aws import AwsTelemetrySource, load_aws_settings  # noqa: PLC0415 (boto3)
    from opx.tools.aws.mapping import MappingError  # noqa: PLC0415

    try:
        settings = load_aws_settings(os.environ, config)
    except MappingError as exc:
        _fail(EXIT_REJECTED, str(exc))
    window = (incident.window_start, incident.window_end)
    source = AwsTelemetrySource(settings, services=[incident.service], graph_window=window)
    return source, source.with_services


def snapshot_command(
    event: Annotated[Path, typer.Argument(help="The incident event (EventBridge JSON).")],
    out: Annotated[
        Path, typer.Option("--out", help="Bundle directory to create (empty).", file_okay=False)
    ],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="AWS mapping file (TOML); default: $OPX_AWS_CONFIG, else built-in rules.",
        ),
    ] = None,
    baseline_hours: Annotated[
        float | None,
        typer.Option(
            "--baseline-hours",
            min=0.0,
            max=168.0,
            help="Baseline hours before the window; default: $OPX_BASELINE_LOOKBACK_HOURS or 24.",
        ),
    ] = None,
) -> None:
    """Capture an incident's telemetry from AWS into a local bundle for offline analysis.

    Exit codes: 0 captured (missing sources are listed in the manifest), 2 rejected input,
    3 every source failed.
    """
    incident = _incident(event)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        _fail(EXIT_REJECTED, f"{out} exists and is not an empty directory")
    try:
        hours = (
            baseline_hours
            if baseline_hours is not None
            else (load_settings().baseline_lookback_hours)
        )
    except ConfigError as exc:
        _fail(EXIT_REJECTED, str(exc))
    tools, widen = _aws_tools(config, incident)
    found = capture(tools, incident, timedelta(hours=hours), widen)
    if all(r.missing for r in found.sources.values()):
        reasons = "; ".join(
            f"{n}: {r.failures[0] if r.failures else 'failed'}" for n, r in found.sources.items()
        )
        _fail(EXIT_INFRA, f"every source failed, nothing captured ({reasons})")
    manifest = write_bundle(found, out)
    _report(found, manifest, out)


def _report(found: Capture, manifest: dict[str, Any], out: Path) -> None:
    for name, reason in manifest["missing_sources"].items():
        typer.echo(
            f"warning: {name} could not be read and is missing from the bundle: {reason}", err=True
        )
    for name, reason in manifest["partial_sources"].items():
        typer.echo(f"warning: {name} was read only in part: {reason}", err=True)
    try:
        loaded = load_bundle(out)
    except BundleError as exc:
        _fail(EXIT_INFRA, f"the written bundle does not load: {exc}")
    for name, reason in loaded.unavailable_sources.items():
        typer.echo(f"warning: {name} was written but does not load: {reason}", err=True)
    counts = {n: sum(len(v) for v in r.records.values()) for n, r in found.sources.items()}
    typer.echo(
        json.dumps(
            {
                "bundle": str(out),
                "records": counts,
                "missing_sources": sorted(manifest["missing_sources"]),
            },
            indent=2,
        )
    )
