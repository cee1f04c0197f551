"""CloudWatch metrics of a service: the metrics its mapping names (default templates are checked
with ``ListMetrics``, so only metrics that exist are reported) and their points from
``GetMetricData``, following its pages up to the bound."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from functools import partial
from typing import Any

from opx.domain.errors import ErrorCode
from opx.tools.aws.calls import Gatherer
from opx.tools.aws.mapping import MetricTemplate
from opx.tools.records import JsonDict, MetricSeries, series_id

MAX_QUERIES = 500  # GetMetricData's limit per request
MAX_POINTS_PER_SERIES = 1440
_FAILED_STATUS = {"Forbidden": ErrorCode.ACCESS_DENIED, "InternalError": ErrorCode.INTERNAL_ERROR}


@dataclass(frozen=True)
class ResolvedMetric:
    """One concrete CloudWatch metric and statistic, reported as ``service|label|stat``."""

    service: str
    label: str
    stat: str
    unit: str
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]

    @property
    def id(self) -> str:
        return series_id(self.service, self.label, self.stat)

    def header(self) -> JsonDict:
        return {
            "id": self.id,
            "service": self.service,
            "metric": self.label,
            "stat": self.stat,
            "unit": self.unit,
        }

    def query(self, query_id: str, period: int) -> JsonDict:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric_name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions],
                },
                "Period": period,
                "Stat": self.stat,
            },
            "ReturnData": True,
        }


# A concrete metric found for a template: (template index, namespace, name, dimensions).
_Found = tuple[int, str, str, tuple[tuple[str, str], ...]]


def resolve_metrics(
    client: Any,
    gatherer: Gatherer,
    service: str,
    templates: Sequence[tuple[MetricTemplate, bool]],
    max_pages: int,
) -> list[ResolvedMetric]:
    """The concrete metrics of ``service``: explicit exact templates as written, the others as
    ``ListMetrics`` finds them. Order follows the templates, then namespace, name, dimensions."""
    found: list[_Found] = []
    for index, (template, explicit) in enumerate(templates):
        if explicit and template.exact:
            found += [
                (index, template.namespace, m.name, template.dimensions) for m in template.metrics
            ]
        elif not gatherer.stopped:
            found += [(index, *f) for f in _listed(client, gatherer, template, max_pages)]
    return _label(service, templates, sorted(set(found)))


def _listed(
    client: Any, gatherer: Gatherer, template: MetricTemplate, max_pages: int
) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    wanted = {m.name for m in template.metrics}
    filters = [
        {"Name": k, "Value": v} if "*" not in v else {"Name": k} for k, v in template.dimensions
    ]
    found: list[tuple[str, str, tuple[tuple[str, str], ...]]] = []
    token: str | None = None
    for _ in range(max_pages):
        params: JsonDict = {"Namespace": template.namespace, "Dimensions": filters}
        if token:
            params["NextToken"] = token
        page = gatherer.call(partial(client.list_metrics, **params), "ListMetrics")
        if page is None:
            return found
        for metric in page.get("Metrics", []):
            dims = tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])))
            if metric.get("MetricName") in wanted and _dims_match(template.dimensions, dims):
                found.append((template.namespace, str(metric["MetricName"]), dims))
        token = page.get("NextToken")
        if not token:
            return found
    gatherer.dropped = True
    return found


def _dims_match(wanted: Iterable[tuple[str, str]], actual: tuple[tuple[str, str], ...]) -> bool:
    want = dict(wanted)
    have = dict(actual)
    return set(want) == set(have) and all(fnmatchcase(have[k], v) for k, v in want.items())


def _label(
    service: str, templates: Sequence[tuple[MetricTemplate, bool]], found: Sequence[_Found]
) -> list[ResolvedMetric]:
    """One resolved metric per template statistic; a repeated ``label|stat`` (the same metric
    under several dimension sets) is told apart by its dimension values."""
    resolved, seen = [], set[str]()
    for index, namespace, name, dims in found:
        template = templates[index][0]
        for stat in (m for m in template.metrics if m.name == name):
            label = stat.reported
            metric = ResolvedMetric(service, label, stat.stat, stat.unit, namespace, name, dims)
            if metric.id in seen:
                qualifier = ",".join(v for _, v in dims)
                metric = ResolvedMetric(
                    service, f"{label} ({qualifier})", stat.stat, stat.unit, namespace, name, dims
                )
            if metric.id not in seen:
                seen.add(metric.id)
                resolved.append(metric)
    return resolved


def period_for(start: datetime, end: datetime, minimum: int) -> int:
    """A period (a multiple of 60 s, at least ``minimum``) giving at most 1440 points."""
    seconds = max(0.0, (end - start).total_seconds())
    needed = 60 * math.ceil(seconds / MAX_POINTS_PER_SERIES / 60)
    return max(minimum, needed, 1)


def metric_points(
    client: Any,
    gatherer: Gatherer,
    metrics: Sequence[ResolvedMetric],
    start: datetime,
    end: datetime,
    *,
    period: int,
    max_pages: int,
) -> dict[str, dict[datetime, float]]:
    """Points per metric id in ``[start, end)``, following ``NextToken`` up to ``max_pages``
    pages per batch of 500 queries."""
    points: dict[str, dict[datetime, float]] = {m.id: {} for m in metrics}
    for first in range(0, len(metrics), MAX_QUERIES):
        if gatherer.stopped:
            break
        batch = metrics[first : first + MAX_QUERIES]
        ids = {f"m{i}": m.id for i, m in enumerate(batch)}
        queries = [m.query(f"m{i}", period) for i, m in enumerate(batch)]
        _read_batch(client, gatherer, queries, ids, points, (start, end), max_pages)
    return points


def _read_batch(
    client: Any,
    gatherer: Gatherer,
    queries: list[JsonDict],
    ids: dict[str, str],
    points: dict[str, dict[datetime, float]],
    window: tuple[datetime, datetime],
    max_pages: int,
) -> None:
    token: str | None = None
    for _ in range(max_pages):
        params: JsonDict = {
            "MetricDataQueries": queries,
            "StartTime": window[0],
            "EndTime": window[1],
            "ScanBy": "TimestampAscending",
        }
        if token:
            params["NextToken"] = token
        page = gatherer.call(partial(client.get_metric_data, **params), "GetMetricData")
        if page is None:
            return
        for result in page.get("MetricDataResults", []):
            _take(gatherer, result, ids, points, window)
        token = page.get("NextToken")
        if not token:
            return
    gatherer.dropped = True


def _take(
    gatherer: Gatherer,
    result: JsonDict,
    ids: dict[str, str],
    points: dict[str, dict[datetime, float]],
    window: tuple[datetime, datetime],
) -> None:
    metric_id = ids.get(str(result.get("Id")))
    if metric_id is None:
        return
    code = _FAILED_STATUS.get(str(result.get("StatusCode")))
    if code is not None:
        gatherer.fail(code, f"GetMetricData: {metric_id}: {result.get('StatusCode')}")
    into = points[metric_id]
    for stamp, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
        when = stamp.astimezone(UTC)
        if window[0] <= when < window[1] and math.isfinite(value):
            into[when] = float(value)


def to_series(metric: ResolvedMetric, points: dict[datetime, float]) -> MetricSeries:
    stamps = sorted(points)
    return MetricSeries(
        metric.service,
        metric.label,
        metric.stat,
        metric.unit,
        tuple(stamps),
        tuple(points[t] for t in stamps),
    )
