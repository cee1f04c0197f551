"""ResponseAnalyst: follows the weighted leader, ranks advice-only options, prefers low risk for
severe incidents, never passes on command-like steps, abstains without a leader."""

from __future__ import annotations

from opx.agents.local.response import (
    Option,
    ResponseAnalyst,
    rank_options,
    support_table,
    synthesis_confidence,
)
from opx.agents.local.similarity import is_command_like
from opx.agents.roster import CHANGE, HISTORICAL, KNOWLEDGE, RISK, SIGNAL
from opx.domain.hypothesis import (
    Evidence,
    Hypothesis,
    HypothesisStatus,
    RecommendationType,
    Risk,
)
from opx.domain.incident import Severity

from .builders_context import context, hypothesis, incident

ROLLBACK_TEXT = (
    "Consider rolling back UpdateFunctionCode on arn:aws:lambda:us-east-1:"
    "111122223333:function:payments-fn made at 2026-03-01T11:50:00Z."
)
POOL_TEXT = "Consider, per runbook rb-pool §Mitigation: raise the connection pool limit."


def _prior(change_service: str = "payments-db") -> dict[str, Hypothesis]:
    return {
        SIGNAL: hypothesis(
            SIGNAL,
            "payments-db",
            0.7,
            component="connection-pool",
            category="RESOURCE_EXHAUSTION",
            alternatives=[("inventory", 0.3)],
        ),
        CHANGE: hypothesis(
            CHANGE,
            change_service,
            0.6,
            category="DEPLOYMENT",
            recommendations=[(RecommendationType.ROLLBACK, ROLLBACK_TEXT, Risk.MEDIUM)],
        ),
        HISTORICAL: hypothesis(HISTORICAL, "payments-db", 0.5, category="RESOURCE_EXHAUSTION"),
        RISK: hypothesis(RISK, "inventory", 0.4),
        KNOWLEDGE: hypothesis(
            KNOWLEDGE, None, recommendations=[(RecommendationType.MITIGATION, POOL_TEXT, Risk.LOW)]
        ),
    }


def _analyze(prior: dict[str, Hypothesis], severity: str = "SEV3") -> Hypothesis:
    return ResponseAnalyst().analyze(context(inc=incident(severity=severity), prior=prior))


def test_follows_the_weighted_leader() -> None:
    hyp = _analyze(_prior())

    assert hyp.status is HypothesisStatus.SUCCESS
    assert hyp.root_cause is not None
    assert hyp.root_cause.service == "payments-db"
    assert hyp.root_cause.component == "connection-pool"
    assert hyp.root_cause.category == "RESOURCE_EXHAUSTION"
    assert 0.0 < hyp.confidence <= 0.7
    assert [a.service for a in hyp.alternatives] == ["inventory"]
    assert hyp.alternatives[0].confidence < hyp.confidence


def test_leader_moves_with_the_support() -> None:
    prior = {
        SIGNAL: hypothesis(SIGNAL, "inventory", 0.8),
        RISK: hypothesis(RISK, "inventory", 0.6),
        HISTORICAL: hypothesis(HISTORICAL, "payments-db", 0.5),
    }
    hyp = _analyze(prior)
    assert hyp.root_cause is not None and hyp.root_cause.service == "inventory"


def test_split_support_lowers_confidence() -> None:
    agreeing = {SIGNAL: hypothesis(SIGNAL, "a", 0.8), RISK: hypothesis(RISK, "a", 0.8)}
    split = {SIGNAL: hypothesis(SIGNAL, "a", 0.8), RISK: hypothesis(RISK, "b", 0.8)}
    assert synthesis_confidence(support_table(split)) < synthesis_confidence(
        support_table(agreeing)
    )
    assert synthesis_confidence(support_table(agreeing)) <= 0.7


def test_failed_agents_do_not_count() -> None:
    prior = {
        SIGNAL: hypothesis(SIGNAL, "a", 0.4),
        RISK: hypothesis(RISK, "b", 0.9, status=HypothesisStatus.FAILURE),
    }
    assert [s.service for s in support_table(prior)] == ["a"]


def test_rollback_offered_when_the_suspect_change_agrees_with_the_leader() -> None:
    hyp = _analyze(_prior())

    options = hyp.findings["ranked_options"]
    assert [o["rank"] for o in options] == list(range(1, len(options) + 1))
    rollback = [o for o in options if o["type"] == "ROLLBACK"]
    assert len(rollback) == 1
    assert rollback[0]["source_agents"] == [CHANGE]
    assert rollback[0]["risk"] == "MEDIUM"
    assert rollback[0]["tradeoffs"]
    assert any(o["type"] == "MITIGATION" and "rb-pool" in o["description"] for o in options)
    assert any(o["type"] == "INVESTIGATION" and "payments-db" in o["description"] for o in options)
    assert hyp.findings["tradeoff_analysis"]["rollback"]["proposed"] is True
    assert len(hyp.recommendations) == 3


def test_no_rollback_when_the_suspect_change_is_elsewhere() -> None:
    hyp = _analyze(_prior(change_service="web"))

    assert hyp.root_cause is not None and hyp.root_cause.service == "payments-db"
    assert all(o["type"] != "ROLLBACK" for o in hyp.findings["ranked_options"])
    rollback = hyp.findings["tradeoff_analysis"]["rollback"]
    assert rollback["proposed"] is False
    assert "web" in rollback["reason"]


def test_never_recommends_command_like_steps() -> None:
    prior = _prior()
    prior[KNOWLEDGE] = hypothesis(
        KNOWLEDGE,
        "payments-db",
        0.5,
        recommendations=[
            (
                RecommendationType.MITIGATION,
                "Run `kubectl rollout restart deploy/payments`",
                Risk.LOW,
            ),
            (
                RecommendationType.MITIGATION,
                "aws rds modify-db-instance --max-connections 500",
                Risk.MEDIUM,
            ),
        ],
    )
    prior[CHANGE] = hypothesis(
        CHANGE,
        "payments-db",
        0.6,
        recommendations=[
            (
                RecommendationType.ROLLBACK,
                "$ aws lambda update-function-code --function-name p",
                Risk.MEDIUM,
            )
        ],
    )
    hyp = _analyze(prior)

    texts = [r.description for r in hyp.recommendations]
    texts += [o["description"] for o in hyp.findings["ranked_options"]]
    assert texts
    for text in texts:
        assert not is_command_like(text), text
        assert text.startswith("Consider")
        assert "kubectl" not in text and "aws " not in text


def test_severe_incidents_prefer_low_risk_when_effectiveness_is_comparable() -> None:
    risky = Option(
        RecommendationType.ROLLBACK, "Consider rolling back X.", 0.6, Risk.MEDIUM, (CHANGE,), ()
    )
    safe = Option(
        RecommendationType.MITIGATION, "Consider shedding load.", 0.52, Risk.LOW, (KNOWLEDGE,), ()
    )
    clear_winner = Option(
        RecommendationType.ROLLBACK, "Consider rolling back Y.", 0.9, Risk.MEDIUM, (CHANGE,), ()
    )

    assert rank_options([risky, safe], Severity.SEV1)[0] is safe
    assert rank_options([risky, safe], Severity.SEV4)[0] is risky
    assert rank_options([safe, clear_winner], Severity.SEV1)[0] is clear_winner


def test_abstains_without_any_root_cause() -> None:
    prior = {
        SIGNAL: hypothesis(SIGNAL, None),
        CHANGE: hypothesis(CHANGE, None),
        RISK: hypothesis(RISK, "x", 0.9, status=HypothesisStatus.TIMEOUT),
    }
    hyp = _analyze(prior)

    assert hyp.status is HypothesisStatus.SUCCESS
    assert hyp.root_cause is None
    assert hyp.confidence == 0.0
    assert hyp.recommendations == []
    assert hyp.findings["ranked_options"] == []
    assert _analyze({}).root_cause is None


def test_deterministic() -> None:
    first = _analyze(_prior(), severity="SEV1")
    second = _analyze(_prior(), severity="SEV1")
    assert first.model_dump() == second.model_dump()


def test_the_leader_weighs_a_metrics_only_opinion_by_its_breadth() -> None:
    # The signal analyst cites logs and traces, the risk analyst reads metrics only: its say is
    # a third of the telemetry in play, as in the consensus.
    signal = hypothesis(SIGNAL, "route", 0.3).model_copy(
        update={
            "evidence": [
                Evidence(tool="search_logs", summary="an operation stopped logging"),
                Evidence(tool="get_traces", summary="its calls still arrive"),
            ]
        }
    )
    risk = hypothesis(RISK, "basic", 0.45).model_copy(
        update={
            "evidence": [
                Evidence(tool="get_metrics", summary="memory up"),
            ]
        }
    )
    table = support_table({SIGNAL: signal, RISK: risk})
    assert [s.service for s in table] == ["route", "basic"]
    # Where only metrics are cited, the weights alone decide (0.8 x 0.45 > 1.0 x 0.3).
    cited = [Evidence(tool="get_metrics", summary="p99 up")]
    metrics_only = signal.model_copy(update={"evidence": cited})
    assert support_table({SIGNAL: metrics_only, RISK: risk})[0].service == "basic"
