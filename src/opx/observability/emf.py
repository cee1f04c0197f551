"""CloudWatch Embedded Metric Format: one JSON object per line that CloudWatch Logs turns into
metrics (a Lambda's stdout/stderr, or any log group the CloudWatch agent ships).

    {"_aws": {"Timestamp": <epoch ms>, "CloudWatchMetrics": [{"Namespace": "OPX",
     "Dimensions": [[]], "Metrics": [{"Name": "Replay/Count", "Unit": "Count"}]}]},
     "Replay/Count": 1, ...properties}

``Dimensions: [[]]`` publishes the metrics without dimensions. Properties are extra members that
Logs Insights can query; they never become dimensions here.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

from opx.observability.metrics import NAMESPACE, Metric

MAX_METRICS = 100  # per EMF directive


class EmfError(ValueError):
    """A metric line that CloudWatch would reject or misread."""


def emf_record(
    values: Mapping[Metric, float],
    *,
    timestamp_ms: int,
    namespace: str = NAMESPACE,
    properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The EMF object publishing ``values`` without dimensions at ``timestamp_ms``."""
    if not values or len(values) > MAX_METRICS:
        raise EmfError(f"an EMF line carries 1 to {MAX_METRICS} metrics, not {len(values)}")
    record: dict[str, Any] = {}
    for key, value in (properties or {}).items():
        if key == "_aws" or any(key == metric.name for metric in values):
            raise EmfError(f"property {key!r} would shadow a metric or the EMF metadata")
        record[key] = value
    for metric, value in values.items():
        if isinstance(value, bool) or not math.isfinite(value):
            raise EmfError(f"metric {metric.name} needs a finite number, not {value!r}")
        record[metric.name] = value
    record["_aws"] = {
        "Timestamp": timestamp_ms,
        "CloudWatchMetrics": [
            {
                "Namespace": namespace,
                "Dimensions": [[]],
                "Metrics": [{"Name": m.name, "Unit": m.unit} for m in values],
            }
        ],
    }
    return record


def emit(
    values: Mapping[Metric, float],
    *,
    properties: Mapping[str, Any] | None = None,
    stream: IO[str] | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Write one EMF line (default: to stderr, so stdout keeps only a command's output)."""
    record = emf_record(values, timestamp_ms=int(clock() * 1000), properties=properties)
    out = stream if stream is not None else sys.stderr
    out.write(json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n")
    out.flush()
