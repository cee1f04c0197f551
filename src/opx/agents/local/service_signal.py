"""Everything anomalous about one service, by modality (metrics, request volume, logs, traces),
and how the modalities combine into one fault score."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from opx.agents.local.families import metric_family
from opx.agents.local.logs import TemplateStat, service_log_scores
from opx.agents.local.robust import ANOMALOUS
from opx.agents.local.series_scores import SeriesScore
from opx.agents.local.spans import LatencyStat, OriginStat


@dataclass(frozen=True)
class ServiceSignal:
    """Everything anomalous about one service, by modality."""

    service: str
    series: tuple[SeriesScore, ...] = ()
    log: TemplateStat | None = None
    log_templates: int = 0
    # The strongest template counted per call of one of its operations (a tied line).
    own_log: TemplateStat | None = None
    origin: OriginStat | None = None
    latency: LatencyStat | None = None
    # The service's extra span time against the largest of any service (1 when unknown): a
    # rise that costs a small part of the time the worst one costs explains little.
    latency_share: float = 1.0

    @property
    def top_series(self) -> SeriesScore | None:
        return self.series[0] if self.series else None

    def top_of(self, traffic: bool) -> SeriesScore | None:
        return next(
            (s for s in self.series if (metric_family(s.metric) == "TRAFFIC") == traffic), None
        )

    @property
    def anomalous_series(self) -> int:
        return sum(1 for s in self.series if s.anomalous)

    def strengths(self) -> dict[str, float]:
        """0..1 per modality; request volume is kept apart from the other metrics because
        load flows from callers to callees, the opposite way of failures."""
        fault, traffic = self.top_of(traffic=False), self.top_of(traffic=True)
        trace = max(
            self.origin.strength if self.origin else 0.0,
            self.latency.strength * self.latency_share if self.latency else 0.0,
        )
        return {
            "metrics": fault.strength if fault else 0.0,
            "traffic": traffic.strength if traffic else 0.0,
            "logs": self.log.strength if self.log else 0.0,
            "traces": trace,
        }

    @property
    def combined(self) -> float:
        """The fault score, or the traffic change if stronger. A traffic change does not count
        as an agreeing modality: a drop in requests and in availability are often one fact."""
        return max(self.fault, self.strengths()["traffic"])

    @property
    def fault(self) -> float:
        """The combined score without request volume: what can explain a caller's anomaly."""
        return _agree(v for k, v in self.strengths().items() if k != "traffic")

    @property
    def own(self) -> float:
        """The part of the fault score no callee can produce: the lines of its own operations
        (tied to its spans, without errors inherited from callees), its exclusive span time,
        the hops into it and the errors that start in it. Metrics are not: even saturation
        follows slow or failing callees (retries, blocked threads and connections). Only
        evidence anomalous on its own counts: a faint one cannot stand against a callee's."""
        logs = self.own_log.strength if self.own_log is not None else 0.0
        found = [v for v in (logs, self.strengths()["traces"]) if v >= ANOMALOUS]
        return _agree(found) if found else 0.0

    @property
    def load_driven(self) -> bool:
        """True when a traffic change is the strongest anomaly of the service."""
        return self.strengths()["traffic"] > self.fault

    @property
    def modalities(self) -> int:
        """How many of metrics, logs and traces are anomalous on their own."""
        return sum(1 for k, v in self.strengths().items() if k != "traffic" and v >= ANOMALOUS)

    @property
    def support(self) -> int:
        """Independent anomalous observations: series, extra log templates and trace kinds."""
        traces = sum(1 for t in (self.origin, self.latency) if t is not None and t.anomalous)
        return self.anomalous_series + min(self.log_templates, 2) + traces

    def dominant(self) -> str:
        strengths = self.strengths()
        return max(("metrics", "traffic", "traces", "logs"), key=lambda m: strengths[m])

    def category(self) -> str:
        dominant = self.dominant()
        top = self.top_of(traffic=dominant == "traffic")
        if dominant in ("metrics", "traffic") and top is not None:
            return metric_family(top.metric)
        if (
            dominant == "traces"
            and self.latency is not None
            and (self.origin is None or self.latency.z > self.origin.z)
        ):
            return "LATENCY"
        return "ERRORS"


def _agree(values: Iterable[float]) -> float:
    """The strongest value, raised by noisy-OR over the values that are anomalous alone."""
    items = list(values)
    missing = 1.0
    for value in items:
        if value >= ANOMALOUS:
            missing *= 1.0 - value
    return max(*items, 1.0 - missing, 0.0)


def build_signals(
    series: Sequence[SeriesScore],
    templates: Sequence[TemplateStat],
    origins: Mapping[str, OriginStat],
    latency: Mapping[str, LatencyStat],
    scope: set[str] | None,
) -> dict[str, ServiceSignal]:
    """Per-service evidence for the services in ``scope`` (all when None)."""
    by_service: dict[str, list[SeriesScore]] = {}
    for score in series:
        by_service.setdefault(score.service, []).append(score)
    best_log = service_log_scores(templates)
    own_log = service_log_scores(t for t in templates if t.operation)
    names = set(by_service) | set(best_log) | set(origins) | set(latency)
    if scope is not None:
        names &= scope
    shares = latency_shares({n: s for n, s in latency.items() if n in names})
    return {
        name: ServiceSignal(
            service=name,
            series=tuple(by_service.get(name, ())),
            log=best_log.get(name),
            own_log=own_log.get(name),
            log_templates=sum(1 for t in templates if t.service == name and t.anomalous),
            origin=origins.get(name),
            latency=latency.get(name),
            latency_share=shares.get(name, 1.0),
        )
        for name in sorted(names)
    }


def latency_shares(latency: Mapping[str, LatencyStat]) -> dict[str, float]:
    """Each service's extra span time as a share of the largest extra time of any anomalous
    one (empty when none is anomalous or none cost time)."""
    worst = max((s.excess_ms for s in latency.values() if s.anomalous), default=0.0)
    if worst <= 0.0:
        return {}
    return {name: min(stat.excess_ms / worst, 1.0) for name, stat in latency.items()}


def metric_evidence(series: Sequence[SeriesScore], traced: bool) -> list[SeriesScore]:
    """The series that count as a service's metric evidence. Where span latency could be
    measured (``traced``), latency series are left to the traces: a service's latency metric
    includes its callees' time and the hops to them, which spans separate, so metrics are kept
    for what only they show (saturation, availability, volume)."""
    if not traced:
        return list(series)
    return [s for s in series if metric_family(s.metric) != "LATENCY"]
