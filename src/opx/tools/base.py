"""The typed, read-only tool interface every telemetry source implements.

Each method returns a :class:`~opx.domain.tool_result.ToolResult` whose serialised form is at most
10 KB. Results are deterministically ordered (with tie-breakers). Large answers are split into
pages: a result carries ``next_token`` when more data is available, and the caller passes it back
unchanged to get the next page. ``truncated`` is true only when data was dropped or shortened to
fit, never merely because more pages follow. Times are timezone-aware UTC datetimes.

Shapes of ``ToolResult.data`` (all timestamps ISO-8601 UTC strings ending in ``Z``):

- ``get_metrics``: ``{"series": [{"id", "service", "metric", "stat", "unit",
  "timestamps": [...], "values": [...]}]}``; GetMetricData-shaped, points in time order. A series
  may continue on the next page under the same ``id``.
- ``list_metrics``: ``{"metrics": [{"id", "service", "metric", "stat", "unit"}]}``.
- ``search_logs``: ``{"events": [{"id", "timestamp", "service", "level", "message",
  "trace_id"?, "span_id"?}]}`` in time order.
- ``get_traces``: ``{"spans": [{"trace_id", "span_id", "parent_id", "service", "operation",
  "start", "duration_ms", "error", "fault", "status_code"?}]}`` in (start, span_id) order.
- ``get_service_graph``: ``{"nodes": [{"name", "type"}], "edges": [{"source", "target"}]}``;
  an edge means *source calls target*.
- ``get_traffic``: same shape as ``get_metrics``, restricted to request/error/latency/
  availability families of one service.
- ``list_deployments`` / ``list_config_changes``: ``{"changes": [{"change_id", "timestamp",
  "kind", "event_source", "event_name", "resource", "service", "actor", "description"}]}``
  in time order; kind is DEPLOYMENT for the first, CONFIG or INFRASTRUCTURE for the second.
- ``search_incidents``: ``{"incidents": [{"incident_id", "service", "severity", "opened_at",
  "title", "symptoms", "root_cause": {"service", "component", "category"}}]}``.
- ``get_resolution``: ``{"incident_id", "found": bool, "resolution": {"type", "summary",
  "actions", "time_to_resolve_minutes"} | null}`` (null when not found).
- ``retrieve_knowledge``: ``{"documents": [{"document_id", "title", "doc_type", "services",
  "excerpt", "section", "score"}]}`` in descending score order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from opx.domain.tool_result import ToolResult


@runtime_checkable
class TelemetryTools(Protocol):
    """Read-only access to one system's telemetry. Implementations never raise for data errors:
    they return a FAILED or PARTIAL result with a canonical error code."""

    @property
    def source_name(self) -> str: ...

    @property
    def metric_directions(self) -> dict[str, str]:
        """Which way is bad for a metric name ("up", "down" or "both"), where the source knows;
        analysts apply their own defaults to names not listed."""
        ...

    def list_metrics(
        self, service: str | None = None, next_token: str | None = None
    ) -> ToolResult: ...

    def get_metrics(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        metric: str | None = None,
        stat: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult: ...

    def search_logs(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        pattern: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult: ...

    def get_traces(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        errors_only: bool = False,
        next_token: str | None = None,
    ) -> ToolResult: ...

    def get_service_graph(self, next_token: str | None = None) -> ToolResult: ...

    def get_traffic(
        self, service: str, start: datetime, end: datetime, next_token: str | None = None
    ) -> ToolResult: ...

    def list_deployments(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult: ...

    def list_config_changes(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult: ...

    def search_incidents(
        self, service: str | None = None, text: str | None = None, limit: int = 10
    ) -> ToolResult: ...

    def get_resolution(self, incident_id: str) -> ToolResult: ...

    def retrieve_knowledge(self, query: str, limit: int = 5) -> ToolResult: ...
