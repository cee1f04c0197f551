"""KnowledgeAnalyst: retrieval from the incident and prior hypotheses, discrimination between
candidates, citations, abstention and degradation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from opx.agents.base import AgentContext
from opx.agents.local.knowledge import (
    KnowledgeAnalyst,
    Section,
    candidate_scores,
    discriminating_leader,
    identity_match,
    name_weights,
    plausible_set,
    posteriors,
    prior_candidates,
)
from opx.agents.local.similarity import is_command_like
from opx.agents.roster import CHANGE, HISTORICAL, RISK, SIGNAL
from opx.domain.errors import ErrorCode, OpxError
from opx.domain.hypothesis import (
    ConfidenceBasis,
    Hypothesis,
    HypothesisStatus,
    RecommendationType,
)
from opx.domain.tool_result import ToolResult
from opx.tools.memory import InMemoryTools, Source
from opx.tools.records import DocType, KnowledgeDoc

from .builders_context import context, doc, graph, hypothesis, incident, tools

DETECTIONS = [{"rule_id": "latency-p99-breach", "metric": "PaymentTimeouts"}]

POOL_RUNBOOK = doc(
    "rb-pool",
    "Database connection pool exhaustion",
    {
        "Symptoms": "Payment timeouts and rising p99 latency on callers when the connection pool "
        "is exhausted.",
        "Mitigation": "Raise the connection pool limit and shed non-critical traffic until "
        "latency recovers.",
    },
    services=["payments-db", "payments"],
)
POOL_POSTMORTEM = doc(
    "pm-pool",
    "Postmortem: payment timeouts from pool exhaustion",
    {
        "Root cause": "The connection pool of the payments database was exhausted, causing "
        "payment timeouts and checkout latency."
    },
    services=["payments-db"],
    doc_type=DocType.POSTMORTEM,
)
CACHE_RUNBOOK = doc(
    "rb-cache",
    "Inventory cache misses",
    {
        "Symptoms": "Stock lookups fail and the inventory cache hit ratio drops.",
        "Mitigation": "Warm the inventory cache from the latest snapshot.",
    },
    services=["inventory"],
)
KAFKA_RUNBOOK = doc(
    "rb-kafka",
    "Kafka consumer lag",
    {
        "Diagnosis": "Consumer group lag grows on the event bus.",
        "Mitigation": "Add consumer instances.",
    },
    services=["events"],
)


def _prior() -> dict[str, Hypothesis]:
    # The weighted majority (signal + change) says inventory; the minority says payments-db.
    return {
        SIGNAL: hypothesis(SIGNAL, "inventory", 0.7, category="ERROR_RATE"),
        CHANGE: hypothesis(CHANGE, "inventory", 0.6, category="DEPLOYMENT"),
        RISK: hypothesis(
            RISK, "payments-db", 0.4, component="connection-pool", category="RESOURCE_EXHAUSTION"
        ),
        HISTORICAL: hypothesis(HISTORICAL, "payments-db", 0.5, category="RESOURCE_EXHAUSTION"),
    }


def _ctx(
    docs: Sequence[KnowledgeDoc], prior: dict[str, Hypothesis] | None = None, **kwargs: Any
) -> AgentContext:
    return context(
        tools(documents=docs, **kwargs),
        inc=incident(detections=DETECTIONS),
        prior=_prior() if prior is None else prior,
    )


# -- pure helpers ------------------------------------------------------------------------------


def test_prior_candidates_cover_primaries_and_alternatives() -> None:
    prior = {
        SIGNAL: hypothesis(SIGNAL, "a", 0.6, alternatives=[("b", 0.2)]),
        CHANGE: hypothesis(CHANGE, None),
        RISK: hypothesis(RISK, "c", 0.9, status=HypothesisStatus.FAILURE),
        HISTORICAL: hypothesis(HISTORICAL, "b", 0.3),
    }
    candidates = prior_candidates(prior)
    assert [c.service for c in candidates] == ["a", "b"]
    # Plausibility is the highest confidence any agent gave, not a sum of votes.
    assert [c.plausibility for c in candidates] == [0.6, 0.3]


def _section(doc_id: str, title: str, services: Sequence[str]) -> Section:
    return Section(doc_id, title, "RUNBOOK", tuple(services), "Symptoms", "", 1.0)


def test_name_tokens_shared_by_many_services_weigh_little() -> None:
    names = ["cart_AWS::ECS::Fargate", "search_AWS::ECS::Fargate", "card.acme-net.com_remote"]
    weights = name_weights(names)
    assert weights["fargat"] < weights["cart"]
    assert weights["acm"] == weights["cart"]


def test_identity_match_reads_the_title_and_the_document_id() -> None:
    names = ["cart_AWS::ECS::Fargate", "search_AWS::ECS::Fargate", "card.acme-net.com_remote"]
    weights = name_weights(names)
    section = _section(
        "rb-acme-outage",
        "Runbook: card network slow",
        ["card.acme-net.com_remote", "cart_AWS::ECS::Fargate"],
    )
    about_provider = identity_match("card.acme-net.com_remote", section, weights)
    assert 0.0 < about_provider < 1.0  # card and acme, not net, com or remote
    full = _section("rb-x", "card acme net com remote", [])
    assert identity_match("card.acme-net.com_remote", full, weights) == pytest.approx(1.0)
    assert identity_match("cart_AWS::ECS::Fargate", section, weights) == 0.0
    assert identity_match("search_AWS::ECS::Fargate", section, weights) == 0.0


def test_plausible_candidates_and_posteriors() -> None:
    assert plausible_set({"a": 0.8, "b": 0.3, "c": 0.1, "d": 0.0}) == {"a", "b"}
    assert plausible_set({"a": 0.04}) == set()
    post = posteriors({"a": 0.2, "b": 0.2, "c": 0.0}, {"a": 0.9, "b": 0.3, "c": 0.9})
    assert post == {"a": 0.75, "b": 0.25, "c": 0.0}
    assert posteriors({"a": 0.2}, {"a": 0.0}) == {"a": 0.0}


def test_leader_needs_a_clear_lead() -> None:
    assert discriminating_leader({"a": 0.8, "b": 0.1}, 1.5, 0.2) is not None
    assert discriminating_leader({"a": 0.8, "b": 0.7}, 1.5, 0.2) is None
    assert discriminating_leader({"a": 0.1}, 1.5, 0.2) is None
    assert discriminating_leader({}, 1.5, 0.2) is None
    leader = discriminating_leader({"a": 5.0, "b": 0.0}, 1.5, 0.2)
    assert leader is not None and leader[1] <= 0.6


def test_leader_needs_documents_to_discriminate_not_only_a_prior_lead() -> None:
    # Equal document support: a stronger prior alone must not decide.
    assert discriminating_leader({"a": 0.3, "b": 0.3}, 1.5, 0.05, {"a": 0.9, "b": 0.3}) is None
    # A rival nobody found plausible neither wins nor blocks.
    named = discriminating_leader({"a": 0.3, "b": 0.3}, 1.5, 0.05, {"a": 0.9, "b": 0.0})
    assert named is not None and named[0] == "a"
    blocked = discriminating_leader({"a": 0.1, "b": 0.9}, 1.5, 0.05, {"a": 0.9, "b": 0.0})
    assert blocked is not None and blocked[0] == "a"
    assert discriminating_leader({"a": 0.0, "b": 0.9}, 1.5, 0.05, {"a": 0.9, "b": 0.0}) is None
    # Documents favour the less plausible of two plausible candidates clearly: it is named.
    minority = discriminating_leader({"a": 0.1, "b": 0.9}, 1.5, 0.05, {"a": 0.8, "b": 0.4})
    assert minority is not None and minority[0] == "b"


def test_candidate_scores_split_documents_that_list_several_candidates() -> None:
    assert candidate_scores([], ["a", "b"]) == {"a": 0.0, "b": 0.0}


# -- analysis ----------------------------------------------------------------------------------


def test_documents_that_discriminate_name_the_candidate_they_support() -> None:
    hyp = KnowledgeAnalyst().analyze(
        _ctx([POOL_RUNBOOK, POOL_POSTMORTEM, CACHE_RUNBOOK, KAFKA_RUNBOOK])
    )

    # Not the weighted majority (inventory): the documents that match the symptoms.
    assert hyp.root_cause is not None
    assert hyp.root_cause.service == "payments-db"
    assert hyp.root_cause.category == "RESOURCE_EXHAUSTION"
    assert hyp.root_cause.component == "connection-pool"
    assert 0.0 < hyp.confidence <= 0.6
    assert hyp.confidence_basis == [ConfidenceBasis.PATTERN]
    assert hyp.status is HypothesisStatus.SUCCESS
    support = hyp.findings["candidate_support"]
    assert support["payments-db"] > support["inventory"]


def test_citations_name_document_and_section() -> None:
    hyp = KnowledgeAnalyst().analyze(_ctx([POOL_RUNBOOK, POOL_POSTMORTEM, CACHE_RUNBOOK]))

    evidence = hyp.evidence[0]
    assert evidence.tool == "retrieve_knowledge"
    assert "rb-pool" in evidence.record_ids and "pm-pool" in evidence.record_ids
    mitigation = next(r for r in hyp.recommendations if r.type is RecommendationType.MITIGATION)
    assert "per runbook rb-pool §Mitigation:" in mitigation.description
    assert mitigation.description.startswith("Consider")
    assert "rb-pool" in hyp.findings["suggested_runbooks"]
    assert hyp.findings["related_postmortems"] == ["pm-pool"]
    first = hyp.findings["documents"][0]
    assert set(first) >= {"document_id", "title", "doc_type", "section", "score"}
    assert "rb-kafka" not in {d["document_id"] for d in hyp.findings["documents"]}


def test_abstains_when_documents_do_not_discriminate() -> None:
    shared = doc(
        "rb-shared",
        "Checkout dependency failures",
        {
            "Symptoms": "Payment timeouts and p99 latency on checkout when a dependency degrades.",
            "Mitigation": "Shed non-critical traffic.",
        },
        services=["payments-db", "inventory"],
    )
    hyp = KnowledgeAnalyst().analyze(_ctx([shared]))

    assert hyp.root_cause is None
    assert hyp.confidence == 0.0
    assert hyp.status is HypothesisStatus.SUCCESS
    assert hyp.evidence and hyp.evidence[0].record_ids == ["rb-shared"]
    assert "do not single out" in hyp.description


def test_abstains_when_nothing_relevant_is_found() -> None:
    hyp = KnowledgeAnalyst().analyze(_ctx([KAFKA_RUNBOOK]))

    assert hyp.root_cause is None
    assert hyp.confidence == 0.0
    assert hyp.findings["documents"] == []
    assert hyp.recommendations == []
    assert hyp.evidence == []


def test_without_prior_opinions_cites_documents_but_names_no_cause() -> None:
    hyp = KnowledgeAnalyst().analyze(_ctx([POOL_RUNBOOK], prior={}))

    assert hyp.root_cause is None
    assert hyp.findings["documents"]


def test_command_steps_in_runbooks_are_not_copied() -> None:
    scripted = doc(
        "rb-script",
        "Connection pool exhaustion",
        {
            "Mitigation": "Payment timeouts: run `kubectl rollout restart "
            "deploy/payments` to reset the connection pool."
        },
        services=["payments-db"],
    )
    hyp = KnowledgeAnalyst().analyze(_ctx([scripted]))

    assert hyp.recommendations
    for rec in hyp.recommendations:
        assert not is_command_like(rec.description)
        assert "rb-script §Mitigation" in rec.description


class _CandidateQueriesFail(InMemoryTools):
    def retrieve_knowledge(self, query: str, limit: int = 5) -> ToolResult:
        if query.startswith("inventory"):
            return ToolResult.failed(self.source_name, ErrorCode.TIMEOUT, "slow")
        return super().retrieve_knowledge(query, limit)


def test_some_failed_queries_degrade_to_partial() -> None:
    docs = [POOL_RUNBOOK, POOL_POSTMORTEM, CACHE_RUNBOOK]
    healthy = KnowledgeAnalyst().analyze(_ctx(docs))
    flaky = _CandidateQueriesFail("test", graph=graph(), documents=docs)
    degraded = KnowledgeAnalyst().analyze(
        AgentContext(incident=incident(detections=DETECTIONS), tools=flaky, prior=_prior())
    )

    assert degraded.status is HypothesisStatus.PARTIAL
    assert degraded.findings["degraded"]
    if degraded.root_cause is not None:
        assert degraded.confidence < healthy.confidence


def test_unavailable_knowledge_raises() -> None:
    with pytest.raises(OpxError) as err:
        KnowledgeAnalyst().analyze(_ctx([], unavailable={Source.KNOWLEDGE: "index down"}))
    assert err.value.code is ErrorCode.DATA_SOURCE_UNAVAILABLE


def test_deterministic() -> None:
    docs = [POOL_RUNBOOK, POOL_POSTMORTEM, CACHE_RUNBOOK, KAFKA_RUNBOOK]
    first = KnowledgeAnalyst().analyze(_ctx(docs))
    second = KnowledgeAnalyst().analyze(_ctx(docs))
    assert first.model_dump() == second.model_dump()


# -- what a document is about ------------------------------------------------------------------

PROVIDER = "card.acme-net.com_remote"
LEDGER = "ledger_AWS::ECS::Fargate"
GATEWAY = "gateway_AWS::ECS::Fargate"
SLOW_DETECTIONS = [{"rule_id": "gateway-p99-latency", "metric": "CardAuthorisationLatency"}]

LEDGER_POSTMORTEM = doc(
    "pm-ledger-pool",
    "Postmortem: authorisation timeouts after a ledger release",
    {
        "Summary": "A ledger release shrank its client pool; card authorisation latency rose and "
        "gateway callers timed out."
    },
    services=[LEDGER, GATEWAY],
    doc_type=DocType.POSTMORTEM,
)
PROVIDER_RUNBOOK = doc(
    "rb-acme-degradation",
    "Runbook: card network (acme-net) slow or failing",
    {
        "Symptoms": "Card authorisation latency up on gateway and ledger together, read timeouts "
        "to the card network."
    },
    services=[PROVIDER, LEDGER, GATEWAY],
)


def _slow_provider_prior(gateway: float = 0.01) -> dict[str, Hypothesis]:
    return {
        SIGNAL: hypothesis(
            SIGNAL,
            PROVIDER,
            0.8,
            category="LATENCY",
            alternatives=[(GATEWAY, gateway), (LEDGER, 0.0)],
        ),
        RISK: hypothesis(RISK, PROVIDER, 0.3, category="LATENCY"),
    }


def _slow_provider_ctx(prior: dict[str, Hypothesis]) -> AgentContext:
    return context(
        tools(documents=[LEDGER_POSTMORTEM, PROVIDER_RUNBOOK]),
        inc=incident(
            "gateway", title="Gateway card authorisation latency high", detections=SLOW_DETECTIONS
        ),
        prior=prior,
    )


def test_a_runbook_titled_after_a_service_supports_it_over_the_services_it_lists() -> None:
    hyp = KnowledgeAnalyst().analyze(_slow_provider_ctx(_slow_provider_prior()))

    # The gateway is listed by both documents, but neither is about it: the runbook is about
    # the provider and the postmortem about the ledger.
    assert hyp.root_cause is not None
    assert hyp.root_cause.service == PROVIDER
    support = hyp.findings["candidate_support"]
    assert support[PROVIDER] > support[GATEWAY]
    assert support[LEDGER] > support[GATEWAY]
    assert hyp.findings["candidate_plausibility"][PROVIDER] == 0.8
    assert 0.0 < hyp.confidence <= 0.6


def test_a_candidate_no_agent_found_plausible_cannot_win_on_documents() -> None:
    # Only the ledger's own postmortem is relevant, but no agent found the ledger plausible
    # (confidence 0.0) and nothing is about the plausible provider: no root cause.
    ledger_only = doc(
        "pm-ledger-only",
        LEDGER_POSTMORTEM.title,
        {s.heading: s.text for s in LEDGER_POSTMORTEM.sections},
        services=[LEDGER],
        doc_type=DocType.POSTMORTEM,
    )
    hyp = KnowledgeAnalyst().analyze(
        context(
            tools(documents=[ledger_only]),
            inc=incident(
                "gateway",
                title="Gateway card authorisation latency high",
                detections=SLOW_DETECTIONS,
            ),
            prior=_slow_provider_prior(),
        )
    )

    assert hyp.findings["candidate_support"][LEDGER] > 0.0
    assert hyp.root_cause is None
    assert hyp.confidence == 0.0
    assert hyp.findings["documents"]  # still cited
