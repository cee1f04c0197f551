"""HistoricalAnalyst and the similarity helpers: retrieval ranking, aggregation, abstention,
advice wording and degradation."""

from __future__ import annotations

from typing import Any

import pytest

from opx.agents.base import AgentContext
from opx.agents.local.historical import HistoricalAnalyst, classify_action
from opx.agents.local.similarity import (
    Relation,
    RelationKind,
    incident_similarity,
    is_command_like,
    recency_factor,
    service_relation,
    severity_match,
    tfidf_similarities,
    tokenize,
)
from opx.agents.local.topology import Topology
from opx.domain.errors import ErrorCode, OpxError
from opx.domain.hypothesis import ConfidenceBasis, HypothesisStatus, RecommendationType, Risk
from opx.tools.memory import Source
from opx.tools.records import PastIncident, Resolution

from .builders_context import EDGES, context, incident, past, tools

DETECTIONS: list[dict[str, Any]] = [
    {"rule_id": "latency-p99-breach", "metric": "p99Latency", "service": "checkout"},
    {"rule_id": "error-rate", "metric": "PaymentTimeouts", "value": 42},
]


def _truly_similar(**overrides: object) -> PastIncident:
    fields: dict[str, Any] = {
        "service": "checkout",
        "title": "Checkout latency high with payment timeouts",
        "symptoms": ["p99 latency breach", "payment timeout errors"],
        "root": "payments-db",
        "component": "connection-pool",
        "days_ago": 30,
        "resolution": Resolution(
            "MITIGATION", "Raised the payments-db connection pool limit.",
            ("Increase the connection pool size of payments-db",
             "Check slow queries on payments-db"), 45.0),
    }
    fields.update(overrides)
    return past("H-TRUE", **fields)


def _history() -> list[PastIncident]:
    return [
        _truly_similar(),
        past("H-SAME-SVC", service="checkout", title="Checkout returns 404 for static assets",
             symptoms=["missing product images"], root="checkout", component="assets",
             category="CONFIG_CHANGE", days_ago=5),
        past("H-ISLAND", service="reporting", title="Reporting latency high with timeouts",
             symptoms=["p99 latency breach", "query timeout errors"], root="reporting-db",
             days_ago=3),
        past("H-ALSO", service="payments", title="Payment timeouts and checkout latency",
             symptoms=["payment timeout errors", "connection pool exhausted"],
             root="payments-db", component="connection-pool", days_ago=200),
    ]


def _ctx(history: list[PastIncident], **kwargs: Any) -> AgentContext:
    return context(tools(incidents=history, **kwargs), inc=incident(detections=DETECTIONS))


# -- similarity helpers ------------------------------------------------------------------------


def test_tokenize_splits_names_and_stems_inflections() -> None:
    assert tokenize("ReadThrottleEvents throttled") == ["read", "throttl", "event", "throttl"]
    assert tokenize("p99Latency of the API") == ["p99", "latency", "api"]
    assert "the" not in tokenize("the error")


def test_text_similarity_measures() -> None:
    same, partial, disjoint = tfidf_similarities(
        tokenize("payment timeout latency"),
        [tokenize("latency payment timeouts"), tokenize("payment outage"), tokenize("disk full")],
    )
    assert same == pytest.approx(1.0)
    assert 0.0 < partial < same
    assert disjoint == 0.0


def test_relation_severity_and_recency_features() -> None:
    graph = Topology.from_edges([], EDGES)
    assert service_relation(graph, "checkout", "checkout").kind is RelationKind.SAME
    assert service_relation(graph, "checkout", "payments-db") == Relation(RelationKind.CALLEE, 2)
    assert service_relation(graph, "checkout", "web") == Relation(RelationKind.CALLER, 1)
    assert service_relation(graph, "checkout", "reporting").kind is RelationKind.UNRELATED
    assert service_relation(graph, "checkout", "nowhere").kind is RelationKind.UNKNOWN
    assert service_relation(graph, "checkout", None).kind is RelationKind.UNKNOWN
    assert severity_match("SEV2", "SEV2") == 1.0 > severity_match("SEV2", "SEV4")
    assert severity_match("HIGH", "SEV2") == 1.0
    assert recency_factor(0) == pytest.approx(1.0)
    assert 0.8 <= recency_factor(3650) < recency_factor(365) < recency_factor(30)


def test_incident_similarity_orders_relation_and_requires_shared_symptoms() -> None:
    same = incident_similarity(Relation(RelationKind.SAME), 0.6, 1.0, 10)
    neighbour = incident_similarity(Relation(RelationKind.CALLEE, 1), 0.6, 1.0, 10)
    unrelated = incident_similarity(Relation(RelationKind.UNRELATED), 0.6, 1.0, 10)
    assert same > neighbour > unrelated
    assert incident_similarity(Relation(RelationKind.SAME), 0.0, 1.0, 0) < 0.35
    assert incident_similarity(Relation(RelationKind.SAME), 0.6, 1.0, 10) > incident_similarity(
        Relation(RelationKind.SAME), 0.6, 1.0, 1000)


def test_command_detection() -> None:
    assert is_command_like("Run `aws rds reboot-db-instance`")
    assert is_command_like("kubectl rollout undo deployment/payments")
    assert is_command_like("Set it with --max-connections 200")
    assert not is_command_like("Increase the connection pool size of payments-db")
    assert not is_command_like("Roll back the most recent deployment")


def test_action_classification() -> None:
    assert classify_action("Roll back the payments release", "MITIGATION")[0] is (
        RecommendationType.ROLLBACK)
    assert classify_action("Redeploy the previous version", "ROLLBACK") == (
        RecommendationType.ROLLBACK, Risk.MEDIUM)
    assert classify_action("Check slow queries", "ROLLBACK")[0] is RecommendationType.INVESTIGATION
    assert classify_action("Restart the consumers", "MITIGATION") == (
        RecommendationType.MITIGATION, Risk.MEDIUM)
    assert classify_action("Increase the pool size", "MITIGATION") == (
        RecommendationType.MITIGATION, Risk.LOW)


# -- analysis ----------------------------------------------------------------------------------


def test_truly_similar_incident_ranks_first_and_names_its_root_cause() -> None:
    hyp = HistoricalAnalyst().analyze(_ctx(_history()))

    similar = hyp.findings["similar_incidents"]
    assert similar[0]["incident_id"] == "H-TRUE"
    ids = [s["incident_id"] for s in similar]
    assert "H-SAME-SVC" not in ids  # same service, unrelated symptoms
    if "H-ISLAND" in ids:
        assert ids.index("H-ISLAND") > ids.index("H-TRUE")
    assert hyp.status is HypothesisStatus.SUCCESS
    assert hyp.root_cause is not None
    assert hyp.root_cause.service == "payments-db"
    assert hyp.root_cause.component == "connection-pool"
    assert hyp.root_cause.category == "RESOURCE_EXHAUSTION"
    assert hyp.confidence_basis == [ConfidenceBasis.PATTERN]
    assert 0.0 < hyp.confidence <= 0.75
    assert "H-TRUE" in hyp.evidence[0].record_ids
    assert similar[0]["resolution_summary"] == "Raised the payments-db connection pool limit."


def test_recommendations_come_from_the_resolution_as_advice() -> None:
    hyp = HistoricalAnalyst().analyze(_ctx(_history()))

    types = [r.type for r in hyp.recommendations]
    assert RecommendationType.ROLLBACK not in types
    assert RecommendationType.MITIGATION in types
    mitigation = next(r for r in hyp.recommendations if r.type is RecommendationType.MITIGATION)
    assert mitigation.description.startswith("Consider")
    assert "connection pool size" in mitigation.description
    assert "H-TRUE" in mitigation.description


def test_rollback_only_when_the_resolution_says_so() -> None:
    rolled = _truly_similar(resolution=Resolution(
        "ROLLBACK", "Reverted the payments release.", ("Redeploy the previous payments build",),
        20.0))
    hyp = HistoricalAnalyst().analyze(_ctx([rolled]))

    rollbacks = [r for r in hyp.recommendations if r.type is RecommendationType.ROLLBACK]
    assert len(rollbacks) == 1
    assert rollbacks[0].risk is Risk.MEDIUM


def test_command_steps_are_not_copied_into_advice() -> None:
    scripted = _truly_similar(resolution=Resolution(
        "MITIGATION", "Rebooted the database.",
        ("aws rds reboot-db-instance --db-instance-identifier payments",), 20.0))
    hyp = HistoricalAnalyst().analyze(_ctx([scripted]))

    assert all(not is_command_like(r.description) for r in hyp.recommendations)
    assert all("reboot-db-instance" not in r.description for r in hyp.recommendations)


def test_consistent_matches_raise_confidence_and_conflicts_lower_it() -> None:
    one = HistoricalAnalyst().analyze(_ctx([_truly_similar()]))
    consistent = HistoricalAnalyst().analyze(_ctx([_truly_similar(), _history()[3]]))
    conflicting = HistoricalAnalyst().analyze(_ctx([
        _truly_similar(),
        past("H-OTHER", service="checkout", title="Checkout latency high with payment timeouts",
             symptoms=["p99 latency breach", "payment timeout errors"], root="inventory",
             days_ago=30),
    ]))

    assert consistent.confidence > one.confidence
    assert conflicting.confidence < one.confidence
    assert conflicting.root_cause is not None
    named = {conflicting.root_cause.service, *(a.service for a in conflicting.alternatives)}
    assert named == {"payments-db", "inventory"}
    assert len(conflicting.contradicting_evidence[0].record_ids) == 1


def test_abstains_when_history_holds_nothing_similar() -> None:
    unrelated = [
        past("H-1", service="reporting", title="Nightly export job ran out of disk",
             symptoms=["disk full"], root="reporting-db"),
        past("H-2", service="checkout", title="Certificate expired on the public endpoint",
             symptoms=["TLS handshake failures"], root="checkout"),
    ]
    hyp = HistoricalAnalyst().analyze(_ctx(unrelated))

    assert hyp.status is HypothesisStatus.SUCCESS
    assert hyp.root_cause is None
    assert hyp.confidence == 0.0
    assert hyp.recommendations == []
    assert hyp.findings["similar_incidents"] == []
    assert "No past incident" in hyp.description


def test_abstains_on_empty_history() -> None:
    hyp = HistoricalAnalyst().analyze(_ctx([]))
    assert hyp.root_cause is None and hyp.confidence == 0.0


def test_incidents_from_inside_the_window_are_not_history() -> None:
    hyp = HistoricalAnalyst().analyze(_ctx([_truly_similar(days_ago=-0.01)]))
    assert hyp.root_cause is None


def test_neighbourhood_is_searched_through_the_graph() -> None:
    # Recorded on a callee two hops down, with a cause there: found only through the graph.
    deep = past("H-DEEP", service="payments-db", title="Payment timeouts, latency high",
                symptoms=["connection pool exhausted"], root="payments-db")
    hyp = HistoricalAnalyst().analyze(_ctx([deep]))

    assert "payments-db" in hyp.findings["services_searched"]
    assert hyp.root_cause is not None and hyp.root_cause.service == "payments-db"


def test_graph_failure_degrades_to_partial() -> None:
    healthy = HistoricalAnalyst().analyze(_ctx([_truly_similar()]))
    degraded = HistoricalAnalyst().analyze(
        _ctx([_truly_similar()], unavailable={Source.GRAPH: "graph down"}))

    assert degraded.status is HypothesisStatus.PARTIAL
    assert degraded.root_cause is not None
    assert degraded.confidence < healthy.confidence
    assert any("get_service_graph" in n for n in degraded.findings["degraded"])


def test_unavailable_history_raises() -> None:
    with pytest.raises(OpxError) as err:
        HistoricalAnalyst().analyze(_ctx([], unavailable={Source.INCIDENTS: "store down"}))
    assert err.value.code is ErrorCode.DATA_SOURCE_UNAVAILABLE


def test_deterministic() -> None:
    first = HistoricalAnalyst().analyze(_ctx(_history()))
    second = HistoricalAnalyst().analyze(_ctx(_history()))
    assert first.model_dump() == second.model_dump()
