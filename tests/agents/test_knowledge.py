"""KnowledgeAnalyst: retrieval from the incident and prior hypotheses, discrimination between
candidates, citations, abstention and degradation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from opx.agents.base import AgentContext
from opx.agents.local.knowledge import (
    KnowledgeAnalyst,
    candidate_scores,
    discriminating_leader,
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
    "rb-pool", "Database connection pool exhaustion",
    {"Symptoms": "Payment timeouts and rising p99 latency on callers when the connection pool "
                 "is exhausted.",
     "Mitigation": "Raise the connection pool limit and shed non-critical traffic until "
                   "latency recovers."},
    services=["payments-db", "payments"])
POOL_POSTMORTEM = doc(
    "pm-pool", "Postmortem: payment timeouts from pool exhaustion",
    {"Root cause": "The connection pool of the payments database was exhausted, causing "
                   "payment timeouts and checkout latency."},
    services=["payments-db"], doc_type=DocType.POSTMORTEM)
CACHE_RUNBOOK = doc(
    "rb-cache", "Inventory cache misses",
    {"Symptoms": "Stock lookups fail and the inventory cache hit ratio drops.",
     "Mitigation": "Warm the inventory cache from the latest snapshot."},
    services=["inventory"])
KAFKA_RUNBOOK = doc(
    "rb-kafka", "Kafka consumer lag",
    {"Diagnosis": "Consumer group lag grows on the event bus.",
     "Mitigation": "Add consumer instances."},
    services=["events"])


def _prior() -> dict[str, Hypothesis]:
    # The weighted majority (signal + change) says inventory; the minority says payments-db.
    return {
        SIGNAL: hypothesis(SIGNAL, "inventory", 0.7, category="ERROR_RATE"),
        CHANGE: hypothesis(CHANGE, "inventory", 0.6, category="DEPLOYMENT"),
        RISK: hypothesis(RISK, "payments-db", 0.4, component="connection-pool",
                         category="RESOURCE_EXHAUSTION"),
        HISTORICAL: hypothesis(HISTORICAL, "payments-db", 0.5, category="RESOURCE_EXHAUSTION"),
    }


def _ctx(docs: Sequence[KnowledgeDoc], prior: dict[str, Hypothesis] | None = None,
         **kwargs: Any) -> AgentContext:
    return context(tools(documents=docs, **kwargs),
                   inc=incident(detections=DETECTIONS),
                   prior=_prior() if prior is None else prior)


# -- pure helpers ------------------------------------------------------------------------------


def test_prior_candidates_cover_primaries_and_alternatives() -> None:
    prior = {
        SIGNAL: hypothesis(SIGNAL, "a", 0.6, alternatives=[("b", 0.2)]),
        CHANGE: hypothesis(CHANGE, None),
        RISK: hypothesis(RISK, "c", 0.9, status=HypothesisStatus.FAILURE),
    }
    assert [c.service for c in prior_candidates(prior)] == ["a", "b"]


def test_leader_needs_a_clear_lead() -> None:
    assert discriminating_leader({"a": 0.8, "b": 0.1}, 1.5, 0.2) is not None
    assert discriminating_leader({"a": 0.8, "b": 0.7}, 1.5, 0.2) is None
    assert discriminating_leader({"a": 0.1}, 1.5, 0.2) is None
    assert discriminating_leader({}, 1.5, 0.2) is None
    leader = discriminating_leader({"a": 5.0, "b": 0.0}, 1.5, 0.2)
    assert leader is not None and leader[1] <= 0.6


def test_candidate_scores_split_documents_that_list_several_candidates() -> None:
    assert candidate_scores([], ["a", "b"]) == {"a": 0.0, "b": 0.0}


# -- analysis ----------------------------------------------------------------------------------


def test_documents_that_discriminate_name_the_candidate_they_support() -> None:
    hyp = KnowledgeAnalyst().analyze(
        _ctx([POOL_RUNBOOK, POOL_POSTMORTEM, CACHE_RUNBOOK, KAFKA_RUNBOOK]))

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
    shared = doc("rb-shared", "Checkout dependency failures",
                 {"Symptoms": "Payment timeouts and p99 latency on checkout when a dependency "
                              "degrades.",
                  "Mitigation": "Shed non-critical traffic."},
                 services=["payments-db", "inventory"])
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
    scripted = doc("rb-script", "Connection pool exhaustion",
                   {"Mitigation": "Payment timeouts: run `kubectl rollout restart "
                                  "deploy/payments` to reset the connection pool."},
                   services=["payments-db"])
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
    degraded = KnowledgeAnalyst().analyze(AgentContext(
        incident=incident(detections=DETECTIONS), tools=flaky, prior=_prior()))

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
