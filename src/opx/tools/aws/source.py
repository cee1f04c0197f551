"""The AWS telemetry source: every :class:`~opx.tools.base.TelemetryTools` method over the
customer's account, read-only, with the same data shapes, ordering and 10 KB pages as the local
source. Each call has a deadline; a failed page or request gives PARTIAL with what was gathered,
FAILED when nothing could be read, and never an exception.

A first page always reads AWS afresh; the gathered answer is kept (a few dozen queries) so that
the following pages come from the same data. A token whose answer is no longer kept reads AWS
again and continues from its position.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opx.domain.errors import ErrorCode
from opx.domain.tool_result import ToolResult
from opx.security.readonly import telemetry_policy
from opx.security.redaction import Redactor
from opx.tools.aws import cloudmap, cloudtrail, cloudwatch, dynamodb_history, knowledge_base, xray
from opx.tools.aws import logs as cwlogs
from opx.tools.aws.calls import Gatherer, aws_error_code
from opx.tools.aws.clients import ClientFactory, SessionClients
from opx.tools.aws.deadline import Budget, Clock
from opx.tools.aws.results import (
    Answer,
    answer_page,
    bounded_list,
    bounded_object,
    check_token,
    entry,
    series_entry,
)
from opx.tools.aws.settings import AwsSettings, Limits
from opx.tools.memory import traffic_family
from opx.tools.paging import PageEntry, TokenError, fingerprint
from opx.tools.records import Change, ChangeKind, JsonDict, LogEvent, Span, iso_z, utc

ANSWER_CACHE = 64
MAX_INCIDENTS = 50
MAX_DOCUMENTS = 10
DEPLOYMENT_KINDS = frozenset({ChangeKind.DEPLOYMENT})
CONFIG_KINDS = frozenset({ChangeKind.CONFIG, ChangeKind.INFRASTRUCTURE})
Gather = Callable[[Gatherer], list[PageEntry]]


class _BadInput(Exception):
    """An argument the tools cannot answer for; becomes FAILED/INVALID_INPUT."""


@dataclass(frozen=True)
class _Runtime:
    """What copies of a source share: clients, the CloudTrail pace and the clocks."""

    clients: ClientFactory
    limiter: cloudtrail.RateLimiter
    clock: Clock
    sleep: Callable[[float], None]
    now: Callable[[], datetime]


class AwsTelemetrySource:
    """Telemetry from AWS APIs behind the tool interface. ``services`` are the services known
    besides those in the mapping (typically the incident's service and the graph's nodes):
    queries without a service read all known services, and names in text are protected from
    redaction. ``graph_window`` is the period whose service graph is read (default: the last
    ``xray.graph_lookback_s`` seconds)."""

    def __init__(
        self,
        settings: AwsSettings | None = None,
        *,
        clients: ClientFactory | None = None,
        services: Iterable[str] = (),
        graph_window: tuple[datetime, datetime] | None = None,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        runtime: _Runtime | None = None,
    ) -> None:
        self._settings = settings or AwsSettings()
        deadlines, history = self._settings.deadlines, self._settings.history
        self._runtime = runtime or _Runtime(
            clients=clients
            or SessionClients(
                request_s=deadlines.request_s,
                policy=telemetry_policy(history.tables or None),
                region=self._settings.region,
            ),
            limiter=cloudtrail.RateLimiter(
                self._settings.cloudtrail_requests_per_s, clock=clock, sleep=sleep
            ),
            clock=clock,
            sleep=sleep,
            now=now,
        )
        mapping = self._settings.mapping
        self._known = tuple(sorted(set(services) | set(mapping.configured)))
        self._graph_window = graph_window
        protected = [*self._known, *(n for e in mapping.services.values() for n in e.xray_names)]
        self._redactor = Redactor(self._settings.redaction_key, protected)
        self._answers: OrderedDict[str, Answer] = OrderedDict()
        self._metrics: dict[str, list[cloudwatch.ResolvedMetric]] = {}
        self._changes: dict[tuple[datetime, datetime], list[Change]] = {}
        self._node_names: frozenset[str] | None = None
        self._lock = threading.Lock()

    def with_services(
        self, services: Iterable[str], graph_window: tuple[datetime, datetime] | None = None
    ) -> AwsTelemetrySource:
        """A source that also knows ``services`` (same settings, clients and pace)."""
        return AwsTelemetrySource(
            self._settings,
            services=(*self._known, *services),
            graph_window=graph_window or self._graph_window,
            runtime=self._runtime,
        )

    @property
    def source_name(self) -> str:
        return self._settings.source_name

    @property
    def metric_directions(self) -> dict[str, str]:
        return dict(self._settings.mapping.metric_directions)

    @property
    def known_services(self) -> tuple[str, ...]:
        return self._known

    # -- metrics -------------------------------------------------------------------------------

    def list_metrics(self, service: str | None = None, next_token: str | None = None) -> ToolResult:
        def gather(g: Gatherer) -> list[PageEntry]:
            found = self._resolved(g, self._services(g, service))
            return [entry("metrics", m.header()) for m in _by_id(found)]

        return self._paged("list_metrics", ("metrics",), gather, next_token, service)

    def get_metrics(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        metric: str | None = None,
        stat: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult:
        def gather(g: Gatherer) -> list[PageEntry]:
            window = _window(start, end)
            chosen = [
                m
                for m in self._resolved(g, self._services(g, service))
                if (metric is None or m.label == metric) and (stat is None or m.stat == stat)
            ]
            return self._series(g, chosen, window)

        query = ("get_metrics", _key(start), _key(end), service, metric, stat)
        return self._paged(query[0], ("series",), gather, next_token, *query[1:])

    def get_traffic(
        self, service: str, start: datetime, end: datetime, next_token: str | None = None
    ) -> ToolResult:
        def gather(g: Gatherer) -> list[PageEntry]:
            window = _window(start, end)
            if not service:
                raise _BadInput("service is required")
            found = self._resolved(g, [service])
            chosen = [m for m in found if traffic_family(m.label) is not None]
            return self._series(g, chosen, window)

        query = ("get_traffic", service, _key(start), _key(end))
        return self._paged(query[0], ("series",), gather, next_token, *query[1:])

    def _resolved(self, g: Gatherer, services: Sequence[str]) -> list[cloudwatch.ResolvedMetric]:
        found: list[cloudwatch.ResolvedMetric] = []
        for service in services:
            if g.stopped:
                break
            known = self._metrics.get(service)
            if known is None:
                before = len(g.errors)
                templates = self._settings.mapping.metric_templates(service)
                known = cloudwatch.resolve_metrics(
                    self._client("cloudwatch"), g, service, templates, self._limits.max_pages
                )
                # Only a complete lookup is kept: a failed one is tried again next time.
                if len(g.errors) == before:
                    self._metrics[service] = known
            found += known
        return found

    def _series(
        self,
        g: Gatherer,
        metrics: Sequence[cloudwatch.ResolvedMetric],
        window: tuple[datetime, datetime],
    ) -> list[PageEntry]:
        period = cloudwatch.period_for(*window, self._limits.metric_period_s)
        points = cloudwatch.metric_points(
            self._client("cloudwatch"),
            g,
            metrics,
            *window,
            period=period,
            max_pages=self._limits.max_pages,
        )
        series = [cloudwatch.to_series(m, points[m.id]) for m in _by_id(metrics) if points[m.id]]
        return [series_entry("series", s.to_data()) for s in series]

    # -- logs and traces -----------------------------------------------------------------------

    def search_logs(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        pattern: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult:
        def gather(g: Gatherer) -> list[PageEntry]:
            window = _window(start, end)
            owners = self._log_groups(g, service)
            raw = self._read_logs(g, owners, window, pattern)
            redactor = self._redactor.protecting(
                [*self._services(g, service), *self._graph_names(g)]
            )
            events: dict[str, LogEvent] = {}
            for item in raw:
                event = cwlogs.to_event(item, owners[item.group][0], redactor)
                events.setdefault(event.id, event)
            ordered = sorted(events.values(), key=lambda e: (e.timestamp, e.id))
            if len(ordered) > self._limits.max_log_events:
                g.dropped = True
            kept = ordered[: self._limits.max_log_events]
            return [entry("events", e.to_data()) for e in kept]

        query = ("search_logs", _key(start), _key(end), service, pattern)
        return self._paged(query[0], ("events",), gather, next_token, *query[1:])

    def _graph_names(self, g: Gatherer) -> frozenset[str]:
        """Node names of the service graph, read once per source, so that log text naming a
        node (a database host with an ``@``, a node named by its address) is never redacted.
        A failure here only means fewer protected names, not a partial answer."""
        if self._node_names is None:
            quiet = Gatherer(g.budget, self._redactor)
            parts = xray.service_graph(
                self._client("xray"),
                quiet,
                self.graph_window(),
                self._resolver(None),
                max_pages=self._limits.max_pages,
            )
            names = frozenset(parts.nodes)
            if quiet.errors:
                return names
            self._node_names = names
        return self._node_names

    def _log_groups(self, g: Gatherer, service: str | None) -> dict[str, tuple[str, bool]]:
        """Log group → (owning service, configured explicitly); a group shared by services
        belongs to the first in name order."""
        owners: dict[str, tuple[str, bool]] = {}
        for name in self._services(g, service):
            for group, explicit in self._settings.mapping.log_groups_for(name):
                if group not in owners:
                    owners[group] = (name, explicit)
                elif explicit and not owners[group][1]:
                    owners[group] = (owners[group][0], True)
        return dict(sorted(owners.items()))

    def _read_logs(
        self,
        g: Gatherer,
        owners: dict[str, tuple[str, bool]],
        window: tuple[datetime, datetime],
        pattern: str | None,
    ) -> list[cwlogs.RawEvent]:
        for group in [g_ for g_ in owners if not cwlogs.valid_group(g_)]:
            # Only a configured group can get here; it is never sent, even as a literal.
            g.fail(ErrorCode.INVALID_INPUT, f"log group name {group!r} is not valid")
            del owners[group]
        client = self._client("logs")
        limit = self._limits.max_log_events
        if self._settings.logs_mode == "insights":
            named = [grp for grp, (_, exp) in owners.items() if exp]
            guessed = [grp for grp, (_, exp) in owners.items() if not exp]
            groups = named + cwlogs.existing_groups(client, g, guessed)
            if not groups:
                return []
            return cwlogs.insights_events(
                client,
                g,
                sorted(groups),
                window,
                pattern,
                limit=limit + 1,
                sleep=self._runtime.sleep,
            )
        found: list[cwlogs.RawEvent] = []
        for group, (_, explicit) in owners.items():
            if g.stopped:
                break
            found += cwlogs.filter_events(
                client,
                g,
                group,
                window,
                pattern,
                max_events=limit + 1,
                max_pages=self._limits.max_pages,
                explicit=explicit,
            )
        return found

    def get_traces(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        errors_only: bool = False,
        next_token: str | None = None,
    ) -> ToolResult:
        def gather(g: Gatherer) -> list[PageEntry]:
            window = _window(start, end)
            names = self._settings.mapping.xray_names_for(service) if service else ()
            expression = xray.filter_expression(names, errors_only)
            client = self._client("xray")
            ids = xray.trace_ids(
                client,
                g,
                window,
                expression,
                max_traces=self._limits.max_traces,
                max_pages=self._limits.max_pages,
            )
            resolve = self._resolver(service)
            redactor = self._redactor.protecting([service] if service else [])
            spans: dict[tuple[str, str], Span] = {}
            for document in xray.segment_documents(client, g, ids):
                for span in xray.spans_of(document, resolve, redactor):
                    if (
                        window[0] <= span.start < window[1]
                        and (service is None or span.service == service)
                        and (not errors_only or span.error or span.fault)
                    ):
                        spans.setdefault((span.trace_id, span.span_id), span)
            ordered = sorted(spans.values(), key=lambda s: (s.start, s.span_id, s.trace_id))
            return [entry("spans", s.to_data()) for s in ordered]

        query = ("get_traces", _key(start), _key(end), service, errors_only)
        return self._paged(query[0], ("spans",), gather, next_token, *query[1:])

    def _resolver(self, service: str | None) -> xray.Resolve:
        known = set(self._known) | ({service} if service else set())
        mapping = self._settings.mapping
        return lambda name, node_type: mapping.service_for_node(name, node_type, known)

    # -- graph and changes ---------------------------------------------------------------------

    def get_service_graph(self, next_token: str | None = None) -> ToolResult:
        def gather(g: Gatherer) -> list[PageEntry]:
            window = self.graph_window()
            resolve = self._resolver(None)
            parts = xray.service_graph(
                self._client("xray"), g, window, resolve, max_pages=self._limits.max_pages
            )
            registered = cloudmap.registered_services(
                self._client("servicediscovery"),
                g,
                max_pages=self._limits.max_pages,
                max_services=self._limits.max_services,
            )
            for found in registered:
                parts.add_node(resolve(found.name, None), cloudmap.NODE_TYPE)
            nodes, edges = parts.data()
            page: list[PageEntry] = [entry("nodes", n) for n in nodes]
            return page + [entry("edges", e) for e in edges]

        window = self.graph_window()
        return self._paged(
            "get_service_graph",
            ("nodes", "edges"),
            gather,
            next_token,
            _key(window[0]),
            _key(window[1]),
        )

    def graph_window(self) -> tuple[datetime, datetime]:
        if self._graph_window is not None:
            return self._graph_window
        end = self._runtime.now().astimezone(UTC).replace(microsecond=0)
        return end - timedelta(seconds=self._settings.graph_lookback_s), end

    def list_deployments(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult:
        return self._changes_page(
            "list_deployments", DEPLOYMENT_KINDS, start, end, service, next_token
        )

    def list_config_changes(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult:
        return self._changes_page(
            "list_config_changes", CONFIG_KINDS, start, end, service, next_token
        )

    def _changes_page(
        self,
        tool: str,
        kinds: frozenset[ChangeKind],
        start: datetime,
        end: datetime,
        service: str | None,
        token: str | None,
    ) -> ToolResult:
        def gather(g: Gatherer) -> list[PageEntry]:
            window = _window(start, end)
            changes = self._all_changes(g, window, service)
            chosen = [
                c for c in changes if c.kind in kinds and (service is None or c.service == service)
            ]
            return [entry("changes", c.to_data()) for c in chosen]

        return self._paged(tool, ("changes",), gather, token, _key(start), _key(end), service)

    def _all_changes(
        self, g: Gatherer, window: tuple[datetime, datetime], service: str | None
    ) -> list[Change]:
        """Every catalogued change of the window, mapped to services; deployments and
        configuration changes come from the same events, read once per window."""
        key = (window[0], window[1])
        if service is None or service in self._known:
            cached = self._changes.get(key)
            if cached is not None:
                g.succeeded += 1
                return cached
        before = len(g.errors)
        events = cloudtrail.write_events(
            self._client("cloudtrail"),
            g,
            window,
            self._runtime.limiter,
            max_pages=self._limits.max_pages,
        )
        raw = cloudtrail.catalogued(events)
        if len(raw) > self._limits.max_changes:
            g.dropped = True
            raw = raw[: self._limits.max_changes]
        tags: dict[str, dict[str, str]] = {}
        if self._settings.mapping.tag_keys:
            tags = cloudtrail.resource_tags(
                self._client("resourcegroupstaggingapi"), g, (c.resource for c in raw)
            )
        known = set(self._known) | ({service} if service else set())
        mapping = self._settings.mapping
        changes = [
            cloudtrail.to_change(
                c,
                mapping.service_for_resource(c.resource, tags.get(c.resource, {}), known),
                self._redactor,
            )
            for c in raw
        ]
        if len(g.errors) == before and (service is None or service in self._known):
            self._changes[key] = changes
        return changes

    # -- history and knowledge -----------------------------------------------------------------

    def search_incidents(
        self, service: str | None = None, text: str | None = None, limit: int = 10
    ) -> ToolResult:
        def run(g: Gatherer) -> ToolResult:
            count = _limit(limit, MAX_INCIDENTS)
            history = self._settings.history
            if history.incidents_table is None:
                return self._unavailable("incident history is not configured (history table)")
            if not dynamodb_history.queries(history, service):
                return self._unavailable(
                    "no index to search incidents "
                    + ("by service" if service else "without a service (recent_index)")
                )
            found = dynamodb_history.search(
                self._client("dynamodb"),
                g,
                history,
                service,
                text,
                limit=count,
                max_pages=self._limits.max_pages,
            )
            items = [self._redacted_incident(i.to_data()) for i in found]
            return bounded_list(
                "incidents", items, source=self.source_name, outcome=g.outcome(), dropped=g.dropped
            )

        return self._once("search_incidents", run)

    def _redacted_incident(self, data: JsonDict) -> JsonDict:
        text = self._redactor.text
        return {
            **data,
            "title": text(data["title"]),
            "symptoms": [text(s) for s in data["symptoms"]],
        }

    def get_resolution(self, incident_id: str) -> ToolResult:
        def run(g: Gatherer) -> ToolResult:
            if not isinstance(incident_id, str) or not incident_id.strip():
                raise _BadInput("incident_id is required")
            history = self._settings.history
            if history.incidents_table is None:
                return self._unavailable("incident history is not configured (history table)")
            found = dynamodb_history.resolution(self._client("dynamodb"), g, history, incident_id)
            data = {
                "incident_id": incident_id,
                "found": found is not None,
                "resolution": None if found is None else self._redacted_resolution(found.to_data()),
            }
            return bounded_object(data, source=self.source_name, outcome=g.outcome())

        return self._once("get_resolution", run)

    def _redacted_resolution(self, data: JsonDict) -> JsonDict:
        text = self._redactor.text
        return {
            **data,
            "summary": text(data["summary"]),
            "actions": [text(a) for a in data["actions"]],
        }

    def retrieve_knowledge(self, query: str, limit: int = 5) -> ToolResult:
        def run(g: Gatherer) -> ToolResult:
            count = min(_limit(limit, MAX_DOCUMENTS), self._settings.knowledge.max_results)
            if not isinstance(query, str) or not query.strip():
                raise _BadInput("query is required")
            base = self._settings.knowledge
            if base.knowledge_base_id is None:
                return self._unavailable("no knowledge base is configured (knowledge_base_id)")
            found = knowledge_base.retrieve(
                self._client("bedrock-agent-runtime"),
                g,
                base.knowledge_base_id,
                query,
                count=count,
                min_score=base.min_score,
                redactor=self._redactor,
            )
            return bounded_list("documents", found, source=self.source_name, outcome=g.outcome())

        return self._once("retrieve_knowledge", run)

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def _limits(self) -> Limits:
        return self._settings.limits

    def _client(self, service: str) -> Any:
        return self._runtime.clients(service)

    def _services(self, g: Gatherer, service: str | None) -> list[str]:
        """``[service]``, or every known service (at most ``max_services``) when None."""
        if service is not None:
            if not service.strip():
                raise _BadInput("service must not be empty")
            return [service]
        if len(self._known) > self._limits.max_services:
            g.dropped = True
        return list(self._known[: self._limits.max_services])

    def _gatherer(self, tool: str) -> Gatherer:
        deadlines = self._settings.deadlines
        budget = Budget(deadlines.total_for(tool), deadlines.request_s, self._runtime.clock)
        return Gatherer(budget, self._redactor)

    def _paged(
        self,
        tool: str,
        keys: tuple[str, ...],
        gather: Gather,
        token: str | None,
        *query: object,
    ) -> ToolResult:
        """A page of the answer ``gather`` builds; never raises."""
        try:
            fingerprinted = fingerprint(self.source_name, tool, *query)
            cursor = check_token(token, fingerprinted)
            answer = self._cached(fingerprinted) if token is not None else None
            if answer is None:
                g = self._gatherer(tool)
                entries = gather(g)
                answer = Answer(keys, tuple(entries), g.outcome(), g.dropped)
                self._keep(fingerprinted, answer)
            return answer_page(answer, source=self.source_name, query=fingerprinted, cursor=cursor)
        except (_BadInput, TokenError) as exc:
            return ToolResult.failed(self.source_name, ErrorCode.INVALID_INPUT, str(exc))
        except Exception as exc:  # a tool never raises: a bug becomes INTERNAL_ERROR
            return self._internal(exc)

    def _once(self, tool: str, run: Callable[[Gatherer], ToolResult]) -> ToolResult:
        try:
            return run(self._gatherer(tool))
        except _BadInput as exc:
            return ToolResult.failed(self.source_name, ErrorCode.INVALID_INPUT, str(exc))
        except Exception as exc:  # a tool never raises: a bug becomes INTERNAL_ERROR
            return self._internal(exc)

    def _internal(self, exc: Exception) -> ToolResult:
        # Creating a client can fail too (no region, no credentials): keep its real code.
        message = self._redactor.text(f"{type(exc).__name__}: {exc}")[:400]
        return ToolResult.failed(self.source_name, aws_error_code(exc), message)

    def _unavailable(self, message: str) -> ToolResult:
        return ToolResult.failed(self.source_name, ErrorCode.DATA_SOURCE_UNAVAILABLE, message)

    def _cached(self, query: str) -> Answer | None:
        with self._lock:
            answer = self._answers.get(query)
            if answer is not None:
                self._answers.move_to_end(query)
            return answer

    def _keep(self, query: str, answer: Answer) -> None:
        with self._lock:
            self._answers[query] = answer
            self._answers.move_to_end(query)
            while len(self._answers) > ANSWER_CACHE:
                self._answers.popitem(last=False)


def _by_id(metrics: Iterable[cloudwatch.ResolvedMetric]) -> list[cloudwatch.ResolvedMetric]:
    return sorted({m.id: m for m in metrics}.values(), key=lambda m: (m.service, m.label, m.stat))


def _key(value: datetime) -> str:
    """A time as query-key text; an unusable time is reported when the query runs."""
    try:
        return iso_z(utc(value))
    except (ValueError, AttributeError, TypeError):
        return repr(value)


def _window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    try:
        lo, hi = utc(start, "start"), utc(end, "end")
    except (ValueError, AttributeError, TypeError) as exc:
        raise _BadInput(str(exc)) from exc
    if lo > hi:
        raise _BadInput(f"start {iso_z(lo)} is after end {iso_z(hi)}")
    return lo, hi


def _limit(limit: int, cap: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise _BadInput(f"limit must be a whole number >= 1, not {limit!r}")
    return min(limit, cap)
