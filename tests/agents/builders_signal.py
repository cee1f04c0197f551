"""Builders of small synthetic systems for the signal and risk analyst tests: a call graph,
seeded noisy metric series with a baseline before the window, logs and spans."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from opx.agents.base import AgentContext
from opx.domain.incident import EvidenceBundle, Incident, Severity
from opx.tools.memory import InMemoryTools, Source
from opx.tools.records import (
    GraphEdge,
    GraphNode,
    LogEvent,
    LogLevel,
    MetricSeries,
    ServiceGraph,
    Span,
)

WINDOW_START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=30)
STEP = timedelta(minutes=5)
BASELINE_POINTS = 72  # six hours of 5-minute points before the window
WINDOW_POINTS = 6


def stamps(count: int, start: datetime, step: timedelta = STEP) -> tuple[datetime, ...]:
    return tuple(start + i * step for i in range(count))


def noise(seed: int, count: int, level: float, spread: float) -> list[float]:
    rng = random.Random(seed)
    return [level + rng.gauss(0.0, spread) for _ in range(count)]


@dataclass
class System:
    """A synthetic system: graph edges (caller, callee) and telemetry added piece by piece."""

    edges: list[tuple[str, str]]
    nodes: list[str] = field(default_factory=list)
    series: list[MetricSeries] = field(default_factory=list)
    logs: list[LogEvent] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    seed: int = 7

    def all_nodes(self) -> list[str]:
        names = set(self.nodes) | {n for e in self.edges for n in e}
        return sorted(names)

    def metric(
        self,
        service: str,
        metric: str,
        *,
        level: float = 100.0,
        spread: float = 5.0,
        shift: float = 0.0,
        stat: str = "Average",
        window_values: list[float] | None = None,
        baseline_points: int = BASELINE_POINTS,
        window_points: int = WINDOW_POINTS,
        baseline_values: list[float] | None = None,
        step: timedelta = STEP,
        unit: str = "None",
        window_shifts: list[float] | None = None,
    ) -> None:
        """A noisy series; the window is the same noise moved by ``shift`` (or point by point by
        ``window_shifts``, or given values), the baseline the unshifted noise (or given values),
        one point per ``step``."""
        self.seed += 1
        base = baseline_values or noise(self.seed, baseline_points, level, spread)
        self.seed += 1
        if window_values is None:
            shifts = window_shifts or [shift] * window_points
            window_values = [
                v + d
                for v, d in zip(noise(self.seed, len(shifts), level, spread), shifts, strict=True)
            ]
        start = WINDOW_START - len(base) * step
        values = tuple(base + window_values)
        times = stamps(len(values), start, step)
        self.series.append(MetricSeries(service, metric, stat, unit, times, values))

    def healthy_metrics(self, service: str) -> None:
        self.metric(service, "Latency", level=100.0, spread=5.0)
        self.metric(service, "Requests", level=500.0, spread=20.0, stat="Sum")

    def log(self, service: str, minute: float, message: str, level: LogLevel) -> None:
        index = len(self.logs)
        when = WINDOW_START + timedelta(minutes=minute)
        self.logs.append(LogEvent(f"log-{index}", when, service, level, message))

    def chatter(self, service: str, minutes_before: int = 360, every: int = 10) -> None:
        """Routine INFO logs over the baseline and the window."""
        for minute in range(-minutes_before, 30, every):
            self.log(service, minute, f"handled request {minute % 97} ok", LogLevel.INFO)

    def call(
        self,
        trace: str,
        minute: float,
        chain: list[str],
        durations: list[float],
        failing_from: int | None = None,
    ) -> None:
        """One trace where chain[i] calls chain[i+1]; spans from ``failing_from`` on fail."""
        start = WINDOW_START + timedelta(minutes=minute)
        parent: str | None = None
        for depth, (service, duration) in enumerate(zip(chain, durations, strict=True)):
            span_id = f"{trace}-{depth}"
            failed = failing_from is not None and depth >= failing_from
            begin = start + timedelta(milliseconds=depth)
            self.spans.append(
                Span(trace, span_id, parent, service, "call", begin, duration, fault=failed)
            )
            parent = span_id

    def tools(
        self,
        directions: dict[str, str] | None = None,
        unavailable: dict[Source, str] | None = None,
        with_graph: bool = True,
    ) -> InMemoryTools:
        graph = (
            ServiceGraph(
                tuple(GraphNode(n, "service") for n in self.all_nodes()),
                tuple(GraphEdge(s, t) for s, t in self.edges),
            )
            if with_graph
            else None
        )
        return InMemoryTools(
            "synthetic",
            series=self.series,
            logs=self.logs,
            spans=self.spans,
            graph=graph,
            metric_directions=directions,
            unavailable=unavailable,
        )


def incident(
    service: str, severity: Severity = Severity.SEV2, alarm: str | None = None
) -> Incident:
    """An incident on ``service``; ``alarm`` names the alarm's series as "service|metric|stat"."""
    detections = [] if alarm is None else [{"detection_id": "det-test", "metric": alarm}]
    return Incident(
        incident_id="inc-test",
        service=service,
        severity=severity,
        window_start=WINDOW_START,
        window_end=WINDOW_START + WINDOW,
        evidence_bundle=EvidenceBundle(evidence_id="ev-test", detections=detections),
    )


def context(tools: InMemoryTools, service: str, alarm: str | None = None) -> AgentContext:
    return AgentContext(incident=incident(service, alarm=alarm), tools=tools)


# An alarm that fires in the middle of the window: quiet, quiet, bad, bad, bad, quiet.
MIDDLE = (0.0, 0.0, 1.0, 1.0, 1.0, 0.0)


def bump(size: float, profile: tuple[float, ...] = MIDDLE) -> list[float]:
    """Per-point window shifts: ``size`` where ``profile`` is 1, nothing where it is 0."""
    return [size * weight for weight in profile]


CHAIN = ["front", "orders", "pricing", "inventory", "store"]


def chain_system(
    propagated: tuple[float, ...] = (100.0, 150.0, 200.0, 300.0), root_shift: float = 400.0
) -> System:
    """front -> orders -> pricing -> inventory -> store; ``store`` (the deepest) is faulty and
    its callers show smaller propagated latency shifts (front first)."""
    system = System(edges=list(pairwise(CHAIN)))
    for service, shift in zip(CHAIN[:-1], propagated, strict=True):
        system.metric(service, "Latency", shift=shift)
        system.metric(service, "Requests", level=500.0, spread=20.0, stat="Sum")
    system.metric("store", "Latency", shift=root_shift)
    system.metric("store", "Errors", level=2.0, spread=1.0, stat="Sum", shift=40.0)
    system.metric("store", "Requests", level=500.0, spread=20.0, stat="Sum")
    return system
