"""CloudWatch Embedded Metric Format lines, serialised by aws-lambda-powertools: one JSON object
per line that CloudWatch Logs turns into metrics (a Lambda's stdout, or any log group the
CloudWatch agent ships).

    {"_aws": {"Timestamp": <epoch ms>, "CloudWatchMetrics": [{"Namespace": "Phase6",
     "Dimensions": [["Status"]], "Metrics": [{"Name": "Execution/Count", "Unit": "Count"}]}]},
     "Status": "COMPLETED", "Execution/Count": 1, ...properties}

A line carries metrics that share one dimension set, and exactly that set: each metric declares
its own in :mod:`opx.observability.metrics`, and metrics with different sets go on different
lines. Powertools' ``service`` dimension is never added (it would make a different series from
the one the alarms watch). Properties are extra members that Logs Insights can query; they never
become dimensions.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

from opx.observability.metrics import NAMESPACE, Metric

MAX_METRICS = 100  # per EMF directive


class EmfError(ValueError):
    """A metric line that CloudWatch would reject or misread."""


def _check(
    values: Mapping[Metric, float],
    dimensions: Mapping[str, str],
    properties: Mapping[str, Any],
) -> None:
    if not values or len(values) > MAX_METRICS:
        raise EmfError(f"an EMF line carries 1 to {MAX_METRICS} metrics, not {len(values)}")
    for metric, value in values.items():
        if isinstance(value, bool) or not math.isfinite(value):
            raise EmfError(f"metric {metric.name} needs a finite number, not {value!r}")
        if set(metric.dimensions) != set(dimensions):
            raise EmfError(
                f"metric {metric.name} is published with dimensions {list(metric.dimensions)}, "
                f"not {sorted(dimensions)}"
            )
    reserved = {"_aws", *dimensions, *(m.name for m in values)}
    for key in properties:
        if key in reserved:
            raise EmfError(f"property {key!r} would shadow a metric, a dimension or the metadata")


def emf_record(
    values: Mapping[Metric, float],
    *,
    timestamp_ms: int,
    namespace: str = NAMESPACE,
    dimensions: Mapping[str, str] | None = None,
    properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The EMF object publishing ``values`` with ``dimensions`` (which must be exactly each
    metric's own dimension set) at ``timestamp_ms``."""
    dims, props = dict(dimensions or {}), dict(properties or {})
    _check(values, dims, props)
    provider = AmazonCloudWatchEMFProvider(namespace=namespace)
    # No implicit "service" dimension from POWERTOOLS_SERVICE_NAME.
    provider.service = None  # type: ignore[assignment]
    for name, text in dims.items():
        provider.add_dimension(name=name, value=text)
    for metric, number in values.items():
        provider.add_metric(name=metric.name, unit=metric.unit, value=number)
    for key, extra in props.items():
        provider.add_metadata(key=key, value=extra)
    # Set directly: the setter warns about timestamps CloudWatch would drop, which tests use.
    provider.timestamp = timestamp_ms
    record: dict[str, Any] = dict(provider.serialize_metric_set())
    for metric in values:
        # Powertools writes every value as a list; a single value reads better as a number.
        found = record[metric.name]
        if isinstance(found, list) and len(found) == 1:
            record[metric.name] = found[0]
    return record


class EmfWriter:
    """Writes EMF lines to one stream (stdout in Lambda, stderr on the command line, where
    stdout carries the command's own output) in one namespace."""

    def __init__(
        self,
        namespace: str = NAMESPACE,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.namespace = namespace
        self._stream = stream
        self._clock = clock

    def write(
        self,
        values: Mapping[Metric, float],
        *,
        dimensions: Mapping[str, str] | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        record = emf_record(
            values,
            timestamp_ms=int(self._clock() * 1000),
            namespace=self.namespace,
            dimensions=dimensions,
            properties=properties,
        )
        out = self._stream if self._stream is not None else sys.stderr
        out.write(json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n")
        out.flush()


def emit(
    values: Mapping[Metric, float],
    *,
    properties: Mapping[str, Any] | None = None,
    stream: IO[str] | None = None,
    clock: Callable[[], float] = time.time,
    namespace: str = NAMESPACE,
) -> None:
    """Write one dimension-free EMF line (default: to stderr, so stdout keeps only a command's
    output)."""
    EmfWriter(namespace, stream, clock).write(values, properties=properties)
