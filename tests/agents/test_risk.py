"""The risk-blast-radius analyst: origin, affected services, paths, scope and traffic."""

from __future__ import annotations

from typing import Any

import pytest

from opx.agents.local.risk import RiskAnalyst, blast_radius, is_shared, window_requests
from opx.agents.local.signal import SignalAnalyst
from opx.agents.local.topology import Topology
from opx.domain.errors import ErrorCode, OpxError
from opx.domain.hypothesis import Hypothesis, HypothesisStatus, RecommendationType
from opx.tools.memory import Source

from .builders_signal import WINDOW_POINTS, System, bump, chain_system, context


def analyze(system: System, service: str = "front", **kwargs: Any) -> Hypothesis:
    return RiskAnalyst().analyze(context(system.tools(**kwargs), service))


def test_a_chain_fault_is_traced_to_its_deepest_anomalous_node() -> None:
    hypothesis = analyze(chain_system())
    assert hypothesis.status is HypothesisStatus.SUCCESS
    assert hypothesis.root_cause is not None
    assert hypothesis.root_cause.service == "store"
    assert hypothesis.root_cause.category == "LATENCY"
    radius = hypothesis.findings["blast_radius"]
    assert radius["scope"] == "MULTI_SERVICE"
    assert radius["affected_services"] == ["front", "inventory", "orders", "pricing", "store"]
    assert radius["propagation_paths"] == [["store", "inventory", "pricing", "orders", "front"]]
    priorities = hypothesis.findings["mitigation_priority"]
    assert [p["service"] for p in priorities][:2] == ["store", "inventory"]
    kinds = {r.type for r in hypothesis.recommendations}
    assert kinds == {RecommendationType.MITIGATION, RecommendationType.INVESTIGATION}
    assert any("from inventory to store" in r.description for r in hypothesis.recommendations)


def test_risk_confidence_is_moderate_and_below_the_signal_analysts() -> None:
    system = chain_system()
    risk = analyze(system)
    signal = SignalAnalyst().analyze(context(system.tools(), "front"))
    assert 0.2 < risk.confidence <= 0.6
    assert risk.confidence < signal.confidence


def test_request_estimate_comes_from_the_traffic_counts_of_the_window() -> None:
    system = chain_system()
    hypothesis = analyze(system)
    requests = next(s for s in system.series if s.service == "front" and s.metric == "Requests")
    expected = sum(requests.values[-WINDOW_POINTS:])
    radius = hypothesis.findings["blast_radius"]
    assert radius["estimated_requests"] == pytest.approx(expected, abs=1e-3)
    assert set(radius["requests_by_service"]) == set(radius["affected_services"])
    assert any(e.tool == "get_traffic" for e in hypothesis.evidence)


def test_a_shared_dependency_is_an_infrastructure_scope() -> None:
    callers = ["front", "cart", "search", "orders"]
    edges = [("front", "cart"), ("front", "search"), ("front", "orders")]
    edges += [(c, "cache") for c in callers[1:]] + [("front", "cache")]
    system = System(edges=edges)
    for service in callers:
        system.metric(service, "Latency", shift=60.0)
    system.metric("cache", "Latency", shift=400.0)
    hypothesis = analyze(system)
    assert hypothesis.root_cause is not None and hypothesis.root_cause.service == "cache"
    radius = hypothesis.findings["blast_radius"]
    assert radius["scope"] == "INFRASTRUCTURE"
    assert radius["origin_direct_callers"] == 4
    assert any("shared-dependency" in r.description for r in hypothesis.recommendations)


def test_shared_is_defined_by_structure_not_names() -> None:
    chain = Topology.from_edges([], [("a", "b"), ("b", "c"), ("c", "d")])
    assert not is_shared(chain, "d")  # a chain's leaf has one caller
    hub = Topology.from_edges([], [("a", "x"), ("b", "x"), ("c", "x")])
    assert is_shared(hub, "x")
    # Two callers that together carry most of the graph also make a shared dependency.
    pair = Topology.from_edges([], [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")])
    assert is_shared(pair, "d")


def test_a_healthy_system_has_no_origin_and_a_single_service_scope() -> None:
    healthy = System(edges=[("front", "api"), ("api", "db")])
    for service in ("front", "api", "db"):
        healthy.healthy_metrics(service)
    hypothesis = analyze(healthy)
    assert hypothesis.root_cause is None
    assert hypothesis.confidence == 0.0
    radius = hypothesis.findings["blast_radius"]
    assert radius["scope"] == "SINGLE_SERVICE"
    assert radius["affected_services"] == ["front"]
    assert radius["propagation_paths"] == []
    assert hypothesis.findings["anomalous_services"] == {}


def test_an_unrelated_fault_widens_the_radius_but_is_not_the_origin() -> None:
    system = System(edges=[("front", "api"), ("batch", "reports")])
    system.healthy_metrics("front")
    system.healthy_metrics("api")
    system.metric("reports", "Latency", shift=900.0)
    hypothesis = analyze(system)
    assert hypothesis.root_cause is None
    assert hypothesis.findings["blast_radius"]["affected_services"] == ["batch", "front", "reports"]


def test_blast_radius_without_a_graph_falls_back_to_the_strongest_anomaly() -> None:
    radius = blast_radius(None, "front", {"db": 0.9, "api": 0.7})
    assert radius.origin == "db"
    assert radius.paths == ()
    assert radius.scope == "MULTI_SERVICE"


def test_without_a_graph_the_opinion_is_weaker() -> None:
    with_graph = analyze(chain_system())
    without = analyze(chain_system(), unavailable={Source.GRAPH: "no x-ray"})
    assert without.status is HypothesisStatus.PARTIAL
    assert without.root_cause is not None
    assert without.confidence < with_graph.confidence / 2


def test_metrics_unavailable_raises() -> None:
    with pytest.raises(OpxError) as caught:
        analyze(chain_system(), unavailable={Source.METRICS: "down"})
    assert caught.value.code is ErrorCode.DATA_SOURCE_UNAVAILABLE


def test_no_metrics_raises_insufficient_data() -> None:
    with pytest.raises(OpxError) as caught:
        analyze(System(edges=[("front", "api")]))
    assert caught.value.code is ErrorCode.INSUFFICIENT_DATA


def test_window_requests_count_only_request_counts() -> None:
    series: list[dict[str, Any]] = [
        {"metric": "Requests", "stat": "Sum", "values": [10.0, 20.0, None]},
        {"metric": "Requests", "stat": "Average", "values": [1000.0]},
        {"metric": "Latency", "stat": "Sum", "values": [5.0]},
    ]
    assert window_requests(series) == 30.0
    assert window_requests(series[1:]) is None


def test_a_traffic_only_change_is_affected_but_never_the_origin() -> None:
    system = System(edges=[("front", "api"), ("api", "db")])
    system.metric("front", "Latency", shift=100.0)
    system.metric("api", "Latency", shift=300.0)
    system.metric("db", "Requests", level=500.0, spread=20.0, stat="Sum", shift=-450.0)
    system.metric("db", "Latency", level=10.0, spread=1.0)
    hypothesis = analyze(system)
    assert hypothesis.root_cause is not None and hypothesis.root_cause.service == "api"
    assert hypothesis.findings["traffic_only_services"] == ["db"]
    assert "db" in hypothesis.findings["blast_radius"]["affected_services"]


def test_an_origin_must_account_for_most_of_the_alarms_impact() -> None:
    # front calls a busy service and a nearly idle leaf; both fail while front does. The idle
    # leaf fails far more in relative terms but accounts for few of front's failed requests.
    system = System(edges=[("front", "service"), ("front", "idle")])
    system.metric("front", "Requests", level=500.0, spread=5.0, stat="Sum")
    system.metric("front", "Availability", level=100.0, spread=0.05, window_shifts=bump(-5.0))
    system.metric("service", "Requests", level=1000.0, spread=10.0, stat="Sum")
    system.metric("service", "Availability", level=100.0, spread=0.05, window_shifts=bump(-3.0))
    system.metric("idle", "Requests", level=5.0, spread=0.5, stat="Sum")
    system.metric("idle", "Availability", level=100.0, spread=0.05, window_shifts=bump(-60.0))
    hypothesis = RiskAnalyst().analyze(
        context(system.tools(), "front", alarm="front|Availability|Average")
    )
    assert hypothesis.root_cause is not None and hypothesis.root_cause.service == "service"
    assert hypothesis.findings["blast_radius"]["origin"] == "service"
    assert "idle" in hypothesis.findings["anomalous_services"]
    assert "idle" not in {a.service for a in hypothesis.alternatives}


def test_coverage_decides_which_anomalous_leaves_can_be_origins() -> None:
    graph = Topology.from_edges([], [("front", "a"), ("front", "b")])
    anomalous = {"a": 0.99, "b": 0.9}
    assert blast_radius(graph, "front", anomalous).ends == ("a", "b")
    covered = blast_radius(graph, "front", anomalous, coverage={"a": 0.2, "b": 1.0})
    assert covered.ends == ("b",)
    # Both can be origins; they rank by anomaly x coverage (0.99 x 0.6 < 0.9 x 1).
    assert blast_radius(graph, "front", anomalous, coverage={"a": 0.6}).ends == ("b", "a")


def test_time_waiting_on_callees_never_makes_a_service_the_origin() -> None:
    system = System(edges=[("front", "api"), ("api", "db")])
    system.metric("front", "Latency", shift=100.0)
    system.metric("api", "Latency", shift=300.0)
    system.metric("db", "ClientLatency", level=10.0, spread=1.0, shift=400.0)
    system.metric("db", "Latency", level=10.0, spread=1.0)
    hypothesis = analyze(system)
    assert hypothesis.root_cause is not None and hypothesis.root_cause.service == "api"
    # The same rise on the service's own latency makes it the origin.
    own = System(edges=[("front", "api"), ("api", "db")])
    own.metric("front", "Latency", shift=100.0)
    own.metric("api", "Latency", shift=300.0)
    own.metric("db", "Latency", level=10.0, spread=1.0, shift=400.0)
    found = analyze(own)
    assert found.root_cause is not None and found.root_cause.service == "db"
