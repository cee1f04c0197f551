"""HistoricalAnalyst and the similarity helpers: retrieval ranking, the symptom fingerprint,
aggregation, abstention, advice wording and degradation."""

from __future__ import annotations

from typing import Any

import pytest

from opx.agents.base import AgentContext
from opx.agents.local.historical import HistoricalAnalyst, classify_action, fingerprint_services
from opx.agents.local.historical import PastIncident as Past
from opx.agents.local.robust import strength
from opx.agents.local.series_scores import SeriesScore
from opx.agents.local.similarity import (
    Relation,
    RelationKind,
    anomaly_activity,
    fingerprint_similarities,
    generic_tokens,
    incident_similarity,
    is_command_like,
    past_symptom_tokens,
    recency_factor,
    service_relation,
    severity_match,
    symptom_fingerprint,
    symptom_tokens,
    tfidf_similarities,
    tokenize,
)
from opx.agents.local.topology import Topology
from opx.domain.errors import ErrorCode, OpxError
from opx.domain.hypothesis import ConfidenceBasis, HypothesisStatus, RecommendationType, Risk
from opx.tools.memory import Source
from opx.tools.records import MetricSeries, PastIncident, Resolution

from .builders_context import EDGES, context, healthy, incident, past, service_metrics, tools

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
            "MITIGATION",
            "Raised the payments-db connection pool limit.",
            (
                "Increase the connection pool size of payments-db",
                "Check slow queries on payments-db",
            ),
            45.0,
        ),
    }
    fields.update(overrides)
    return past("H-TRUE", **fields)


def _history() -> list[PastIncident]:
    return [
        _truly_similar(),
        past(
            "H-SAME-SVC",
            service="checkout",
            title="Checkout returns 404 for static assets",
            symptoms=["missing product images"],
            root="checkout",
            component="assets",
            category="CONFIG_CHANGE",
            days_ago=5,
        ),
        past(
            "H-ISLAND",
            service="reporting",
            title="Reporting latency high with timeouts",
            symptoms=["p99 latency breach", "query timeout errors"],
            root="reporting-db",
            days_ago=3,
        ),
        past(
            "H-ALSO",
            service="payments",
            title="Payment timeouts and checkout latency",
            symptoms=["payment timeout errors", "connection pool exhausted"],
            root="payments-db",
            component="connection-pool",
            days_ago=200,
        ),
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
        Relation(RelationKind.SAME), 0.6, 1.0, 1000
    )


def test_command_detection() -> None:
    assert is_command_like("Run `aws rds reboot-db-instance`")
    assert is_command_like("kubectl rollout undo deployment/payments")
    assert is_command_like("Set it with --max-connections 200")
    assert not is_command_like("Increase the connection pool size of payments-db")
    assert not is_command_like("Roll back the most recent deployment")


def test_action_classification() -> None:
    assert classify_action("Roll back the payments release", "MITIGATION")[0] is (
        RecommendationType.ROLLBACK
    )
    assert classify_action("Redeploy the previous version", "ROLLBACK") == (
        RecommendationType.ROLLBACK,
        Risk.MEDIUM,
    )
    assert classify_action("Check slow queries", "ROLLBACK")[0] is RecommendationType.INVESTIGATION
    assert classify_action("Restart the consumers", "MITIGATION") == (
        RecommendationType.MITIGATION,
        Risk.MEDIUM,
    )
    assert classify_action("Increase the pool size", "MITIGATION") == (
        RecommendationType.MITIGATION,
        Risk.LOW,
    )


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
    rolled = _truly_similar(
        resolution=Resolution(
            "ROLLBACK",
            "Reverted the payments release.",
            ("Redeploy the previous payments build",),
            20.0,
        )
    )
    hyp = HistoricalAnalyst().analyze(_ctx([rolled]))

    rollbacks = [r for r in hyp.recommendations if r.type is RecommendationType.ROLLBACK]
    assert len(rollbacks) == 1
    assert rollbacks[0].risk is Risk.MEDIUM


def test_command_steps_are_not_copied_into_advice() -> None:
    scripted = _truly_similar(
        resolution=Resolution(
            "MITIGATION",
            "Rebooted the database.",
            ("aws rds reboot-db-instance --db-instance-identifier payments",),
            20.0,
        )
    )
    hyp = HistoricalAnalyst().analyze(_ctx([scripted]))

    assert all(not is_command_like(r.description) for r in hyp.recommendations)
    assert all("reboot-db-instance" not in r.description for r in hyp.recommendations)


def test_consistent_matches_raise_confidence_and_conflicts_lower_it() -> None:
    one = HistoricalAnalyst().analyze(_ctx([_truly_similar()]))
    consistent = HistoricalAnalyst().analyze(_ctx([_truly_similar(), _history()[3]]))
    conflicting = HistoricalAnalyst().analyze(
        _ctx(
            [
                _truly_similar(),
                past(
                    "H-OTHER",
                    service="checkout",
                    title="Checkout latency high with payment timeouts",
                    symptoms=["p99 latency breach", "payment timeout errors"],
                    root="inventory",
                    days_ago=30,
                ),
            ]
        )
    )

    assert consistent.confidence > one.confidence
    assert conflicting.confidence < one.confidence
    assert conflicting.root_cause is not None
    named = {conflicting.root_cause.service, *(a.service for a in conflicting.alternatives)}
    assert named == {"payments-db", "inventory"}
    assert len(conflicting.contradicting_evidence[0].record_ids) == 1


def test_abstains_when_history_holds_nothing_similar() -> None:
    unrelated = [
        past(
            "H-1",
            service="reporting",
            title="Nightly export job ran out of disk",
            symptoms=["disk full"],
            root="reporting-db",
        ),
        past(
            "H-2",
            service="checkout",
            title="Certificate expired on the public endpoint",
            symptoms=["TLS handshake failures"],
            root="checkout",
        ),
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
    deep = past(
        "H-DEEP",
        service="payments-db",
        title="Payment timeouts, latency high",
        symptoms=["connection pool exhausted"],
        root="payments-db",
    )
    hyp = HistoricalAnalyst().analyze(_ctx([deep]))

    assert "payments-db" in hyp.findings["services_searched"]
    assert hyp.root_cause is not None and hyp.root_cause.service == "payments-db"


def test_graph_failure_degrades_to_partial() -> None:
    healthy = HistoricalAnalyst().analyze(_ctx([_truly_similar()]))
    degraded = HistoricalAnalyst().analyze(
        _ctx([_truly_similar()], unavailable={Source.GRAPH: "graph down"})
    )

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


# -- symptom fingerprint -------------------------------------------------------------------------


def _score(service: str, metric: str, z: float) -> SeriesScore:
    return SeriesScore(
        series_id=f"{service}|{metric}|Average",
        service=service,
        metric=metric,
        stat="Average",
        direction="up",
        z=z,
        strength=strength(z),
        baseline_median=1.0,
        baseline_scale=1.0,
        baseline_points=100,
        window_points=30,
        window_extreme=1.0 + z,
        extreme_at=None,
    )


def _slow_payments_db() -> list[MetricSeries]:
    """payments-db slows down, and payments and checkout with it; the rest is healthy."""
    return [
        *healthy("web", "inventory", "inventory-db", "reporting", "reporting-db"),
        *service_metrics("payments-db", latency=[(5, None, 400.0)]),
        *service_metrics("payments", latency=[(6, None, 300.0)]),
        *service_metrics("checkout", latency=[(7, None, 250.0)]),
    ]


def _by_symptoms() -> PastIncident:
    # Worded nothing like the current title, but it describes what the metrics show now.
    return past(
        "H-SYM",
        service="checkout",
        title="Slow card payments at the evening peak",
        symptoms=["payments-db latency above 900 ms", "payments p99 latency high"],
        root="payments-db",
        component="connection-pool",
    )


def _by_title(root: str = "inventory-db") -> PastIncident:
    # Worded like the current title, with a cause that is quiet now.
    return past(
        f"H-TITLE-{root}",
        service="checkout",
        title="Checkout availability below SLO",
        symptoms=["inventory errors", "inventory-db CPU at 100%"],
        root=root,
        category="CAPACITY",
    )


def _symptom_ctx(history: list[PastIncident], **kwargs: Any) -> AgentContext:
    inc = incident(title="Checkout availability below SLO")
    return context(tools(incidents=history, series=_slow_payments_db(), **kwargs), inc=inc)


def test_symptom_tokens_mark_metric_families() -> None:
    assert "~saturation" in symptom_tokens("ThrottledRequests")
    assert "~errors" in symptom_tokens("5xx on POST /checkout")
    assert "~errors" in symptom_tokens("errors")
    assert "~latency" in symptom_tokens("p99 latency above 2 s")
    assert not any(t.startswith("~") for t in symptom_tokens("stock levels stale"))


def test_generic_tokens_are_the_ones_most_service_names_share() -> None:
    names = [
        "cart_AWS::ECS::Fargate",
        "shop_AWS::ECS::Fargate",
        "orders_AWS::ECS::Fargate",
        "pricing_AWS::Lambda::Function",
        "Orders_AWS::DynamoDB::Table",
    ]
    generic = generic_tokens(names)
    assert {"aws", "ecs"} <= generic
    assert "lambda" not in generic and "order" not in generic
    assert generic_tokens([]) == frozenset()


def test_fingerprint_discounts_a_caller_its_callee_explains() -> None:
    graph = Topology.from_edges([], [("front", "db"), ("front", "cache")])
    fingerprint = symptom_fingerprint(
        [
            _score("front", "latency", 20.0),
            _score("db", "latency", 30.0),
            _score("cache", "latency", 1.0),
            _score("cache", "requests", 30.0),
        ],
        graph,
    )

    front, db = fingerprint.root_activity("front"), fingerprint.root_activity("db")
    assert db == pytest.approx(anomaly_activity(30.0), abs=1e-3)
    assert front is not None and db is not None
    assert front < 0.5 < db
    assert fingerprint.root_activity("cache") == pytest.approx(0.3, abs=0.01)  # load only
    assert fingerprint.root_activity("elsewhere") is None
    assert {"front", "db", "~latency"} <= set(fingerprint.tokens)
    assert [s.service for s in fingerprint.anomalous] == ["front", "db", "cache"]


def test_fingerprint_similarity_prefers_the_same_symptoms() -> None:
    graph = Topology.from_edges([], [("front", "db")])
    fingerprint = symptom_fingerprint(
        [_score("db", "ThrottledRequests", 30.0), _score("front", "latency", 10.0)], graph
    )
    same, other = fingerprint_similarities(
        fingerprint,
        [
            past_symptom_tokens("front", "db", ["db throttled writes", "front latency high"]),
            past_symptom_tokens("front", "front", ["memory leak", "task restarts"]),
        ],
    )
    assert same > 0.3 > other


def test_incident_similarity_counts_a_quiet_root_cause_much_less() -> None:
    def similarity(activity: float | None) -> float:
        return incident_similarity(
            Relation(RelationKind.CALLEE, 1), 0.3, 1.0, 30, symptoms=0.5, root_activity=activity
        )

    assert similarity(1.0) > similarity(None) > similarity(0.0)
    assert similarity(0.0) <= 0.3 * similarity(1.0)
    text_led = incident_similarity(Relation(RelationKind.CALLEE, 1), 0.3, 1.0, 30)
    assert text_led != similarity(1.0)


def test_fingerprint_services_are_bounded_and_neighbourhood_first() -> None:
    graph = Topology.from_edges([], EDGES)
    candidates = [
        Past.from_data({"incident_id": "H", "service": "x", "root_cause": {"service": root}})
        for root in ("reporting-db", "not-in-graph", "checkout")
    ]
    chosen = fingerprint_services(["checkout", "payments"], candidates, graph, limit=3)
    assert chosen == ["checkout", "payments", "reporting-db"]
    assert fingerprint_services(["checkout", "payments"], candidates, graph, limit=1) == [
        "checkout"
    ]


def test_similar_incident_is_found_by_symptoms_despite_different_wording() -> None:
    history = [_by_symptoms(), _by_title()]
    with_metrics = HistoricalAnalyst().analyze(_symptom_ctx(history))
    text_only = HistoricalAnalyst().analyze(
        context(tools(incidents=history), inc=incident(title="Checkout availability below SLO"))
    )

    # Text alone is fooled by the wording; the measured symptoms are not.
    assert text_only.root_cause is not None and text_only.root_cause.service == "inventory-db"
    assert with_metrics.status is HypothesisStatus.SUCCESS
    assert with_metrics.root_cause is not None
    assert with_metrics.root_cause.service == "payments-db"
    assert with_metrics.root_cause.component == "connection-pool"
    similar = with_metrics.findings["similar_incidents"]
    assert similar[0]["incident_id"] == "H-SYM"
    assert similar[0]["symptom_similarity"] > similar[0]["text_similarity"]
    assert similar[0]["root_cause_activity"] > 0.9
    assert "payments-db is anomalous now" in with_metrics.description
    anomalous = {a["series_id"] for a in with_metrics.findings["fingerprint"]["anomalous_series"]}
    assert "payments-db|latency|Average" in anomalous


def test_incident_whose_root_cause_is_quiet_now_ranks_low() -> None:
    active = past(
        "H-ACTIVE",
        service="checkout",
        title="Checkout slow",
        symptoms=["checkout latency high", "payments latency high"],
        root="payments-db",
    )
    quiet = past(
        "H-QUIET",
        service="checkout",
        title="Checkout slow",
        symptoms=["checkout latency high", "payments latency high"],
        root="inventory-db",
    )
    analyst = HistoricalAnalyst(threshold=0.0)
    hyp = analyst.analyze(_symptom_ctx([active, quiet]))

    similarity = {m["incident_id"]: m["similarity"] for m in hyp.findings["similar_incidents"]}
    assert similarity["H-QUIET"] < 0.5 * similarity["H-ACTIVE"]
    assert hyp.root_cause is not None and hyp.root_cause.service == "payments-db"


def test_unreadable_metrics_fall_back_to_text_and_degrade() -> None:
    hyp = HistoricalAnalyst().analyze(
        _ctx([_truly_similar()], unavailable={Source.METRICS: "metrics down"})
    )

    assert hyp.status is HypothesisStatus.PARTIAL
    assert hyp.root_cause is not None and hyp.root_cause.service == "payments-db"
    assert hyp.findings["fingerprint"] is None
    assert any("metrics" in note for note in hyp.findings["degraded"])


def test_fingerprint_analysis_is_deterministic() -> None:
    first = HistoricalAnalyst().analyze(_symptom_ctx([_by_symptoms(), _by_title()]))
    second = HistoricalAnalyst().analyze(_symptom_ctx([_by_symptoms(), _by_title()]))
    assert first.model_dump() == second.model_dump()
