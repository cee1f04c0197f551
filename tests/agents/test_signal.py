"""The signal-intelligence analyst on small synthetic systems served by InMemoryTools."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from opx.agents.base import Analyst
from opx.agents.local.alarm import AlarmRef, anchor_profile, incident_alarm
from opx.agents.local.families import metric_family
from opx.agents.local.risk import RiskAnalyst
from opx.agents.local.series_scores import merge_series
from opx.agents.local.signal import SignalAnalyst
from opx.domain.errors import ErrorCode, OpxError
from opx.domain.hypothesis import Hypothesis, HypothesisStatus, RecommendationType
from opx.domain.incident import EvidenceBundle, Incident, Severity
from opx.domain.tool_result import ToolResult, ToolStatus
from opx.tools.memory import Source
from opx.tools.records import LogEvent, LogLevel

from .builders_signal import WINDOW_START, System, bump, chain_system, context, noise


def analyze(system: System, service: str = "front", **kwargs: Any) -> Hypothesis:
    return SignalAnalyst().analyze(context(system.tools(**kwargs), service))


def test_the_deepest_faulty_node_of_a_chain_is_the_root_cause() -> None:
    hypothesis = analyze(chain_system())
    assert hypothesis.status is HypothesisStatus.SUCCESS
    assert hypothesis.root_cause is not None
    assert hypothesis.root_cause.service == "store"
    assert hypothesis.root_cause.category == "LATENCY"
    assert hypothesis.root_cause.component is None
    assert hypothesis.confidence >= 0.6
    # store's extra request-seconds account for each caller's: every caller is a symptom, and
    # among equally explained symptoms the one nearer the origin comes first.
    assert [a.service for a in hypothesis.alternatives] == [
        "inventory",
        "pricing",
        "orders",
        "front",
    ]
    assert all(a.confidence < hypothesis.confidence for a in hypothesis.alternatives)
    metric_evidence = [e for e in hypothesis.evidence if e.tool == "get_metrics"]
    # The store's own anomalous series, and the alarm series the analysis was anchored on.
    assert {r for e in metric_evidence for r in e.record_ids} == {
        "store|Latency|Average",
        "store|Errors|Sum",
        "front|Latency|Average",
    }
    assert hypothesis.findings["alarm"]["series"] == "front|Latency|Average"
    ranking = hypothesis.findings["ranking"]
    assert ranking[0]["service"] == "store" and ranking[0]["explained_by"] is None
    assert all(r["explained_by"] is not None for r in ranking[1:])
    assert "store -> inventory -> pricing -> orders -> front" in hypothesis.description
    assert all(r.type is RecommendationType.INVESTIGATION for r in hypothesis.recommendations)
    assert hypothesis.confidence_basis == ["data"]


def test_a_healthy_system_names_no_root_cause() -> None:
    healthy = chain_system(propagated=(0.0, 0.0, 0.0, 0.0), root_shift=0.0)
    healthy.series = [s for s in healthy.series if s.metric != "Errors"]
    healthy.metric("store", "Errors", level=2.0, spread=1.0, stat="Sum")
    hypothesis = analyze(healthy)
    assert hypothesis.status is HypothesisStatus.SUCCESS
    assert hypothesis.root_cause is None
    assert hypothesis.confidence == 0.0
    assert hypothesis.alternatives == []
    assert "No significant anomaly" in hypothesis.description
    assert hypothesis.findings["anomalies"] == []
    assert hypothesis.findings["series_scored"] == 11


def test_a_fault_off_the_incident_path_is_not_the_root_cause() -> None:
    system = System(edges=[("front", "orders"), ("orders", "pricing"), ("batch", "reports")])
    system.metric("front", "Latency", shift=60.0)
    system.metric("orders", "Latency", shift=80.0)
    system.metric("pricing", "Latency", shift=100.0)
    system.metric("batch", "Latency", shift=500.0)
    system.metric("reports", "Latency", shift=900.0)
    hypothesis = analyze(system)
    assert hypothesis.root_cause is not None
    assert hypothesis.root_cause.service == "pricing"
    ranked = {r["service"] for r in hypothesis.findings["ranking"]}
    assert ranked == {"front", "orders", "pricing"}
    assert "reports" not in {a.service for a in hypothesis.alternatives}


def test_only_an_unrelated_fault_means_no_root_cause_for_this_incident() -> None:
    system = System(edges=[("front", "orders"), ("batch", "reports")])
    system.healthy_metrics("front")
    system.healthy_metrics("orders")
    system.metric("reports", "Latency", shift=900.0)
    hypothesis = analyze(system)
    assert hypothesis.root_cause is None
    assert hypothesis.confidence == 0.0


def test_noisy_data_with_single_spikes_still_finds_the_fault() -> None:
    system = System(edges=[("front", "orders"), ("orders", "pricing"), ("orders", "stock")])
    spike_window = noise(99, 6, 100.0, 5.0)
    spike_window[2] = 900.0  # one noisy point in the caller
    system.metric("front", "Latency", shift=40.0, spread=8.0)
    system.metric("orders", "Latency", window_values=spike_window)
    system.metric("stock", "Latency", level=50.0, spread=10.0)
    system.metric("pricing", "Latency", shift=150.0, spread=10.0)
    system.metric("pricing", "CPUUtilization", level=30.0, spread=3.0, shift=45.0)
    hypothesis = analyze(system)
    assert hypothesis.root_cause is not None
    assert hypothesis.root_cause.service == "pricing"
    anomalous_ids = {a["series_id"] for a in hypothesis.findings["anomalies"]}
    assert "orders|Latency|Average" not in anomalous_ids


def _leaf_system(shift: float, extra_evidence: bool) -> System:
    system = System(edges=[("front", "api"), ("api", "db")])
    system.healthy_metrics("front")
    system.healthy_metrics("api")
    system.metric("db", "Latency", shift=shift)
    system.metric("db", "Requests", level=500.0, spread=20.0, stat="Sum")
    if extra_evidence:
        system.metric("db", "Errors", level=1.0, spread=0.5, stat="Sum", shift=30.0)
        system.chatter("db")
        for i in range(8):
            system.log("db", 3 + i, f"deadlock detected on table orders row {i}", LogLevel.ERROR)
    return system


def test_confidence_is_low_for_weak_evidence_and_high_for_strong_evidence() -> None:
    weak = analyze(_leaf_system(shift=25.0, extra_evidence=False))
    strong = analyze(_leaf_system(shift=300.0, extra_evidence=True))
    assert weak.root_cause is not None and weak.root_cause.service == "db"
    assert strong.root_cause is not None and strong.root_cause.service == "db"
    assert weak.confidence < 0.4
    assert strong.confidence > 0.75
    assert any(e.tool == "search_logs" for e in strong.evidence)


def test_comparable_candidates_lower_the_confidence() -> None:
    system = System(edges=[("front", "left"), ("front", "right")])
    system.healthy_metrics("front")
    system.metric("left", "Latency", shift=200.0)
    system.metric("left", "Errors", level=1.0, spread=0.5, stat="Sum", shift=20.0)
    system.metric("right", "Latency", shift=200.0)
    system.metric("right", "Errors", level=1.0, spread=0.5, stat="Sum", shift=20.0)
    hypothesis = analyze(system)
    assert hypothesis.root_cause is not None
    assert hypothesis.confidence < 0.45
    assert {hypothesis.root_cause.service, hypothesis.alternatives[0].service} == {"left", "right"}
    assert hypothesis.contradicting_evidence


def test_logs_and_traces_alone_localise_an_error_origin() -> None:
    system = System(edges=[("front", "api"), ("api", "db")])
    for service in ("front", "api", "db"):
        system.healthy_metrics(service)
        system.chatter(service)
    for i in range(60):
        system.call(f"b{i}", -300 + i * 4, ["front", "api", "db"], [50.0, 30.0, 10.0])
    for i in range(12):
        system.call(f"w{i}", 1 + i * 2, ["front", "api", "db"], [50.0, 30.0, 10.0], failing_from=0)
        system.log("db", 1 + i * 2, f"connection pool exhausted after {i} ms", LogLevel.ERROR)
        system.log("front", 1 + i * 2, "upstream returned 500", LogLevel.ERROR)
    hypothesis = analyze(system)
    assert hypothesis.root_cause is not None
    assert hypothesis.root_cause.service == "db"
    assert hypothesis.root_cause.category == "ERRORS"
    tools = {e.tool for e in hypothesis.evidence}
    assert {"search_logs", "get_traces"} <= tools
    trace_ids = {r for e in hypothesis.evidence if e.tool == "get_traces" for r in e.record_ids}
    assert trace_ids and trace_ids <= {f"w{i}" for i in range(12)}
    assert hypothesis.findings["trace_findings"][0]["service"] == "db"
    templates = hypothesis.findings["log_templates"]
    assert {t["service"] for t in templates} == {"db", "front"}


def test_configured_directions_decide_what_is_bad() -> None:
    system = System(edges=[("front", "api")])
    system.healthy_metrics("front")
    system.metric("api", "Throughput", level=500.0, spread=10.0, shift=-300.0)
    assert analyze(system).root_cause is not None  # unknown name: both ways are bad
    calm = analyze(system, directions={"Throughput": "up"})
    assert calm.root_cause is None


def test_a_failed_source_gives_a_partial_answer_with_less_confidence() -> None:
    full = analyze(chain_system())
    partial = analyze(chain_system(), unavailable={Source.TRACES: "x-ray is down"})
    assert partial.status is HypothesisStatus.PARTIAL
    assert partial.root_cause is not None and partial.root_cause.service == "store"
    assert partial.confidence < full.confidence
    assert any("x-ray is down" in note for note in partial.findings["data_gaps"])
    assert any(e.tool == "data_gaps" for e in partial.contradicting_evidence)


def test_all_telemetry_unavailable_raises_data_source_unavailable() -> None:
    down = dict.fromkeys((Source.METRICS, Source.LOGS, Source.TRACES), "down")
    with pytest.raises(OpxError) as caught:
        analyze(chain_system(), unavailable=down)
    assert caught.value.code is ErrorCode.DATA_SOURCE_UNAVAILABLE


def test_no_data_at_all_raises_insufficient_data() -> None:
    with pytest.raises(OpxError) as caught:
        analyze(System(edges=[("front", "api")]))
    assert caught.value.code is ErrorCode.INSUFFICIENT_DATA


def test_without_a_graph_every_service_is_a_candidate() -> None:
    system = System(edges=[("front", "api")])
    system.healthy_metrics("front")
    system.metric("api", "Latency", shift=300.0)
    system.metric("elsewhere", "Latency", shift=30.0)
    hypothesis = analyze(system, with_graph=False)
    assert hypothesis.status is HypothesisStatus.SUCCESS
    assert hypothesis.findings["scope"]["graph"] is False
    assert hypothesis.root_cause is not None and hypothesis.root_cause.service == "api"
    assert "elsewhere" in {r["service"] for r in hypothesis.findings["ranking"]}


def test_the_analysis_is_deterministic() -> None:
    first = analyze(chain_system()).model_dump(mode="json")
    second = analyze(chain_system()).model_dump(mode="json")
    assert first == second


def test_metric_families() -> None:
    assert metric_family("p99Latency") == "LATENCY"
    assert metric_family("5xxErrors") == "ERRORS"
    assert metric_family("Availability") == "AVAILABILITY"
    assert metric_family("CPUUtilization") == "SATURATION"
    assert metric_family("Requests") == "TRAFFIC"
    assert metric_family("Mystery") == "UNKNOWN"


class _BulkTools:
    """Whole answers in one page, so the timing below measures the analysis, not paging."""

    source_name = "bulk"
    metric_directions: dict[str, str] = {}  # noqa: RUF012 - read-only here

    def __init__(self, system: System) -> None:
        self._system = system
        self._graph = system.tools().get_service_graph().data

    def get_service_graph(self, next_token: str | None = None) -> ToolResult:
        return ToolResult(status=ToolStatus.SUCCESS, data=self._graph, source="bulk")

    def get_metrics(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        metric: str | None = None,
        stat: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult:
        series = []
        for s in self._system.series:
            if service is not None and s.service != service:
                continue
            points = [
                (t, v) for t, v in zip(s.timestamps, s.values, strict=True) if start <= t < end
            ]
            series.append(
                {
                    **s.header(),
                    "timestamps": [t.isoformat() for t, _ in points],
                    "values": [v for _, v in points],
                }
            )
        return ToolResult(status=ToolStatus.SUCCESS, data={"series": series}, source="bulk")

    def get_traffic(
        self, service: str, start: datetime, end: datetime, next_token: str | None = None
    ) -> ToolResult:
        return self.get_metrics(start, end, service)

    def search_logs(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        pattern: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult:
        return ToolResult(status=ToolStatus.SUCCESS, data={"events": []}, source="bulk")

    def get_traces(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        errors_only: bool = False,
        next_token: str | None = None,
    ) -> ToolResult:
        return ToolResult(status=ToolStatus.SUCCESS, data={"spans": []}, source="bulk")


def test_forty_services_of_twenty_series_of_seven_hundred_points_take_well_under_a_second() -> None:
    names = [f"svc{i:02d}" for i in range(40)]
    system = System(
        edges=[(names[i], names[j]) for i in range(40) for j in (2 * i + 1, 2 * i + 2) if j < 40]
    )
    for name in names:
        for k in range(20):
            shift = 200.0 if name == "svc37" and k < 3 else 0.0
            system.metric(name, f"Latency{k}", shift=shift, baseline_points=670, window_points=30)
    tools: Any = _BulkTools(system)
    analysts: tuple[Analyst, ...] = (SignalAnalyst(), RiskAnalyst())
    for analyst in analysts:
        began = time.perf_counter()
        hypothesis = analyst.analyze(context(tools, "svc00"))
        elapsed = time.perf_counter() - began
        assert hypothesis.root_cause is not None and hypothesis.root_cause.service == "svc37"
        # Generous bound for slow CI machines; it runs in about 0.2 s.
        assert elapsed < 2.0


def test_a_traffic_drop_downstream_is_a_consequence_not_the_origin() -> None:
    system = System(edges=[("front", "api"), ("api", "db")])
    system.metric("front", "Latency", shift=100.0)
    system.metric("api", "Latency", shift=300.0)
    system.metric("api", "Errors", level=1.0, spread=0.5, stat="Sum", shift=25.0)
    # api fails before calling db, so db sees far fewer requests: load flows downwards.
    system.metric("db", "Requests", level=500.0, spread=20.0, stat="Sum", shift=-450.0)
    system.metric("db", "Latency", level=10.0, spread=1.0)
    hypothesis = analyze(system)
    assert hypothesis.root_cause is not None
    assert hypothesis.root_cause.service == "api"
    ranking = {r["service"]: r for r in hypothesis.findings["ranking"]}
    assert ranking["db"]["explained_by"] == "api"
    assert ranking["db"]["category"] == "TRAFFIC"
    assert ranking["api"]["top_series"] in {"api|Latency|Average", "api|Errors|Sum"}


def test_a_baseline_shorter_than_the_lookback_does_not_fake_a_log_surge() -> None:
    # Logs start only an hour before the window (the lookback is 24 h); the error rate is
    # the same before and during the window, so nothing is anomalous.
    system = System(edges=[("front", "api")])
    system.healthy_metrics("front")
    system.healthy_metrics("api")
    for minute in range(-60, 30, 2):
        system.log("api", minute, f"cache miss for key {minute}, retry failed", LogLevel.ERROR)
    hypothesis = analyze(system)
    assert hypothesis.root_cause is None
    assert hypothesis.findings["log_templates"] == []


MINUTE = timedelta(minutes=1)


def _minutely(
    system: System,
    service: str,
    metric: str,
    *,
    level: float,
    spread: float,
    shift: float = 0.0,
    stat: str = "Average",
) -> None:
    system.metric(
        service,
        metric,
        level=level,
        spread=spread,
        shift=shift,
        stat=stat,
        baseline_points=180,
        window_points=30,
        step=MINUTE,
    )


def _slow_provider(distractions: bool = True) -> System:
    """web -> checkout -> payments -> provider is slow for the whole window; beside it a queue
    logs two errors (four in the three hours before: too few for a robust spread) and a
    catalog's CPU blips for four minutes: neither is a rival to the provider."""
    system = System(
        edges=[
            ("web", "checkout"),
            ("checkout", "payments"),
            ("payments", "provider"),
            ("web", "queue"),
            ("web", "catalog"),
        ]
    )
    for service, shift in (
        ("web", 150.0),
        ("checkout", 250.0),
        ("payments", 300.0),
        ("provider", 800.0),
    ):
        _minutely(system, service, "Latency", level=200.0, spread=10.0, shift=shift)
    _minutely(system, "provider", "Latency", level=400.0, spread=20.0, shift=1500.0, stat="p99")
    if not distractions:
        return system
    rare = [1.0 if i in (10, 14, 39, 120) else 0.0 for i in range(180)]
    usual = [1.0 if i in (21, 28) else 0.0 for i in range(30)]
    system.metric(
        "queue", "errors", stat="Sum", baseline_values=rare, window_values=usual, step=MINUTE
    )
    cpu = noise(5, 30, 35.0, 1.0)
    blip = [60.0 if 4 <= i < 8 else v for i, v in enumerate(cpu)]
    system.metric(
        "catalog", "cpu", baseline_values=noise(6, 180, 35.0, 1.0), window_values=blip, step=MINUTE
    )
    return system


def test_sparse_counts_and_short_blips_do_not_rival_a_sustained_fault() -> None:
    hypothesis = analyze(_slow_provider(), "web")
    assert hypothesis.root_cause is not None
    assert hypothesis.root_cause.service == "provider"
    anomalous = {a["series_id"] for a in hypothesis.findings["anomalies"]}
    assert "queue|errors|Sum" not in anomalous
    assert "catalog|cpu|Average" not in anomalous
    assert {"queue", "catalog"}.isdisjoint(a.service for a in hypothesis.alternatives)
    # The only other anomalous services are the provider's callers, explained by it: the
    # top candidate is clearly separated, so the confidence is high, as high as without the
    # distractions.
    assert hypothesis.confidence >= 0.75
    assert hypothesis.confidence == analyze(_slow_provider(distractions=False), "web").confidence


def test_a_sustained_error_surge_on_a_sparse_count_is_found() -> None:
    system = _slow_provider()
    system.series = [s for s in system.series if s.service != "provider"]
    _minutely(system, "provider", "Latency", level=200.0, spread=10.0)
    rare = [1.0 if i in (10, 14, 39, 80, 120, 170) else 0.0 for i in range(180)]
    surge = [float(1 + i % 3) for i in range(30)]  # 60 errors in half an hour
    system.series = [s for s in system.series if s.service != "queue"]
    system.metric(
        "queue", "errors", stat="Sum", baseline_values=rare, window_values=surge, step=MINUTE
    )
    hypothesis = analyze(system, "web")
    assert hypothesis.root_cause is not None
    assert hypothesis.root_cause.service == "queue"
    assert hypothesis.root_cause.category == "ERRORS"
    assert "expected at the baseline rate" in hypothesis.description


# -- the alarm as anchor, and the impact it must be explained by ---------------------------------


def _alarmed(system: System, alarm: str, service: str = "front") -> Hypothesis:
    return SignalAnalyst().analyze(context(system.tools(), service, alarm=alarm))


def test_a_condition_that_was_already_there_is_not_the_cause_of_the_alarm() -> None:
    system = System(edges=[("front", "drifted"), ("front", "cause")])
    system.metric("front", "Latency", window_shifts=bump(60.0))
    # drifted is far off its baseline all window long, also while front was fine.
    system.metric("drifted", "Latency", shift=400.0)
    system.metric("cause", "Latency", window_shifts=bump(150.0))
    hypothesis = _alarmed(system, "front|Latency|Average")
    assert hypothesis.root_cause is not None and hypothesis.root_cause.service == "cause"
    assert hypothesis.findings["alarm"]["anchored"] is True
    assert hypothesis.findings["alarm"]["active_points"] == 3
    anomalous = {a["service"] for a in hypothesis.findings["anomalies"]}
    assert "drifted" not in anomalous
    # Without an alarm that moved, the drift would be the strongest anomaly.
    flat = System(edges=[("front", "drifted"), ("front", "cause")])
    flat.metric("front", "Latency", window_values=[99.0] * 6)
    flat.metric("drifted", "Latency", shift=400.0)
    flat.metric("cause", "Latency", window_shifts=bump(150.0))
    unanchored = _alarmed(flat, "front|Latency|Average")
    assert unanchored.findings["alarm"]["anchored"] is False
    assert unanchored.root_cause is not None and unanchored.root_cause.service == "drifted"


def _failing_pair(proxy_requests: float) -> System:
    """front calls a busy service and a nearly idle proxy; both fail while front's availability
    drops. The proxy fails far more in relative terms, the service far more in requests."""
    system = System(edges=[("front", "service"), ("front", "proxy")])
    system.metric("front", "Requests", level=500.0, spread=5.0, stat="Sum")
    system.metric(
        "front", "Availability", level=100.0, spread=0.05, unit="Percent", window_shifts=bump(-5.0)
    )
    system.metric("service", "Requests", level=1000.0, spread=10.0, stat="Sum")
    system.metric(
        "service",
        "Availability",
        level=100.0,
        spread=0.05,
        unit="Percent",
        window_shifts=bump(-3.0),
    )
    system.metric("proxy", "Requests", level=proxy_requests, spread=0.5, stat="Sum")
    system.metric(
        "proxy", "Availability", level=100.0, spread=0.05, unit="Percent", window_shifts=bump(-60.0)
    )
    return system


def test_the_origin_must_account_for_the_failures_the_alarm_reports() -> None:
    hypothesis = _alarmed(_failing_pair(proxy_requests=5.0), "front|Availability|Average")
    assert hypothesis.root_cause is not None and hypothesis.root_cause.service == "service"
    ranking = {r["service"]: r for r in hypothesis.findings["ranking"]}
    # 3 % of 1000 requests fail at service, 60 % of 5 at the proxy, 5 % of 500 at front.
    assert ranking["service"]["coverage"] == 1.0
    assert ranking["proxy"]["coverage"] == pytest.approx(3.0 / 25.0, abs=0.03)
    assert ranking["proxy"]["modalities"]["metrics"] > ranking["service"]["modalities"]["metrics"]
    assert hypothesis.findings["alarm"]["impact_dimension"] == "failures"
    assert "account for 100% of front's" in hypothesis.description
    # A busy proxy that carries the failures is a rival again.
    busy = _alarmed(_failing_pair(proxy_requests=1000.0), "front|Availability|Average")
    assert busy.root_cause is not None and busy.root_cause.service == "proxy"


def test_a_caller_with_far_more_extra_latency_than_its_callee_has_its_own_problem() -> None:
    system = System(edges=[("front", "api"), ("api", "db")])
    for service in ("front", "api", "db"):
        system.metric(service, "Requests", level=500.0, spread=5.0, stat="Sum")
    system.metric("front", "Latency", window_shifts=bump(300.0), unit="Milliseconds")
    system.metric("api", "Latency", window_shifts=bump(290.0), unit="Milliseconds")
    # db slows down too, noticeably but by a twentieth of what api and front lose.
    system.metric(
        "db", "Latency", level=10.0, spread=0.5, window_shifts=bump(15.0), unit="Milliseconds"
    )
    hypothesis = _alarmed(system, "front|Latency|Average")
    assert hypothesis.root_cause is not None and hypothesis.root_cause.service == "api"
    ranking = {r["service"]: r for r in hypothesis.findings["ranking"]}
    assert ranking["front"]["explained_by"] == "api"
    assert ranking["db"]["coverage"] < 0.1


def test_checks_against_the_alarm_raise_the_confidence_of_a_single_series_origin() -> None:
    def system(db_counted: bool) -> System:
        built = System(edges=[("front", "db")])
        built.metric("front", "Requests", level=500.0, spread=5.0, stat="Sum")
        built.metric("front", "Latency", window_shifts=bump(100.0))
        if db_counted:
            built.metric("db", "Requests", level=500.0, spread=5.0, stat="Sum")
        built.metric("db", "Latency", window_shifts=bump(300.0))
        return built

    covering = _alarmed(system(db_counted=True), "front|Latency|Average")
    uncounted = _alarmed(system(db_counted=False), "front|Latency|Average")
    for hypothesis in (covering, uncounted):
        assert hypothesis.root_cause is not None and hypothesis.root_cause.service == "db"
    # One anomalous series, coinciding with the alarm; only the first shows it accounts for the
    # alarm's extra request-seconds.
    assert covering.confidence >= 0.6
    assert uncounted.confidence < covering.confidence
    assert "account for 100% of front's" in covering.description


def test_the_alarm_alone_confirms_nothing_about_itself() -> None:
    system = System(edges=[("front", "api")])
    system.metric("front", "Requests", level=500.0, spread=5.0, stat="Sum")
    system.metric("front", "Latency", window_shifts=bump(300.0))
    system.healthy_metrics("api")
    hypothesis = _alarmed(system, "front|Latency|Average")
    assert hypothesis.root_cause is not None and hypothesis.root_cause.service == "front"
    assert hypothesis.confidence < 0.6


def test_the_alarm_series_comes_from_the_detection_or_the_alarm_text() -> None:
    def incident_with(detections: list[dict[str, Any]], title: str | None = None) -> Incident:
        return Incident(
            incident_id="i",
            service="web",
            severity=Severity.SEV2,
            window_start=WINDOW_START,
            window_end=WINDOW_START + timedelta(minutes=30),
            title=title,
            evidence_bundle=EvidenceBundle(evidence_id="e", detections=detections),
        )

    piped = incident_alarm(
        incident_with([{"metric": "other|errors|Sum"}, {"metric": "web|latency|p99"}])
    )
    assert (piped.metric, piped.stat) == ("latency", "p99")
    fields = incident_alarm(
        incident_with([{"service": "web", "metric": "availability", "stat": "Average"}])
    )
    assert (fields.metric, fields.stat) == ("availability", "Average")
    named = incident_alarm(incident_with([{"rule_id": "web-availability-low"}]))
    assert named.metric is None and "web-availability-low" in named.text


def test_an_alarm_text_that_mentions_requests_does_not_anchor_on_request_volume() -> None:
    system = System(edges=[("web", "db")])
    system.metric(
        "web", "Requests", level=500.0, spread=5.0, stat="Sum", window_shifts=bump(-300.0)
    )
    system.metric("web", "Latency", window_shifts=bump(200.0))
    system.metric("web", "Latency", stat="p99", level=300.0, spread=10.0, window_shifts=bump(900.0))
    tools = system.tools()
    window = (WINDOW_START, WINDOW_START + timedelta(minutes=30))
    payloads = {
        name: merge_series(tools.get_metrics(start, end, service="web").data["series"])
        for name, (start, end) in {
            "baseline": (WINDOW_START - timedelta(hours=6), WINDOW_START),
            "window": window,
        }.items()
    }
    mentioned = anchor_profile(
        AlarmRef("web", text="web requests are slow"), payloads["baseline"], payloads["window"], {}
    )
    named = anchor_profile(
        AlarmRef("web", metric="Latency", stat="p99"), payloads["baseline"], payloads["window"], {}
    )
    averaged = anchor_profile(
        AlarmRef("web", metric="latency"), payloads["baseline"], payloads["window"], {}
    )
    assert mentioned is not None and mentioned.series_id.startswith("web|Latency|")
    assert named is not None and named.series_id == "web|Latency|p99"
    assert averaged is not None and averaged.series_id == "web|Latency|Average"
    assert named.active == (False, False, True, True, True, False)


def _tied_line(
    system: System,
    trace: str,
    depth: int,
    service: str,
    minute: float,
    message: str,
    level: LogLevel = LogLevel.INFO,
) -> None:
    when = WINDOW_START + timedelta(minutes=minute)
    system.logs.append(
        LogEvent(
            f"log-{len(system.logs)}",
            when,
            service,
            level,
            message,
            trace_id=trace,
            span_id=f"{trace}-{depth}",
        )
    )


def test_an_operation_that_stops_logging_while_still_called_is_the_origin() -> None:
    # db still answers every call, but the line it logs on each one is gone: its code stops
    # short. Nothing is slower, nothing logs an error.
    system = System(edges=[("front", "api"), ("api", "db")])
    for service in ("front", "api", "db"):
        system.healthy_metrics(service)
    for i in range(60):
        system.call(f"b{i}", -300 + i * 4, ["front", "api", "db"], [50.0, 30.0, 10.0])
        _tied_line(system, f"b{i}", 1, "api", -300 + i * 4, f"fetching order {i}")
        _tied_line(system, f"b{i}", 2, "db", -300 + i * 4, f"query order {i} ok")
    for i in range(12):
        system.call(f"w{i}", 1 + i * 2, ["front", "api", "db"], [50.0, 30.0, 10.0])
        _tied_line(system, f"w{i}", 1, "api", 1 + i * 2, f"fetching order {i}")
    hypothesis = analyze(system)
    assert hypothesis.root_cause is not None and hypothesis.root_cause.service == "db"
    quiet = [t for t in hypothesis.findings["log_templates"] if t["kind"] == "quiet"]
    assert [(t["service"], t["operation"]) for t in quiet] == [("db", "call")]
    logs = [e.summary for e in hypothesis.evidence if e.tool == "search_logs"]
    assert logs and "logged 0 ordinary lines" in logs[0]
