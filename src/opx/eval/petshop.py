"""Turns PetShop issues, and windows cut from its healthy baseline, into evaluation cases: an
``IncidentCreated`` event and an in-memory telemetry bundle each.

An issue's telemetry holds every column as the series ``(node, metric, statistic)``: the healthy
baseline shifted in time so that it ends one period before the issue's first row, then the
issue's rows. The analysis window runs from the first issue row to the last row plus one period:
the dataset's alarm time often falls before the largest deviation, so a window ending at the
alarm would cut the fault off. The dataset format is described in :mod:`opx.eval.petshop_data`
and the change feed in :mod:`opx.eval.petshop_changes`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opx.eval.petshop_changes import decoy_changes, issue_changes, numbered
from opx.eval.petshop_data import PERIOD, Column, Issue, MetricTable, Scenario
from opx.eval.scoring import CaseKey
from opx.tools.memory import InMemoryTools
from opx.tools.records import Change, MetricSeries, ServiceGraph, iso_z

METRIC_DIRECTIONS = {"latency": "up", "availability": "down", "requests": "both"}
UNITS = {"latency": "Seconds", "availability": "Percent", "requests": "Count"}
SEVERITY = "SEV2"


def metric_series(tables: Sequence[MetricTable]) -> list[MetricSeries]:
    """One series per column found in any table, points in table order; missing cells are
    skipped. The tables must follow each other in time."""
    points: dict[Column, tuple[list[datetime], list[float]]] = {}
    for table in tables:
        for column in table.columns:
            points.setdefault(column, ([], []))
        for index, column in enumerate(table.columns):
            stamps, values = points[column]
            for stamp, row in zip(table.timestamps, table.rows, strict=True):
                value = row[index]
                if value is not None:
                    stamps.append(stamp)
                    values.append(value)
    return [
        MetricSeries(c.node, c.metric, c.stat, UNITS.get(c.metric, ""), tuple(s), tuple(v))
        for c, (s, v) in sorted(points.items())
    ]


def before(baseline: MetricTable, start: datetime) -> MetricTable:
    """The baseline shifted so that its last row is the period just before ``start``."""
    return baseline.shifted(start - PERIOD - baseline.timestamps[-1])


def make_tools(
    name: str, tables: Sequence[MetricTable], graph: ServiceGraph, changes: Sequence[Change] = ()
) -> InMemoryTools:
    return InMemoryTools(
        name,
        series=metric_series(tables),
        graph=graph,
        changes=changes,
        metric_directions=METRIC_DIRECTIONS,
    )


def incident_event(
    incident_id: str,
    service: str,
    metric: str,
    stat: str,
    alarm_at: datetime,
    window: tuple[datetime, datetime],
) -> dict[str, Any]:
    """The ``IncidentCreated`` event of an alarm on ``service``'s ``metric``."""
    title = f"{service} {metric} ({stat}) alarm"
    detection = {
        "detection_id": f"{incident_id}/alarm",
        "service": service,
        "metric": metric,
        "stat": stat,
        "detected_at": iso_z(alarm_at),
        "description": title,
    }
    return {
        "source": "opx.incident",
        "detail-type": "IncidentCreated",
        "detail": {
            "incident_id": incident_id,
            "service": service,
            "severity": SEVERITY,
            "window_start": iso_z(window[0]),
            "window_end": iso_z(window[1]),
            "evidence_bundle": {
                "evidence_id": f"{incident_id}/evidence",
                "detections": [detection],
            },
            "title": title,
        },
    }


@dataclass(frozen=True)
class Case:
    """One run to make: the event, its telemetry and the answer (None for a healthy window)."""

    key: CaseKey
    event: dict[str, Any]
    tools: InMemoryTools
    truth: str | None
    graph_nodes: int


def issue_case(scenario: Scenario, issue: Issue, *, changes: bool = False, seed: int = 0) -> Case:
    target = issue.target
    window = issue.metrics.span
    incident_id = f"petshop/{scenario.name}/{issue.split}/{issue.name}"
    feed: list[Change] = []
    if changes:
        rng = random.Random(f"{seed}|changes|{incident_id}")
        feed = issue_changes(issue, scenario.graph, rng)
    return Case(
        key=CaseKey(issue.split, scenario.name, issue.name, target.metric, changes),
        event=incident_event(
            incident_id, target.node, target.metric, target.stat, target.alarm_at, window
        ),
        tools=make_tools(
            incident_id, [before(scenario.baseline, window[0]), issue.metrics], scenario.graph, feed
        ),
        truth=target.root_cause,
        graph_nodes=len(scenario.graph.nodes),
    )


def window_starts(
    rows: int, length: int, history: int, count: int, rng: random.Random
) -> list[int]:
    """``count`` distinct start rows of windows of ``length`` rows with at least ``history``
    rows before each, in increasing order (all possible ones if there are fewer)."""
    possible = range(history, rows - length + 1)
    return sorted(rng.sample(possible, min(count, len(possible))))


def healthy_cases(
    scenario: Scenario,
    *,
    windows: int,
    history: timedelta,
    changes: bool = False,
    seed: int = 0,
) -> list[Case]:
    """Specificity cases: ``windows`` windows of an issue window's length cut from the healthy
    baseline at seeded positions, each with every alarm of the scenario firing at its end."""
    alarms = scenario.alarms
    if not alarms or not scenario.issues or windows <= 0:
        return []
    length = max(len(i.metrics.timestamps) for i in scenario.issues)
    base = scenario.baseline
    need = math.ceil(history / PERIOD)
    starts = window_starts(
        len(base.timestamps),
        length,
        need,
        windows,
        random.Random(f"{seed}|specificity|{scenario.name}"),
    )
    cases = []
    for start in starts:
        shown = base.head(start + length)
        window = base.cut(start, start + length).span
        for alarm in alarms:
            name = f"window_{start}"
            incident_id = f"petshop/{scenario.name}/healthy/{name}/{alarm.metric}"
            feed: list[Change] = []
            if changes:
                rng = random.Random(f"{seed}|changes|{incident_id}")
                feed = decoy_changes(scenario.graph, set(), window[1], rng)
            cases.append(
                Case(
                    key=CaseKey(
                        "healthy", scenario.name, name, alarm.metric, changes, healthy=True
                    ),
                    event=incident_event(
                        incident_id, alarm.node, alarm.metric, alarm.stat, window[1], window
                    ),
                    tools=make_tools(incident_id, [shown], scenario.graph, numbered(feed, "ct")),
                    truth=None,
                    graph_nodes=len(scenario.graph.nodes),
                )
            )
    return cases


def issue_cases(
    scenarios: Sequence[Scenario], *, changes: bool = False, seed: int = 0
) -> list[Case]:
    return [issue_case(s, i, changes=changes, seed=seed) for s in scenarios for i in s.issues]
