"""X-Ray traces and the service graph: ``GetTraceSummaries`` (with an escaped filter expression)
then ``BatchGetTraces`` for the spans, and ``GetServiceGraph`` for nodes and edges, with edge
targets resolved to names and error and fault rates from X-Ray's error (4xx) and fault (5xx)
statistics over the total count."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from opx.security.redaction import Redactor
from opx.tools.aws.calls import Gatherer, as_dict
from opx.tools.aws.mapping import split_node
from opx.tools.records import JsonDict, Span

BATCH_TRACES = 5  # BatchGetTraces' limit per request
MAX_SUMMARY_WINDOW = timedelta(hours=6)  # GetTraceSummaries' longest time range
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Subsegments in these namespaces are calls to another node of the graph.
_DOWNSTREAM = {"remote": "remote", "aws": None}
# Names a segment as a service: (X-Ray name, X-Ray type or origin) -> the reported name.
Resolve = Callable[[str, str | None], str]


def quote(value: str) -> str:
    """An X-Ray filter-expression string holding ``value`` literally (escaped)."""
    text = _CONTROL.sub("", value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def filter_expression(nodes: Sequence[str], errors_only: bool) -> str | None:
    """Traces through any of ``nodes`` (X-Ray node names, ``<name>_<type>`` or a bare name),
    optionally only those with an error or a fault; None when nothing is filtered."""
    clauses = []
    for node in nodes:
        name, node_type = split_node(node)
        if node_type is None:
            clauses.append(f"service({quote(name)})")
        else:
            clauses.append(f"service(id(name: {quote(name)}, type: {quote(node_type)}))")
    parts = []
    if clauses:
        parts.append(clauses[0] if len(clauses) == 1 else "(" + " OR ".join(clauses) + ")")
    if errors_only:
        parts.append("(error = true OR fault = true)")
    return " AND ".join(parts) or None


def _slices(start: datetime, end: datetime) -> Iterable[tuple[datetime, datetime]]:
    at = start
    while at < end:
        stop = min(end, at + MAX_SUMMARY_WINDOW)
        yield at, stop
        at = stop


def trace_ids(
    client: Any,
    gatherer: Gatherer,
    window: tuple[datetime, datetime],
    expression: str | None,
    *,
    max_traces: int,
    max_pages: int,
) -> list[str]:
    """Ids of the traces in the window matching ``expression``, earliest first (X-Ray ids start
    with the trace's start time), at most ``max_traces``."""
    found: set[str] = set()
    for lo, hi in _slices(*window):
        token: str | None = None
        for _ in range(max_pages):
            params: JsonDict = {"StartTime": lo, "EndTime": hi, "Sampling": False}
            if expression:
                params["FilterExpression"] = expression
            if token:
                params["NextToken"] = token
            page = gatherer.call(partial(client.get_trace_summaries, **params), "GetTraceSummaries")
            if page is None:
                break
            found.update(str(s["Id"]) for s in page.get("TraceSummaries", []) if s.get("Id"))
            token = page.get("NextToken")
            if not token:
                break
        else:
            gatherer.dropped = True
        if gatherer.stopped:
            break
    ordered = sorted(found)
    if len(ordered) > max_traces:
        gatherer.dropped = True
    return ordered[:max_traces]


def segment_documents(client: Any, gatherer: Gatherer, ids: Sequence[str]) -> list[JsonDict]:
    """The segment documents of the traces, five traces per request."""
    documents: list[JsonDict] = []
    for first in range(0, len(ids), BATCH_TRACES):
        if gatherer.stopped:
            gatherer.dropped = True
            break
        batch = list(ids[first : first + BATCH_TRACES])
        page = gatherer.call(partial(client.batch_get_traces, TraceIds=batch), "BatchGetTraces")
        for trace in (page or {}).get("Traces", []):
            for segment in trace.get("Segments", []):
                document = _document(segment.get("Document"))
                if document is not None:
                    documents.append(document)
    return documents


def _document(text: object) -> JsonDict | None:
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def spans_of(document: JsonDict, resolve: Resolve, redactor: Redactor) -> list[Span]:
    """The span of a segment and of each of its subsegments (a call to another node is
    reported under that node's name)."""
    trace_id = str(document.get("trace_id", ""))
    service = resolve(str(document.get("name", "")), _origin(document))
    spans: list[Span] = []
    _collect(document, trace_id, document.get("parent_id"), service, resolve, redactor, spans)
    return spans


def _origin(document: JsonDict) -> str | None:
    origin = document.get("origin")
    return origin if isinstance(origin, str) and origin else None


def _collect(
    doc: JsonDict,
    trace_id: str,
    parent: object,
    service: str,
    resolve: Resolve,
    redactor: Redactor,
    into: list[Span],
) -> None:
    span = _span(doc, trace_id, parent, service, redactor)
    if span is not None:
        into.append(span)
    for sub in doc.get("subsegments") or ():
        if not isinstance(sub, dict):
            continue
        namespace = str(sub.get("namespace", ""))
        owner = service
        if namespace in _DOWNSTREAM:
            name = str(sub.get("name", ""))
            owner = resolve(name, _DOWNSTREAM[namespace] or f"AWS::{name}")
        _collect(sub, trace_id, doc.get("id"), owner, resolve, redactor, into)


def _span(
    doc: JsonDict, trace_id: str, parent: object, service: str, redactor: Redactor
) -> Span | None:
    start, end = doc.get("start_time"), doc.get("end_time", doc.get("start_time"))
    if not isinstance(start, int | float) or not isinstance(end, int | float) or not doc.get("id"):
        return None
    http = as_dict(doc.get("http"))
    status = (http.get("response") or {}).get("status")
    return Span(
        trace_id=trace_id,
        span_id=str(doc["id"]),
        parent_id=str(parent) if parent else None,
        service=service,
        operation=redactor.text(_operation(doc, http)),
        start=datetime.fromtimestamp(float(start), UTC),
        duration_ms=max(0.0, (float(end) - float(start)) * 1000.0),
        error=bool(doc.get("error")),
        fault=bool(doc.get("fault")),
        status_code=status if isinstance(status, int) else None,
    )


def _operation(doc: JsonDict, http: JsonDict) -> str:
    aws = as_dict(doc.get("aws"))
    if isinstance(aws.get("operation"), str):
        return str(aws["operation"])
    request = http.get("request") or {}
    url, method = request.get("url"), request.get("method")
    if isinstance(url, str) and url:
        # The path names the operation; the query string is user data and is dropped.
        path = urlsplit(url).path or "/"
        return f"{method} {path}" if isinstance(method, str) else path
    return str(doc.get("name", ""))


@dataclass
class _Counts:
    total: int = 0
    errors: int = 0
    faults: int = 0

    def add(self, stats: object) -> None:
        if not isinstance(stats, dict):
            return
        self.total += int(stats.get("TotalCount") or 0)
        self.errors += int((stats.get("ErrorStatistics") or {}).get("TotalCount") or 0)
        self.faults += int((stats.get("FaultStatistics") or {}).get("TotalCount") or 0)

    def data(self) -> JsonDict:
        share = (lambda n: round(n / self.total, 4)) if self.total else (lambda n: 0.0)
        return {
            "requests": self.total,
            "error_rate": share(self.errors),
            "fault_rate": share(self.faults),
        }


@dataclass
class GraphParts:
    """Nodes (name → type and counts) and edges ((source, target) → counts) of the graph."""

    types: dict[str, str | None] = field(default_factory=dict)
    nodes: dict[str, _Counts] = field(default_factory=dict)
    edges: dict[tuple[str, str], _Counts] = field(default_factory=dict)

    def add_node(self, name: str, node_type: str | None) -> _Counts:
        if self.types.get(name) is None:
            self.types[name] = node_type
        return self.nodes.setdefault(name, _Counts())

    def data(self) -> tuple[list[JsonDict], list[JsonDict]]:
        nodes = [
            {"name": n, "type": self.types.get(n), **self.nodes[n].data()}
            for n in sorted(self.nodes)
        ]
        edges = [
            {"source": s, "target": t, **self.edges[(s, t)].data()} for s, t in sorted(self.edges)
        ]
        return nodes, edges


def service_graph(
    client: Any,
    gatherer: Gatherer,
    window: tuple[datetime, datetime],
    resolve: Resolve,
    *,
    max_pages: int,
) -> GraphParts:
    """The X-Ray service graph of the window: every page is read before edges are resolved,
    since an edge may name a node on another page."""
    services: list[JsonDict] = []
    token: str | None = None
    for _ in range(max_pages):
        params: JsonDict = {"StartTime": window[0], "EndTime": window[1]}
        if token:
            params["NextToken"] = token
        page = gatherer.call(partial(client.get_service_graph, **params), "GetServiceGraph")
        if page is None:
            break
        services += [s for s in page.get("Services", []) if isinstance(s, dict)]
        token = page.get("NextToken")
        if not token:
            break
    else:
        gatherer.dropped = True
    return _graph(services, resolve)


def _graph(services: Sequence[JsonDict], resolve: Resolve) -> GraphParts:
    names = {
        s.get("ReferenceId"): resolve(str(s.get("Name", "")), s.get("Type") or None)
        for s in services
        if s.get("Name")
    }
    parts = GraphParts()
    for service in services:
        source = names.get(service.get("ReferenceId"))
        if source is None:
            continue
        parts.add_node(source, service.get("Type") or None).add(service.get("SummaryStatistics"))
        for edge in service.get("Edges") or ():
            target = names.get(edge.get("ReferenceId"))
            if target is None or target == source:
                continue
            counts = parts.edges.setdefault((source, target), _Counts())
            counts.add(edge.get("SummaryStatistics"))
    return parts
