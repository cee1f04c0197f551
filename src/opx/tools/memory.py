"""The telemetry tools over typed records held in memory (the local source behind bundles)."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, TypeVar

from opx.domain.errors import ErrorCode
from opx.domain.tool_result import MAX_TOOL_RESULT_BYTES, ToolResult, ToolStatus
from opx.tools.paging import (
    Column,
    Cursor,
    Entry,
    PageEntry,
    SplitEntry,
    SplitItem,
    TokenError,
    fingerprint,
    json_size,
    pack,
    page_budget,
    paged_result,
    shrink_to_fit,
)
from opx.tools.records import (
    Change,
    ChangeKind,
    JsonDict,
    KnowledgeDoc,
    LogEvent,
    MetricSeries,
    PastIncident,
    ServiceGraph,
    Span,
    iso_z,
    utc,
)
from opx.tools.text_search import Bm25Index, excerpt, query_terms, tokenize

MAX_INCIDENTS = 50
MAX_DOCUMENTS = 10
EXCERPT_CHARS = 400
DIRECTIONS = frozenset({"up", "down", "both"})
# Metric queries whose series windows are kept between pages; a reader pages through a few
# queries at a time (one per service and window), so this comfortably covers interleaving.
WINDOW_CACHE_QUERIES = 256

T = TypeVar("T")

# get_traffic keeps the request/error/latency/availability families, recognised by words in
# the metric name (lower-cased, punctuation removed). Error words are checked first so that
# e.g. an error count is not taken for a request count.
TRAFFIC_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("error", ("error", "fault", "5xx", "4xx", "throttl", "fail", "timeout", "exception")),
    ("latency", ("latency", "duration", "responsetime", "elapsed")),
    ("availability", ("availability", "success", "healthy", "uptime")),
    ("request", ("request", "invocation", "throughput", "rps", "calls", "hits", "traffic")),
)


class Source(StrEnum):
    """The data sources of a bundle; a source that failed to load fails its tools."""

    METRICS = "metrics"
    LOGS = "logs"
    TRACES = "traces"
    GRAPH = "graph"
    CHANGES = "changes"
    INCIDENTS = "incidents"
    KNOWLEDGE = "knowledge"


class _BadInput(Exception):
    """A caller argument the tools cannot answer for; becomes FAILED/INVALID_INPUT."""


def traffic_family(metric: str) -> str | None:
    """``request``, ``error``, ``latency`` or ``availability`` for a traffic metric, else None."""
    flat = re.sub(r"[^a-z0-9]", "", metric.lower())
    if flat == "count":
        return "request"
    for family, words in TRAFFIC_FAMILIES:
        if any(word in flat for word in words):
            return family
    return None


@dataclass(frozen=True)
class _Selection:
    """Which series a metrics query reads; hashable so that its windows can be cached."""

    service: str | None = None
    metric: str | None = None
    stat: str | None = None
    traffic_only: bool = False

    def admits(self, series: MetricSeries) -> bool:
        return (
            (self.service is None or series.service == self.service)
            and (self.metric is None or series.metric == self.metric)
            and (self.stat is None or series.stat == self.stat)
            and (not self.traffic_only or traffic_family(series.metric) is not None)
        )


# A series and the index range ``[start, stop)`` of its points inside a query's time window.
_Window = tuple[MetricSeries, int, int]


@dataclass(frozen=True)
class _Section:
    doc: KnowledgeDoc
    heading: str
    text: str


class InMemoryTools:
    """Every :class:`~opx.tools.base.TelemetryTools` method over in-memory records.

    Beyond the protocol it exposes ``metric_directions`` (metric name → ``up``/``down``/``both``:
    which way is bad; names not listed use the analysts' defaults) and ``unavailable_sources``
    (source → why it could not be loaded). Ties in time order are broken by input order for
    logs, by ``(span_id, trace_id)`` for spans and by ``change_id`` for changes.
    """

    def __init__(
        self,
        name: str,
        *,
        series: Iterable[MetricSeries] = (),
        logs: Iterable[LogEvent] = (),
        spans: Iterable[Span] = (),
        graph: ServiceGraph | None = None,
        changes: Iterable[Change] = (),
        incidents: Iterable[PastIncident] = (),
        documents: Iterable[KnowledgeDoc] = (),
        metric_directions: Mapping[str, str] | None = None,
        unavailable: Mapping[Source, str] | None = None,
    ) -> None:
        self._name = name
        self._series = _unique(
            sorted(series, key=lambda s: (s.service, s.metric, s.stat)),
            lambda s: s.id,
            "metric series",
        )
        self._logs = sorted(logs, key=lambda e: e.timestamp)
        self._log_times = [e.timestamp for e in self._logs]
        self._spans = sorted(spans, key=lambda s: (s.start, s.span_id, s.trace_id))
        self._span_times = [s.start for s in self._spans]
        self._graph = graph or ServiceGraph()
        self._changes = _unique(
            sorted(changes, key=lambda c: (c.timestamp, c.change_id)),
            lambda c: c.change_id,
            "change",
        )
        by_id = sorted(incidents, key=lambda i: i.incident_id)
        self._incidents = _unique(
            sorted(by_id, key=lambda i: i.opened_at, reverse=True),
            lambda i: i.incident_id,
            "incident",
        )
        self._incident_by_id = {i.incident_id: i for i in self._incidents}
        docs = _unique(sorted(documents, key=lambda d: d.id), lambda d: d.id, "document")
        self._sections = [_Section(d, s.heading, s.text) for d in docs for s in d.sections]
        self._index = Bm25Index([_section_text(s) for s in self._sections])
        self._directions = _check_directions(metric_directions or {})
        self._unavailable = {Source(k): v for k, v in (unavailable or {}).items()}
        # Records never change, so each series is rendered and measured at most once (on first
        # read), and each query's windows once for all its pages rather than once per page.
        self._stamp_text: dict[datetime, str] = {}
        self._grids: dict[tuple[datetime, ...], Column] = {}
        self._measured: dict[str, SplitItem] = {}
        self._windows = lru_cache(maxsize=WINDOW_CACHE_QUERIES)(self._find_windows)

    @property
    def source_name(self) -> str:
        return self._name

    @property
    def metric_directions(self) -> dict[str, str]:
        """Which way is bad per metric name (``up``, ``down`` or ``both``), as configured."""
        return dict(self._directions)

    @property
    def unavailable_sources(self) -> dict[str, str]:
        """Sources that could not be loaded, with the reason; their tools return FAILED."""
        return {k.value: v for k, v in sorted(self._unavailable.items())}

    # -- metrics -------------------------------------------------------------------------------

    def list_metrics(self, service: str | None = None, next_token: str | None = None) -> ToolResult:
        chosen = [s for s in self._series if service is None or s.service == service]

        def render(i: int) -> Entry:
            return Entry("metrics", chosen[i].header())

        return self._run(
            Source.METRICS,
            lambda: self._page(
                ("metrics",), len(chosen), render, next_token, "list_metrics", service
            ),
        )

    def get_metrics(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        metric: str | None = None,
        stat: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult:
        def body() -> ToolResult:
            lo, hi = _window(start, end)
            selection = _Selection(service, metric, stat)
            query = ("get_metrics", lo, hi, service, metric, stat)
            return self._series_page(selection, lo, hi, next_token, query)

        return self._run(Source.METRICS, body)

    def get_traffic(
        self, service: str, start: datetime, end: datetime, next_token: str | None = None
    ) -> ToolResult:
        def body() -> ToolResult:
            lo, hi = _window(start, end)
            if not service:
                raise _BadInput("service is required")
            selection = _Selection(service, traffic_only=True)
            query = ("get_traffic", lo, hi, service)
            return self._series_page(selection, lo, hi, next_token, query)

        return self._run(Source.METRICS, body)

    def _series_page(
        self,
        selection: _Selection,
        lo: datetime,
        hi: datetime,
        token: str | None,
        query: tuple[object, ...],
    ) -> ToolResult:
        windows = self._windows(selection, lo, hi)

        def render(i: int) -> PageEntry:
            series, first, stop = windows[i]
            return SplitEntry("series", self._measure(series), first, stop)

        return self._page(("series",), len(windows), render, token, *query)

    def _find_windows(
        self, selection: _Selection, lo: datetime, hi: datetime
    ) -> tuple[_Window, ...]:
        """The selected series with points in ``[lo, hi)``, and where those points are."""
        found = []
        for series in self._series:
            if selection.admits(series):
                first = bisect_left(series.timestamps, lo)
                stop = bisect_left(series.timestamps, hi)
                if stop > first:
                    found.append((series, first, stop))
        return tuple(found)

    def _measure(self, series: MetricSeries) -> SplitItem:
        """The series as a measured ``get_metrics`` item, built on its first read."""
        measured = self._measured.get(series.id)
        if measured is None:
            columns = {
                "timestamps": self._stamp_column(series.timestamps),
                "values": Column.of(list(series.values)),
            }
            item = SplitItem.from_columns(series.header(), columns)
            measured = self._measured.setdefault(series.id, item)
        return measured

    def _stamp_column(self, stamps: tuple[datetime, ...]) -> Column:
        """Rendered and measured timestamps; series on the same time grid share one column."""
        column = self._grids.get(stamps)
        if column is None:
            column = self._grids.setdefault(stamps, Column.of(self._render_stamps(stamps)))
        return column

    def _render_stamps(self, stamps: Sequence[datetime]) -> list[str]:
        # Grids that differ only in extent still share instants: render each instant once.
        known = self._stamp_text
        missing = {t for t in stamps if t not in known}
        known.update((t, iso_z(t)) for t in missing)
        return [known[t] for t in stamps]

    # -- logs and traces -----------------------------------------------------------------------

    def search_logs(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        pattern: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult:
        def body() -> ToolResult:
            lo, hi = _window(start, end)
            # A plain case-insensitive substring, never a regular expression.
            needle = None if pattern is None else pattern.casefold()
            window = self._logs[bisect_left(self._log_times, lo) : bisect_left(self._log_times, hi)]
            chosen = [
                e
                for e in window
                if (service is None or e.service == service)
                and (needle is None or needle in e.message.casefold())
            ]

            def render(i: int) -> Entry:
                return Entry("events", chosen[i].to_data())

            return self._page(
                ("events",),
                len(chosen),
                render,
                next_token,
                "search_logs",
                lo,
                hi,
                service,
                pattern,
            )

        return self._run(Source.LOGS, body)

    def get_traces(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        errors_only: bool = False,
        next_token: str | None = None,
    ) -> ToolResult:
        def body() -> ToolResult:
            lo, hi = _window(start, end)
            times = self._span_times
            window = self._spans[bisect_left(times, lo) : bisect_left(times, hi)]
            chosen = [
                s
                for s in window
                if (service is None or s.service == service)
                and (not errors_only or s.error or s.fault)
            ]

            def render(i: int) -> Entry:
                return Entry("spans", chosen[i].to_data())

            return self._page(
                ("spans",),
                len(chosen),
                render,
                next_token,
                "get_traces",
                lo,
                hi,
                service,
                errors_only,
            )

        return self._run(Source.TRACES, body)

    # -- graph and changes ---------------------------------------------------------------------

    def get_service_graph(self, next_token: str | None = None) -> ToolResult:
        nodes, edges = self._graph.nodes, self._graph.edges

        def render(i: int) -> Entry:
            if i < len(nodes):
                return Entry("nodes", nodes[i].to_data())
            return Entry("edges", edges[i - len(nodes)].to_data())

        return self._run(
            Source.GRAPH,
            lambda: self._page(
                ("nodes", "edges"), len(nodes) + len(edges), render, next_token, "get_service_graph"
            ),
        )

    def list_deployments(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult:
        kinds = frozenset({ChangeKind.DEPLOYMENT})
        return self._changes_page(kinds, start, end, service, next_token)

    def list_config_changes(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult:
        kinds = frozenset({ChangeKind.CONFIG, ChangeKind.INFRASTRUCTURE})
        return self._changes_page(kinds, start, end, service, next_token)

    def _changes_page(
        self,
        kinds: frozenset[ChangeKind],
        start: datetime,
        end: datetime,
        service: str | None,
        token: str | None,
    ) -> ToolResult:
        def body() -> ToolResult:
            lo, hi = _window(start, end)
            chosen = [
                c
                for c in self._changes
                if c.kind in kinds
                and lo <= c.timestamp < hi
                and (service is None or c.service == service)
            ]

            def render(i: int) -> Entry:
                return Entry("changes", chosen[i].to_data())

            return self._page(
                ("changes",), len(chosen), render, token, "changes", sorted(kinds), lo, hi, service
            )

        return self._run(Source.CHANGES, body)

    # -- history and knowledge -----------------------------------------------------------------

    def search_incidents(
        self, service: str | None = None, text: str | None = None, limit: int = 10
    ) -> ToolResult:
        def body() -> ToolResult:
            count = _limit(limit, MAX_INCIDENTS)
            terms = set(query_terms(text or ""))
            chosen = [i for i in self._incidents if _incident_matches(i, service, terms)][:count]
            return self._bounded_list("incidents", [i.to_data() for i in chosen])

        return self._run(Source.INCIDENTS, body)

    def get_resolution(self, incident_id: str) -> ToolResult:
        def body() -> ToolResult:
            incident = self._incident_by_id.get(incident_id)
            resolution = None if incident is None else incident.resolution
            data = {
                "incident_id": incident_id,
                "found": resolution is not None,
                "resolution": None if resolution is None else resolution.to_data(),
            }
            return self._bounded_object(data)

        return self._run(Source.INCIDENTS, body)

    def retrieve_knowledge(self, query: str, limit: int = 5) -> ToolResult:
        def body() -> ToolResult:
            count = _limit(limit, MAX_DOCUMENTS)
            hits = [(round(h.score, 4), self._sections[h.index]) for h in self._index.search(query)]
            hits.sort(key=lambda h: (-h[0], h[1].doc.id, h[1].heading))
            found = [_knowledge_item(section, score, query) for score, section in hits[:count]]
            return self._bounded_list("documents", found)

        return self._run(Source.KNOWLEDGE, body)

    # -- plumbing ------------------------------------------------------------------------------

    def _run(self, source: Source, body: Callable[[], ToolResult]) -> ToolResult:
        """The answer of ``body``, or FAILED when the source is down or the input is bad."""
        reason = self._unavailable.get(source)
        if reason is not None:
            return ToolResult.failed(self._name, ErrorCode.DATA_SOURCE_UNAVAILABLE, reason)
        try:
            return body()
        except (_BadInput, TokenError) as exc:
            return ToolResult.failed(self._name, ErrorCode.INVALID_INPUT, str(exc))

    def _page(
        self,
        keys: Sequence[str],
        count: int,
        render: Callable[[int], PageEntry],
        token: str | None,
        *query: object,
    ) -> ToolResult:
        return paged_result(
            source=self._name,
            keys=keys,
            count=count,
            render=render,
            next_token=token,
            query=fingerprint(self._name, *query),
        )

    def _bounded_list(self, key: str, items: list[JsonDict]) -> ToolResult:
        """A single page of ``items``; what does not fit is dropped and marked truncated."""
        budget = page_budget(self._name, (key,), "0" * 16)
        page = pack(
            count=len(items),
            render=lambda i: Entry(key, items[i]),
            cursor=Cursor(),
            budget=budget,
            keys=(key,),
        )
        return ToolResult(
            status=ToolStatus.SUCCESS,
            data=dict(page.data),
            source=self._name,
            truncated=page.truncated or page.next is not None,
        )

    def _bounded_object(self, data: JsonDict) -> ToolResult:
        result = ToolResult(status=ToolStatus.SUCCESS, data=data, source=self._name)
        if result.size_bytes() <= MAX_TOOL_RESULT_BYTES:
            return result
        room = MAX_TOOL_RESULT_BYTES - (result.size_bytes() - json_size(data)) - 8
        shrunk = shrink_to_fit(data, room)
        if shrunk is None:
            return ToolResult.failed(self._name, ErrorCode.INTERNAL_ERROR, "answer too large")
        return ToolResult(status=ToolStatus.SUCCESS, data=shrunk, source=self._name, truncated=True)


def _window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The UTC window ``[start, end)``; naive or reversed bounds are rejected."""
    try:
        lo, hi = utc(start, "start"), utc(end, "end")
    except ValueError as exc:
        raise _BadInput(str(exc)) from exc
    if lo > hi:
        raise _BadInput(f"start {iso_z(lo)} is after end {iso_z(hi)}")
    return lo, hi


def _limit(limit: int, cap: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise _BadInput(f"limit must be a whole number >= 1, not {limit!r}")
    return min(limit, cap)


def _incident_matches(incident: PastIncident, service: str | None, terms: set[str]) -> bool:
    if service is not None and service not in (incident.service, incident.root_cause.service):
        return False
    if not terms:
        return True
    words = set(tokenize(" ".join((incident.title, *incident.symptoms))))
    return not terms.isdisjoint(words)


def _section_text(section: _Section) -> str:
    doc = section.doc
    return " ".join((doc.title, " ".join(doc.services), section.heading, section.text))


def _knowledge_item(section: _Section, score: float, query: str) -> JsonDict:
    doc = section.doc
    return {
        "document_id": doc.id,
        "title": doc.title,
        "doc_type": doc.type.value,
        "services": list(doc.services),
        "section": section.heading,
        "excerpt": excerpt(section.text, query, EXCERPT_CHARS),
        "score": score,
    }


def _check_directions(directions: Mapping[str, str]) -> dict[str, str]:
    bad = sorted(f"{k}={v}" for k, v in directions.items() if v not in DIRECTIONS)
    if bad:
        raise ValueError(f"metric directions must be up, down or both: {', '.join(bad)}")
    return dict(sorted(directions.items()))


def _unique(items: list[T], key: Callable[[T], Any], what: str) -> list[T]:
    seen: set[Any] = set()
    for item in items:
        value = key(item)
        if value in seen:
            raise ValueError(f"duplicate {what} id {value!r}")
        seen.add(value)
    return items
