"""Turns Nezha TrainTicket faults into evaluation cases: an ``IncidentCreated`` event on the entry
service and an in-memory telemetry bundle each.

The event: an incident on the entry service (the owner of the root spans), raised by the front
service's ``LatencyP90(s)``, with the window from one minute before to three minutes after
``inject_time``. The bundle holds:

- metrics: every pod column as the series ``(service, metric, "Value")`` and the front
  service's columns under the entry service, from the day's start to the window's end, without
  the minutes of the day's earlier listed faults (``t - 1`` to ``t + 3``), so the analysts'
  robust baseline over the preceding minutes is not fed known incidents. Faults not listed in
  the copy remain in the metrics, unlabelled, as they would in production;
- logs and spans of the window, and the fault-free ``construct_data`` stretch moved in time to end
  just before the window, as the baseline of logs and traces;
- the service graph, from the parent to the child span wherever their services differ.

The dataset's layout is described in :mod:`opx.eval.nezha_data`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from opx.eval.nezha_data import (
    CONSTRUCT,
    RCA,
    Fault,
    NezhaDataError,
    ServiceMetrics,
    all_files,
    day_names,
    minute_files,
    nanos_of,
    read_faults,
    read_front_metrics,
    read_logs,
    read_pod_metrics,
    read_spans,
)
from opx.eval.petshop import Case, incident_event
from opx.eval.scoring import CaseKey
from opx.tools.memory import InMemoryTools
from opx.tools.records import GraphEdge, GraphNode, LogEvent, MetricSeries, ServiceGraph, Span

DATASET = "nezha-trainticket"
BEFORE, AFTER = timedelta(minutes=1), timedelta(minutes=3)
ALARM_METRIC = "LatencyP90(s)"
STAT = "Value"
# The baseline stretch ends this long before the window starts.
BASELINE_GAP = timedelta(seconds=1)


def metric_direction(name: str) -> str:
    """Which way is bad for a column: success rates falling, latency and resource use rising,
    volumes either way."""
    low = name.lower()
    if "success" in low:
        return "down"
    if any(word in low for word in ("latency", "cpu", "memory")):
        return "up"
    return "both"


def metric_unit(name: str) -> str:
    if name.endswith("(s)"):
        return "Seconds"
    if name.endswith("(%)"):
        return "Percent"
    if name.endswith("(m)"):
        return "Millicores"
    return "Bytes" if "Bytes" in name else "Count"


def window_of(fault: Fault) -> tuple[datetime, datetime]:
    return fault.inject_time - BEFORE, fault.inject_time + AFTER


def excluded_windows(fault: Fault, faults: Iterable[Fault]) -> list[tuple[datetime, datetime]]:
    """The windows of the same day's listed faults injected before ``fault``."""
    return [
        window_of(f) for f in faults if f.day == fault.day and f.inject_time < fault.inject_time
    ]


def fault_series(
    metrics: Iterable[ServiceMetrics],
    end: datetime,
    excluded: Sequence[tuple[datetime, datetime]],
) -> list[MetricSeries]:
    """Every column as a series up to ``end`` (exclusive), without points in ``excluded``."""
    out = []
    for block in metrics:
        keep = [
            i
            for i, t in enumerate(block.timestamps)
            if t < end and not any(lo <= t < hi for lo, hi in excluded)
        ]
        for name, values in sorted(block.columns.items()):
            points = [(block.timestamps[i], values[i]) for i in keep if values[i] is not None]
            out.append(
                MetricSeries(
                    block.service,
                    name,
                    STAT,
                    metric_unit(name),
                    tuple(t for t, _ in points),
                    tuple(float(v) for t, v in points if v is not None),
                )
            )
    return out


def entry_service(spans: Iterable[Span]) -> str | None:
    """The service owning the most root spans (ties by name), None without root spans."""
    counts = Counter(s.service for s in spans if s.parent_id is None)
    if not counts:
        return None
    return min(counts, key=lambda s: (-counts[s], s))


def span_graph(spans: Sequence[Span], services: Iterable[str]) -> ServiceGraph:
    """``services`` as nodes, and an edge from a span's service to its child's where they
    differ (a service calling itself adds nothing)."""
    owner = {(s.trace_id, s.span_id): s.service for s in spans}
    edges = set()
    for span in spans:
        if span.parent_id is None:
            continue
        caller = owner.get((span.trace_id, span.parent_id))
        if caller is not None and caller != span.service:
            edges.add(GraphEdge(caller, span.service))
    names = set(services) | {e.source for e in edges} | {e.target for e in edges}
    return ServiceGraph(tuple(GraphNode(n) for n in sorted(names)), tuple(edges))


def shift_logs(events: Sequence[LogEvent], end: datetime) -> list[LogEvent]:
    """The events moved in time so that the last one falls at ``end``."""
    if not events:
        return []
    delta = end - max(e.timestamp for e in events)
    return [replace(e, timestamp=e.timestamp + delta) for e in events]


def shift_spans(spans: Sequence[Span], end: datetime) -> list[Span]:
    """The spans moved in time so that the last one to finish ends at ``end``."""
    if not spans:
        return []
    last = max(s.start + timedelta(milliseconds=s.duration_ms) for s in spans)
    delta = end - last
    return [replace(s, start=s.start + delta) for s in spans]


@dataclass(frozen=True)
class Baseline:
    """A day's fault-free logs and spans, as recorded."""

    logs: tuple[LogEvent, ...]
    spans: tuple[Span, ...]


@dataclass(frozen=True)
class Day:
    """What one day's cases share: its faults, metrics and baseline."""

    name: str
    folder: Path
    faults: tuple[Fault, ...]
    pods: tuple[ServiceMetrics, ...]
    front: Path
    baseline: Baseline


def load_day(root: Path, name: str) -> Day:
    construct = root / CONSTRUCT / name
    baseline = Baseline(
        tuple(read_logs(all_files(construct / "log", "log"))),
        tuple(read_spans(all_files(construct / "trace", "trace"))),
    )
    if not baseline.spans:
        raise NezhaDataError(f"{construct}/trace: no fault-free spans to learn from")
    return Day(
        name=name,
        folder=root / RCA / name,
        faults=tuple(read_faults(root, name)),
        pods=tuple(read_pod_metrics(root, name)),
        front=root / RCA / name / "metric" / "front_service.csv",
        baseline=baseline,
    )


def fault_case(root: Path, day: Day, fault: Fault) -> Case:
    start, end = window_of(fault)
    keep = (nanos_of(start), nanos_of(end))
    logs = read_logs(minute_files(day.folder / "log", "log", start, end), keep)
    spans = read_spans(minute_files(day.folder / "trace", "trace", start, end), keep)
    base_end = start - BASELINE_GAP
    base_logs = shift_logs(day.baseline.logs, base_end)
    base_spans = shift_spans(day.baseline.spans, base_end)
    entry = entry_service(spans) or entry_service(base_spans)
    if entry is None:
        raise NezhaDataError(f"{fault.fault_id}: no root spans to find the entry service")
    front = read_front_metrics(root, day.name, entry)
    metrics = fault_series([*day.pods, front], end, excluded_windows(fault, day.faults))
    graph = span_graph([*base_spans, *spans], {s.service for s in metrics})
    incident_id = f"nezha/{fault.fault_id}"
    tools = InMemoryTools(
        incident_id,
        series=metrics,
        logs=[*base_logs, *logs],
        spans=[*base_spans, *spans],
        graph=graph,
        metric_directions={s.metric: metric_direction(s.metric) for s in metrics},
    )
    return Case(
        key=CaseKey(
            fault.day, DATASET, fault.fault_id, ALARM_METRIC, False, fault_type=fault.fault_type
        ),
        event=incident_event(
            incident_id, entry, ALARM_METRIC, STAT, fault.inject_time, (start, end)
        ),
        tools=tools,
        truth=fault.service,
        graph_nodes=len(graph.nodes),
    )


def list_faults(root: Path) -> list[Fault]:
    """Every listed fault of every day, in time order."""
    return [f for name in day_names(root) for f in read_faults(root, name)]


def fault_cases(root: Path, faults: Sequence[Fault]) -> Iterator[Case]:
    """The cases of ``faults``, built one at a time (each holds a few minutes of telemetry);
    a day's metrics and baseline are read once, when its first fault comes."""
    day: Day | None = None
    for fault in faults:
        if day is None or day.name != fault.day:
            day = load_day(root, fault.day)
        yield fault_case(root, day, fault)
