"""Change-intelligence analyst: ranks recent deployments and configuration changes by how well
their timing, place on the call graph, kind and measured impact explain the incident, and names
the likely trigger, or abstains when no change explains it.

Suspicion of one change (0..1) is ``time × relation × kind × impact`` where

- ``time`` compares the change with the incident's *onset*: the end of the first metric bucket
  from which the incident service itself is persistently anomalous (2 of 3 points at a robust z
  of 4 or more against its baseline before the window; request volume excluded, as load is not a
  symptom), or the earliest time in the incident's detections if that is earlier, or the window
  start when neither is known. A change ``lead`` before the onset scores
  ``0.5 ** (lead / half_life)``; a change within the onset's uncertainty (one metric step, one
  minute for a detection, 10 % of the window for the window start) tapers linearly to 0; a later
  change scores 0: it cannot have started the incident, wherever it falls in the window;
- ``relation`` is 1 for the incident service, 0.85/0.7/0.55 for a callee 1/2/3 hops down and
  0.3 further (faults climb from callees to callers), 0.45 for a direct caller (0.25 further up),
  0.35 when the graph cannot tell, 0.1 for an unrelated service, 0.05 for a service missing from
  the graph and 0 for a change whose service is unknown (reported, never named as root cause);
- ``kind`` is 1 for a deployment, 0.85 for a configuration change and 0.7 for infrastructure;
- ``impact`` checks the changed service's own telemetry. Every metric series, and the error
  logs, of the ``after`` minutes following the change are compared with the ``baseline`` hours
  before it: ``shift`` is the robust z that at least a third of the points after the change reach
  (a sustained shift, not a blip), as a 0..1 strength weighted by family (errors, availability
  and latency 1, saturation 0.6, request volume 0.3); ``persist`` is the same measure over the
  incident period (onset to window end), since a shift that faded before the incident cannot
  explain it. ``impact = 0.1 + 0.9 × max over signals of shift × (0.3 + 0.7 × persist)``: a change
  followed by no shift on its service keeps a tenth of its suspicion. A change whose service has
  no telemetry around it scores 0.5 (unknown). When the changed service did shift, its callees
  (within ``max_hops``) are checked too: if one of them shifted in errors, availability, latency
  or saturation at least one step *before* the changed service did (or no later, when that
  callee was itself changed with an impact), the changed service looks like a victim of that
  callee rather than the cause, and the linked part of its impact is cut by 85 %. Only the
  ``impact_checks`` changes with the highest ``time × relation × kind`` (at least ``floor``) are
  measured, and at most ``callee_reads`` callees are read, which bounds the reads.

Confidence is the top suspicion discounted when the runner-up (another service) is close,
``× (0.55 + 0.45 × separation)``, capped at 0.85, or at 0.4 when the top change's impact could not
be measured: timing and relation alone are weak evidence. A rollback is suggested only for a
change whose impact was measured and whose suspicion reaches ``rollback_threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from opx.agents.base import AgentContext
from opx.agents.local.families import metric_family
from opx.agents.local.logs import cluster_errors
from opx.agents.local.robust import (
    Z_THRESHOLD,
    Direction,
    directional_z,
    finite,
    resolve_direction,
    robust_baseline,
    strength,
)
from opx.agents.local.series_scores import merge_series
from opx.agents.local.similarity import Relation, RelationKind, service_relation
from opx.agents.local.telemetry import metric_directions
from opx.agents.local.topology import Topology, descendants
from opx.agents.roster import CHANGE
from opx.domain.errors import ErrorCode, OpxError
from opx.domain.hypothesis import (
    AlternativeCause,
    ConfidenceBasis,
    Evidence,
    Hypothesis,
    HypothesisStatus,
    Recommendation,
    RecommendationType,
    Risk,
    RootCause,
)
from opx.domain.incident import Incident
from opx.domain.tool_result import ToolResult, ToolStatus
from opx.tools.base import TelemetryTools
from opx.tools.paging import CollectedResult, collect
from opx.tools.records import iso_z

KIND_WEIGHTS = {"DEPLOYMENT": 1.0, "CONFIG": 0.85, "INFRASTRUCTURE": 0.7}
CATEGORIES = {
    "DEPLOYMENT": "DEPLOYMENT",
    "CONFIG": "CONFIG_CHANGE",
    "INFRASTRUCTURE": "INFRASTRUCTURE_CHANGE",
}
CONFIDENCE_CAP = 0.85
UNMEASURED_CAP = 0.4
DEGRADED_FACTOR = 0.8
# Share of the window that counts as "at the onset" when only the window start is known.
_EARLY_SHARE = 0.1
DETECTION_SLACK = timedelta(minutes=1)
DEFAULT_STEP = timedelta(minutes=1)
# How much of a change's suspicion survives an impact check that finds nothing, and what an
# impossible check is worth.
IMPACT_FLOOR = 0.1
UNKNOWN_IMPACT = 0.5
# A shift that has faded by the incident still says the change did something.
PERSIST_BASE = 0.3
# How much of the linked impact survives when a callee shifted first, and from which impact
# factor on the callees are checked at all.
VICTIM_DISCOUNT = 0.85
VICTIM_CHECK_FROM = 0.4
# Request volume moves with load from callers; saturation often moves on its own.
FAMILY_WEIGHTS = {
    "ERRORS": 1.0,
    "AVAILABILITY": 1.0,
    "LATENCY": 1.0,
    "SATURATION": 0.6,
    "TRAFFIC": 0.3,
    "UNKNOWN": 0.5,
}
SUSTAINED_SHARE = 1.0 / 3.0
MIN_BEFORE_POINTS = 10
MIN_AFTER_POINTS = 3
MAX_PAGES = 500


# -- records -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeRecord:
    """One change as ``list_deployments`` / ``list_config_changes`` describe it."""

    change_id: str
    timestamp: datetime
    kind: str
    event_source: str
    event_name: str
    resource: str
    service: str | None
    actor: str
    description: str

    @classmethod
    def from_data(cls, item: Mapping[str, Any]) -> ChangeRecord | None:
        """The change, or None when it has no id or no readable time zone-aware timestamp."""
        stamp = parse_time(item.get("timestamp"))
        if stamp is None or not item.get("change_id"):
            return None
        service = item.get("service")
        return cls(
            change_id=str(item["change_id"]),
            timestamp=stamp,
            kind=str(item.get("kind") or "CONFIG").upper(),
            event_source=str(item.get("event_source") or ""),
            event_name=str(item.get("event_name") or "change"),
            resource=str(item.get("resource") or ""),
            service=service if isinstance(service, str) and service else None,
            actor=str(item.get("actor") or ""),
            description=str(item.get("description") or ""),
        )

    @property
    def component(self) -> str:
        return resource_short_name(self.resource)

    @property
    def category(self) -> str:
        return CATEGORIES.get(self.kind, "CONFIG_CHANGE")


@dataclass(frozen=True)
class Onset:
    """When the incident began, how uncertain that is, and what said so."""

    at: datetime
    slack: timedelta
    source: str
    detail: str

    def to_finding(self) -> dict[str, Any]:
        return {
            "at": iso_z(self.at),
            "slack_seconds": self.slack.total_seconds(),
            "source": self.source,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Signal:
    """How one signal of the changed service moved: after the change and during the incident."""

    name: str
    z_after: float
    z_incident: float
    weight: float

    @property
    def shift(self) -> float:
        return self.weight * strength(self.z_after)

    @property
    def persist(self) -> float:
        return self.weight * strength(self.z_incident)

    @property
    def linked(self) -> float:
        return self.shift * (PERSIST_BASE + (1.0 - PERSIST_BASE) * self.persist)


@dataclass(frozen=True)
class Impact:
    """The measured effect of a change on its own service; ``signals`` empty means unknown.
    ``started`` is when the service's metrics first shifted persistently after the change, and
    ``explained_by`` names a callee that shifted before it did."""

    signals: tuple[Signal, ...] = ()
    started: datetime | None = None
    explained_by: str | None = None

    @property
    def measured(self) -> bool:
        return bool(self.signals)

    @property
    def strongest(self) -> Signal | None:
        return max(self.signals, key=lambda s: (s.linked, s.shift, s.name), default=None)

    @property
    def factor(self) -> float:
        top = self.strongest
        if top is None:
            return UNKNOWN_IMPACT
        linked = top.linked * (1.0 - VICTIM_DISCOUNT if self.explained_by else 1.0)
        return IMPACT_FLOOR + (1.0 - IMPACT_FLOOR) * linked

    def to_finding(self) -> dict[str, Any] | None:
        top = self.strongest
        if top is None:
            return None
        return {
            "signal": top.name,
            "z_after_change": round(top.z_after, 3),
            "z_during_incident": round(top.z_incident, 3),
            "shift": round(top.shift, 4),
            "persist": round(top.persist, 4),
            "factor": round(self.factor, 4),
            "signals_checked": len(self.signals),
            "explained_by_callee": self.explained_by,
        }


@dataclass(frozen=True)
class ScoredChange:
    change: ChangeRecord
    relation: Relation
    time_score: float
    relation_score: float
    kind_score: float
    prior: float
    impact: Impact | None
    suspicion: float
    minutes_before_onset: float
    minutes_before_window_start: float

    @property
    def measured(self) -> bool:
        return self.impact is not None and self.impact.measured


# -- pure scoring ----------------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """A time zone-aware datetime from an ISO-8601 string, else None."""
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else None


def resource_short_name(resource: str) -> str:
    """The changed resource's short name: the last ARN segment after ':' or '/'; a parameter
    (an SSM name such as ``/app/flag`` or its ARN) keeps its full name."""
    if resource.startswith("arn:"):
        parts = resource.split(":", 5)
        tail = parts[5] if len(parts) == 6 else resource
        if tail.startswith("parameter/"):
            name = tail[len("parameter/") :]
            return f"/{name}" if "/" in name else name
        return tail.replace("/", ":").rsplit(":", 1)[-1] or resource
    if resource.startswith("/"):
        return resource
    return resource.replace("/", ":").rsplit(":", 1)[-1] or resource


def time_proximity(stamp: datetime, onset: Onset, half_life: timedelta) -> float:
    """How well a change's time fits the onset; see the module docstring."""
    lead = onset.at - stamp
    if lead >= timedelta(0):
        return math.pow(0.5, lead / half_life)
    if onset.slack > timedelta(0) and -lead < onset.slack:
        return 1.0 - (-lead / onset.slack)
    return 0.0


def relation_score(relation: Relation, graph_known: bool, max_hops: int) -> float:
    """How a change's service relates to the incident service; see the module docstring."""
    kind = relation.kind
    if kind is RelationKind.SAME:
        return 1.0
    if kind is RelationKind.CALLEE:
        return 0.85 - 0.15 * (relation.hops - 1) if relation.hops <= max_hops else 0.3
    if kind is RelationKind.CALLER:
        return 0.45 if relation.hops <= 1 else 0.25
    if kind is RelationKind.UNRELATED:
        return 0.1
    # UNKNOWN: without a usable graph the change may still matter; a service the graph lacks
    # is probably not on the incident's call path.
    return 0.35 if not graph_known else 0.05


def score_change(
    change: ChangeRecord,
    incident: Incident,
    graph: Topology,
    onset: Onset,
    *,
    half_life: timedelta,
    max_hops: int,
) -> ScoredChange:
    """The suspicion of one change before its impact is known (``impact`` None)."""
    relation = service_relation(graph, incident.service, change.service)
    known = incident.service in graph
    rel = 0.0 if change.service is None else relation_score(relation, known, max_hops)
    timing = time_proximity(change.timestamp, onset, half_life)
    kind = KIND_WEIGHTS.get(change.kind, KIND_WEIGHTS["INFRASTRUCTURE"])
    prior = timing * rel * kind
    return ScoredChange(
        change,
        relation,
        round(timing, 4),
        round(rel, 4),
        kind,
        round(prior, 4),
        None,
        round(prior * UNKNOWN_IMPACT, 4),
        round((onset.at - change.timestamp).total_seconds() / 60.0, 1),
        round((incident.window_start - change.timestamp).total_seconds() / 60.0, 1),
    )


def with_impact(item: ScoredChange, impact: Impact) -> ScoredChange:
    """The scored change once its impact has been checked."""
    return replace(item, impact=impact, suspicion=round(item.prior * impact.factor, 4))


def change_confidence(top: float, runner_up: float, *, measured: bool = True) -> float:
    """The top suspicion, discounted when another service's change is nearly as suspicious;
    capped lower when the top change's impact could not be measured."""
    if top <= 0.0:
        return 0.0
    separation = max(0.0, top - runner_up) / top
    cap = CONFIDENCE_CAP if measured else UNMEASURED_CAP
    return round(min(cap, top * (0.55 + 0.45 * separation)), 4)


def best_per_service(scored: Sequence[ScoredChange]) -> list[ScoredChange]:
    """The most suspicious change of each known service, most suspicious first."""
    best: dict[str, ScoredChange] = {}
    for item in sorted(scored, key=_rank):
        service = item.change.service
        if service is not None and service not in best:
            best[service] = item
    return sorted(best.values(), key=_rank)


def _rank(item: ScoredChange) -> tuple[float, float, str, str]:
    return (-item.suspicion, -item.prior, iso_z(item.change.timestamp), item.change.change_id)


# -- time series ---------------------------------------------------------------------------------


Point = tuple[datetime, float]


@dataclass(frozen=True)
class Series:
    """One metric series as time-stamped usable points, with the way that is bad for it."""

    series_id: str
    metric: str
    direction: Direction
    points: tuple[Point, ...]

    @classmethod
    def from_data(cls, item: Mapping[str, Any], directions: Mapping[str, str]) -> Series:
        points = []
        for stamp, value in zip(
            item.get("timestamps") or [], item.get("values") or [], strict=False
        ):
            when = parse_time(stamp)
            number = finite([value])
            if when is not None and number:
                points.append((when, number[0]))
        metric = str(item.get("metric") or "")
        return cls(
            str(item.get("id") or ""),
            metric,
            resolve_direction(metric, directions),
            tuple(sorted(points)),
        )

    @property
    def family(self) -> str:
        return metric_family(self.metric)

    @cached_property
    def step(self) -> timedelta:
        """The typical spacing of points (one minute when it cannot be told)."""
        gaps = sorted(b[0] - a[0] for a, b in zip(self.points, self.points[1:], strict=False))
        gaps = [g for g in gaps if g > timedelta(0)]
        return gaps[len(gaps) // 2] if gaps else DEFAULT_STEP

    def between(self, start: datetime, end: datetime) -> list[Point]:
        return [p for p in self.points if start <= p[0] < end]

    def first_shift(self, since: datetime, cut: datetime, end: datetime) -> datetime | None:
        """The first point from ``cut`` to ``end`` from which the series is persistently
        anomalous against its points from ``since`` to ``cut``; None if it never is."""
        before = [v for _, v in self.between(since, cut)]
        reference = robust_baseline(before)
        after = self.between(cut, end)
        if reference is None or len(before) < MIN_BEFORE_POINTS or not after:
            return None
        index = first_sustained([directional_z(v, reference, self.direction) for _, v in after])
        return None if index is None else after[index][0]


def sustained_z(before: Sequence[float], after: Sequence[float], direction: Direction) -> float:
    """The directional robust z that at least a third (and at least two) of the ``after``
    points reach against the ``before`` baseline; 0 when either side is too short."""
    baseline = robust_baseline(before)
    if baseline is None or len(before) < MIN_BEFORE_POINTS or len(after) < MIN_AFTER_POINTS:
        return 0.0
    zs = sorted((directional_z(v, baseline, direction) for v in after), reverse=True)
    rank = max(2, math.ceil(len(zs) * SUSTAINED_SHARE))
    return zs[min(rank, len(zs)) - 1]


def first_sustained(zs: Sequence[float], threshold: float = Z_THRESHOLD) -> int | None:
    """The first index from which at least 2 of 3 points (all, near the end) reach ``threshold``."""
    for index, z in enumerate(zs):
        if z < threshold:
            continue
        ahead = zs[index : index + 3]
        if sum(1 for v in ahead if v >= threshold) >= min(2, len(ahead)):
            return index
    return None


def shift_onset(
    series: Iterable[Series], change_at: datetime, baseline: timedelta, end: datetime
) -> datetime | None:
    """When a service's non-traffic series first shifted persistently after a change, against
    their points in the ``baseline`` before it; None when none did."""
    found = [
        item.first_shift(change_at - baseline, change_at - item.step, end)
        for item in series
        if item.family != "TRAFFIC"
    ]
    return min((f for f in found if f is not None), default=None)


def metric_onset(
    series: Iterable[Series], window_start: datetime, window_end: datetime, lookback: timedelta
) -> Onset | None:
    """The end of the first bucket from which a non-traffic series of the incident service is
    persistently anomalous in the window, against its own points before the window."""
    found: list[tuple[datetime, str, timedelta]] = []
    for item in series:
        first = (
            None
            if item.family == "TRAFFIC"
            else item.first_shift(window_start - lookback, window_start, window_end)
        )
        if first is not None:
            found.append((first + item.step, item.series_id, item.step))
    if not found:
        return None
    at, series_id, step = min(found)
    return Onset(at, step, "metrics", series_id)


def detection_onset(incident: Incident) -> Onset | None:
    """The earliest plausible ISO time in the incident's detections (any field)."""
    span = incident.window_end - incident.window_start
    times = []
    for index, detection in enumerate(incident.evidence_bundle.detections):
        for key in sorted(detection, key=str):
            stamp = parse_time(detection[key])
            # A time far outside the window is not when this incident was seen.
            if stamp is not None and incident.window_start - span <= stamp <= (
                incident.window_end + span
            ):
                times.append((stamp, f"detections[{index}].{key}"))
    if not times:
        return None
    at, where = min(times)
    return Onset(at, DETECTION_SLACK, "detections", where)


def estimate_onset(incident: Incident, metrics: Onset | None) -> Onset:
    """The earlier of the metric and detection onsets, else the window start."""
    known = [o for o in (metrics, detection_onset(incident)) if o is not None]
    if known:
        return min(known, key=lambda o: (o.at, o.source))
    slack = (incident.window_end - incident.window_start) * _EARLY_SHARE
    return Onset(incident.window_start, slack, "window start", "no onset measured")


def series_signal(
    item: Series,
    change_at: datetime,
    after: timedelta,
    baseline: timedelta,
    incident: tuple[datetime, datetime],
) -> Signal | None:
    """How one series moved after a change and during the incident, against the points in the
    ``baseline`` before the change; None when there are too few points to tell."""
    cut = change_at - item.step
    before = [v for _, v in item.between(change_at - baseline, cut)]
    later = [v for _, v in item.between(cut, min(change_at + after, incident[1]))]
    during = [v for _, v in item.between(max(incident[0], cut), incident[1])]
    if len(before) < MIN_BEFORE_POINTS or len(later) < MIN_AFTER_POINTS:
        return None
    z_after = sustained_z(before, later, item.direction)
    z_incident = (
        sustained_z(before, during, item.direction)
        if len(during) >= (MIN_AFTER_POINTS)
        else z_after
    )
    return Signal(item.series_id, z_after, z_incident, FAMILY_WEIGHTS[item.family])


def log_signal(
    events: Sequence[tuple[datetime, Mapping[str, Any]]],
    change_at: datetime,
    after: timedelta,
    baseline: timedelta,
    incident: tuple[datetime, datetime],
) -> Signal | None:
    """How the changed service's error-log templates surged after the change and during the
    incident; None when the logs do not cover the time before the change."""
    start = change_at - baseline
    covered = [t for t, _ in events if t >= start]
    if not covered or covered[0] >= change_at:
        return None
    first = covered[0]
    before = [e for t, e in events if first <= t < change_at]
    end_after = min(change_at + after, incident[1])
    later = [e for t, e in events if change_at <= t < end_after]
    inc_start = max(incident[0], change_at)
    during = [e for t, e in events if inc_start <= t < incident[1]]
    base_seconds = (change_at - first).total_seconds()

    def top_z(window: Sequence[Mapping[str, Any]], seconds: float) -> float:
        stats = cluster_errors(
            before, window, baseline_seconds=base_seconds, window_seconds=seconds
        )
        return stats[0].z if stats else 0.0

    z_after = top_z(later, (end_after - change_at).total_seconds())
    z_during = top_z(during, (incident[1] - inc_start).total_seconds()) if during else z_after
    return Signal("error logs", z_after, z_during, FAMILY_WEIGHTS["ERRORS"])


def measure_impact(
    change_at: datetime,
    series: Sequence[Series],
    events: Sequence[tuple[datetime, Mapping[str, Any]]] | None,
    *,
    after: timedelta,
    baseline: timedelta,
    incident: tuple[datetime, datetime],
) -> Impact:
    """Every measurable signal of the changed service (metrics and error logs)."""
    signals = [
        s
        for s in (series_signal(i, change_at, after, baseline, incident) for i in series)
        if s is not None
    ]
    if events is not None:
        logged = log_signal(events, change_at, after, baseline, incident)
        if logged is not None:
            signals.append(logged)
    started = shift_onset(series, change_at, baseline, incident[1])
    return Impact(tuple(sorted(signals, key=lambda s: s.name)), started)


# -- the analyst -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Telemetry:
    """What was read about one service: its series and its log events (None if unreadable)."""

    series: tuple[Series, ...]
    events: tuple[tuple[datetime, Mapping[str, Any]], ...] | None


class ChangeAnalyst:
    """Deployments and configuration changes close to the incident, ranked by suspicion."""

    agent_id = CHANGE
    version = "local-change/2.0"

    def __init__(
        self,
        lookback: timedelta = timedelta(hours=24),
        *,
        half_life: timedelta = timedelta(minutes=45),
        max_hops: int = 3,
        floor: float = 0.15,
        rollback_threshold: float = 0.5,
        report_limit: int = 20,
        baseline: timedelta = timedelta(hours=3),
        after: timedelta = timedelta(minutes=30),
        impact_checks: int = 8,
        callee_reads: int = 12,
    ) -> None:
        self.lookback = lookback
        self.half_life = half_life
        self.max_hops = max_hops
        self.floor = floor
        self.rollback_threshold = rollback_threshold
        self.report_limit = report_limit
        self.baseline = baseline
        self.after = after
        self.impact_checks = impact_checks
        self.callee_reads = callee_reads

    def analyze(self, ctx: AgentContext) -> Hypothesis:
        notes: list[str] = []
        changes = self._changes(ctx, notes)
        graph = self._graph(ctx, notes)
        onset = self._onset(ctx, notes) if changes else estimate_onset(ctx.incident, None)
        scored = [
            score_change(
                c, ctx.incident, graph, onset, half_life=self.half_life, max_hops=self.max_hops
            )
            for c in changes
        ]
        scored = sorted(self._check_impacts(ctx, scored, graph, onset, notes), key=_rank)
        ranked = [s for s in best_per_service(scored) if s.suspicion >= self.floor]
        if not ranked:
            return self._abstain(ctx, scored, onset, notes)
        return self._build(ctx, scored, ranked, onset, notes)

    # -- tools ---------------------------------------------------------------------------------

    def _changes(self, ctx: AgentContext, notes: list[str]) -> list[ChangeRecord]:
        start, end = ctx.incident.window_start - self.lookback, ctx.incident.window_end
        tools = ctx.tools
        results = {
            "list_deployments": collect(lambda t: tools.list_deployments(start, end, next_token=t)),
            "list_config_changes": collect(
                lambda t: tools.list_config_changes(start, end, next_token=t)
            ),
        }
        usable = 0
        found: dict[str, ChangeRecord] = {}
        for name, result in results.items():
            if _note_failure(name, result, notes):
                continue
            usable += 1
            for item in result.data.get("changes", []):
                change = ChangeRecord.from_data(item) if isinstance(item, Mapping) else None
                if change is not None:
                    found.setdefault(change.change_id, change)
        if usable == 0:
            raise OpxError(
                ErrorCode.DATA_SOURCE_UNAVAILABLE,
                "no change source could be read: " + "; ".join(notes),
            )
        return [found[k] for k in sorted(found)]

    def _graph(self, ctx: AgentContext, notes: list[str]) -> Topology:
        result = collect(lambda t: ctx.tools.get_service_graph(next_token=t))
        _note_failure("get_service_graph", result, notes)
        return Topology.from_payload(result.data)

    def _onset(self, ctx: AgentContext, notes: list[str]) -> Onset:
        incident = ctx.incident
        telemetry = self._read(
            ctx.tools,
            incident.service,
            (incident.window_start - self.baseline, incident.window_end),
            notes,
            with_logs=False,
        )
        found = metric_onset(
            telemetry.series, incident.window_start, incident.window_end, self.baseline
        )
        return estimate_onset(incident, found)

    def _check_impacts(
        self,
        ctx: AgentContext,
        scored: Sequence[ScoredChange],
        graph: Topology,
        onset: Onset,
        notes: list[str],
    ) -> list[ScoredChange]:
        """Measure the impact of the most suspicious changes by prior, one read per service."""
        eligible = sorted(
            (s for s in scored if s.change.service is not None and s.prior >= self.floor),
            key=lambda s: (-s.prior, _rank(s)),
        )
        chosen = {s.change.change_id for s in eligible[: self.impact_checks]}
        starts: dict[str, datetime] = {}
        for item in scored:
            if item.change.change_id in chosen and item.change.service is not None:
                begin = item.change.timestamp - self.baseline
                starts[item.change.service] = min(starts.get(item.change.service, begin), begin)
        end = ctx.incident.window_end
        read = {
            service: self._read(ctx.tools, service, (starts[service], end), notes, with_logs=True)
            for service in sorted(starts)
        }
        incident = (onset.at - onset.slack, end)
        impacts: dict[str, Impact] = {}
        for item in scored:
            telemetry = read.get(item.change.service or "")
            if item.change.change_id in chosen and telemetry is not None:
                impacts[item.change.change_id] = measure_impact(
                    item.change.timestamp,
                    telemetry.series,
                    telemetry.events,
                    after=self.after,
                    baseline=self.baseline,
                    incident=incident,
                )
        shifted = _shifted_services(scored, impacts)
        result = []
        for item in scored:
            impact = impacts.get(item.change.change_id)
            if impact is None:
                result.append(item)
                continue
            if impact.factor >= VICTIM_CHECK_FROM and impact.started is not None:
                impact = self._victim_check(ctx, item, impact, graph, (read, shifted), notes)
            result.append(with_impact(item, impact))
        return result

    def _victim_check(
        self,
        ctx: AgentContext,
        item: ScoredChange,
        impact: Impact,
        graph: Topology,
        known: tuple[dict[str, _Telemetry], Mapping[str, datetime]],
        notes: list[str],
    ) -> Impact:
        """The impact, marked as explained when a callee of the changed service shifted at
        least one step before the changed service itself did, or no later when that callee's
        own change had an impact."""
        read, shifted = known
        service, at, end = str(item.change.service), item.change.timestamp, ctx.incident.window_end
        started = impact.started
        if started is None or service not in graph:
            return impact
        step = min((s.step for s in read[service].series), default=DEFAULT_STEP)
        reach = descendants(graph, service)
        callees = sorted(
            (c for c, hops in reach.items() if 0 < hops <= self.max_hops),
            key=lambda c: (reach[c], c),
        )
        for callee in callees:
            if callee in shifted and shifted[callee] <= started:
                return replace(impact, explained_by=callee)
            if callee not in read:
                if len(read) >= self.impact_checks + self.callee_reads:
                    break
                read[callee] = self._read(
                    ctx.tools, callee, (at - self.baseline, end), notes, with_logs=False
                )
            first = shift_onset(read[callee].series, at, self.baseline, end)
            if first is not None and first + step <= started:
                return replace(impact, explained_by=callee)
        return impact

    def _read(
        self,
        tools: TelemetryTools,
        service: str,
        span: tuple[datetime, datetime],
        notes: list[str],
        *,
        with_logs: bool,
    ) -> _Telemetry:
        start, end = span
        directions = metric_directions(tools)
        metrics = _collect(lambda t: tools.get_metrics(start, end, service=service, next_token=t))
        series: tuple[Series, ...] = ()
        if not _note_failure(f"get_metrics({service})", metrics, notes):
            merged = merge_series(metrics.data.get("series") or [])
            series = tuple(Series.from_data(merged[k], directions) for k in sorted(merged))
        if not with_logs:
            return _Telemetry(series, None)
        logs = _collect(lambda t: tools.search_logs(start, end, service=service, next_token=t))
        if _note_failure(f"search_logs({service})", logs, notes):
            return _Telemetry(series, None)
        events = []
        for event in logs.data.get("events") or []:
            stamp = parse_time(event.get("timestamp")) if isinstance(event, Mapping) else None
            if stamp is not None:
                events.append((stamp, event))
        events.sort(key=lambda e: e[0])
        return _Telemetry(series, tuple(events))

    # -- output --------------------------------------------------------------------------------

    def _abstain(
        self, ctx: AgentContext, scored: Sequence[ScoredChange], onset: Onset, notes: list[str]
    ) -> Hypothesis:
        start = iso_z(ctx.incident.window_start - self.lookback)
        if scored:
            best = max(scored, key=lambda s: (s.suspicion, s.change.change_id))
            reason = (
                f"{len(scored)} change(s) since {start}, none both close before the onset "
                f"({iso_z(onset.at)}) and followed by a shift on a related service "
                f"(best suspicion {best.suspicion:.2f} < {self.floor:.2f})"
            )
        else:
            reason = f"No deployment or configuration change since {start}"
        return Hypothesis(
            agent_id=self.agent_id,
            agent_version=self.version,
            status=HypothesisStatus.PARTIAL if notes else HypothesisStatus.SUCCESS,
            description=reason + "; no change-related root cause to report.",
            findings=self._findings(scored, None, None, onset, notes),
        )

    def _build(
        self,
        ctx: AgentContext,
        scored: Sequence[ScoredChange],
        ranked: Sequence[ScoredChange],
        onset: Onset,
        notes: list[str],
    ) -> Hypothesis:
        top = ranked[0]
        runner_up = ranked[1].suspicion if len(ranked) > 1 else 0.0
        confidence = change_confidence(top.suspicion, runner_up, measured=top.measured)
        if notes:
            confidence = round(confidence * DEGRADED_FACTOR, 4)
        recommendation = self._recommendation(top)
        rollback = recommendation if recommendation.type is RecommendationType.ROLLBACK else None
        change = top.change
        return Hypothesis(
            agent_id=self.agent_id,
            agent_version=self.version,
            status=HypothesisStatus.PARTIAL if notes else HypothesisStatus.SUCCESS,
            root_cause=RootCause(
                service=str(change.service), component=change.component, category=change.category
            ),
            description=_describe(top, ctx.incident, onset, len(ranked)),
            confidence=confidence,
            confidence_basis=[ConfidenceBasis.DATA],
            alternatives=[
                AlternativeCause(
                    service=str(s.change.service),
                    component=s.change.component,
                    category=s.change.category,
                    confidence=round(confidence * s.suspicion / top.suspicion, 4),
                )
                for s in ranked[1:5]
            ],
            evidence=_evidence(scored, self.floor, top),
            contradicting_evidence=_contradicting(scored, self.floor),
            recommendations=[recommendation],
            findings=self._findings(scored, top, rollback, onset, notes),
        )

    def _recommendation(self, top: ScoredChange) -> Recommendation:
        change = top.change
        when = iso_z(change.timestamp)
        if top.measured and top.suspicion >= self.rollback_threshold:
            return Recommendation(
                type=RecommendationType.ROLLBACK,
                description=_clip(
                    f"Consider rolling back {change.event_name} on "
                    f"{change.resource} made at {when} (change {change.change_id})"
                    ", after confirming it matches the onset."
                ),
                risk=Risk.MEDIUM,
            )
        return Recommendation(
            type=RecommendationType.INVESTIGATION,
            description=_clip(
                f"Consider reviewing {change.event_name} on {change.resource} "
                f"made at {when} (change {change.change_id}) for a link to the "
                "incident."
            ),
            risk=Risk.LOW,
        )

    def _findings(
        self,
        scored: Sequence[ScoredChange],
        top: ScoredChange | None,
        rollback: Recommendation | None,
        onset: Onset,
        notes: list[str],
    ) -> dict[str, Any]:
        return {
            "onset": onset.to_finding(),
            "recent_changes": [_change_finding(s) for s in scored[: self.report_limit]],
            "changes_considered": len(scored),
            "impact_checked": sum(1 for s in scored if s.impact is not None),
            "likely_trigger": None if top is None else _change_finding(top),
            "rollback_recommendation": None
            if rollback is None or top is None
            else {
                "change_id": top.change.change_id,
                "event_name": top.change.event_name,
                "resource": top.change.resource,
                "timestamp": iso_z(top.change.timestamp),
                "description": rollback.description,
            },
            "unattributed_changes": [
                s.change.change_id for s in scored if s.change.service is None
            ],
            "degraded": notes,
        }


def _shifted_services(
    scored: Sequence[ScoredChange], impacts: Mapping[str, Impact]
) -> dict[str, datetime]:
    """For each service with an impactful change, when it first shifted after one."""
    shifted: dict[str, datetime] = {}
    for item in scored:
        impact = impacts.get(item.change.change_id)
        service = item.change.service
        if (
            service is None
            or impact is None
            or impact.started is None
            or impact.factor < VICTIM_CHECK_FROM
        ):
            continue
        shifted[service] = min(shifted.get(service, impact.started), impact.started)
    return shifted


def _collect(call: Callable[[str | None], ToolResult]) -> CollectedResult:
    return collect(call, max_pages=MAX_PAGES)


def _note_failure(name: str, result: CollectedResult, notes: list[str]) -> bool:
    """Record a failed or incomplete source; True when nothing usable came back."""
    if result.status is ToolStatus.FAILED:
        detail = "; ".join(e.message for e in result.errors) or "no detail"
        notes.append(f"{name} failed: {detail}")
        return not result.data
    if result.truncated:
        notes.append(f"{name} was truncated")
    return False


def _describe(top: ScoredChange, incident: Incident, onset: Onset, plausible: int) -> str:
    change = top.change
    minutes = top.minutes_before_onset
    when = (
        f"{minutes:.0f} min before the onset ({iso_z(onset.at)}, from {onset.source})"
        if minutes >= 0
        else f"at the onset ({iso_z(onset.at)}, from {onset.source})"
    )
    text = (
        f"{change.kind.lower()} {change.event_name} on {change.resource} "
        f"(service {change.service}, {top.relation.describe()} of {incident.service}) "
        f"{when}; "
    )
    strongest = top.impact.strongest if top.impact is not None else None
    if strongest is None:
        text += "its impact on the service could not be measured; "
    else:
        text += (
            f"{strongest.name} shifted after it (robust z {strongest.z_after:.1f}, "
            f"{strongest.z_incident:.1f} during the incident); "
        )
    text += f"suspicion {top.suspicion:.2f}."
    if plausible > 1:
        text += f" {plausible - 1} other service(s) also changed plausibly."
    return text[:1].upper() + text[1:]


def _evidence(scored: Sequence[ScoredChange], floor: float, top: ScoredChange) -> list[Evidence]:
    items = []
    for tool, kinds in (
        ("list_deployments", {"DEPLOYMENT"}),
        ("list_config_changes", {"CONFIG", "INFRASTRUCTURE"}),
    ):
        chosen = [s for s in scored if s.change.kind in kinds and s.suspicion >= floor][:5]
        if chosen:
            items.append(
                Evidence(
                    tool=tool,
                    record_ids=[s.change.change_id for s in chosen],
                    summary="; ".join(
                        f"{s.change.change_id} {s.change.event_name} on "
                        f"{s.change.service or 'unknown service'} suspicion "
                        f"{s.suspicion:.2f}"
                        for s in chosen
                    ),
                )
            )
    strongest = top.impact.strongest if top.impact is not None else None
    if strongest is not None:
        tool = "search_logs" if strongest.name == "error logs" else "get_metrics"
        items.append(
            Evidence(
                tool=tool,
                query=f"service={top.change.service}",
                record_ids=[] if tool == "search_logs" else [strongest.name],
                summary=(
                    f"{strongest.name} of {top.change.service} after "
                    f"{top.change.change_id}: robust z {strongest.z_after:.1f} against the "
                    f"time before the change, {strongest.z_incident:.1f} during the incident"
                ),
            )
        )
    return items


def _contradicting(scored: Sequence[ScoredChange], floor: float) -> list[Evidence]:
    """Changes that timing and relation made suspicious but whose service did not move."""
    quiet = [s for s in scored if s.measured and s.prior >= floor and s.suspicion < floor][:5]
    if not quiet:
        return []
    return [
        Evidence(
            tool="get_metrics",
            record_ids=[s.change.change_id for s in quiet],
            summary="No sustained shift on the changed service after: "
            + "; ".join(
                f"{s.change.change_id} {s.change.event_name} on {s.change.service}" for s in quiet
            ),
        )
    ]


def _change_finding(item: ScoredChange) -> dict[str, Any]:
    change = item.change
    return {
        "change_id": change.change_id,
        "kind": change.kind,
        "event_name": change.event_name,
        "service": change.service,
        "resource": change.resource,
        "timestamp": iso_z(change.timestamp),
        "minutes_before_onset": item.minutes_before_onset,
        "minutes_before_window_start": item.minutes_before_window_start,
        "relation": item.relation.describe() if change.service else "unknown service",
        "time_score": item.time_score,
        "relation_score": item.relation_score,
        "prior": item.prior,
        "impact": None if item.impact is None else item.impact.to_finding(),
        "suspicion": item.suspicion,
    }


def _clip(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
