"""Consensus: properties over generated hypotheses and examples that pin intended behaviour."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from opx.agents.roster import ALL_AGENTS, CHANGE, HISTORICAL, KNOWLEDGE, RESPONSE, RISK, SIGNAL
from opx.agents.roster import WEIGHTS as ROSTER_WEIGHTS
from opx.domain.consensus import ConsensusResult
from opx.domain.errors import ErrorCode, ErrorInfo
from opx.domain.hypothesis import (
    AlternativeCause,
    Evidence,
    Hypothesis,
    HypothesisStatus,
    RootCause,
)
from opx.reasoning.consensus import build_consensus

from .strategies import (
    AGENT_IDS,
    NOT_PRODUCED,
    PRODUCED,
    SERVICES,
    Panel,
    confidences,
    hypotheses_for,
    panels,
    root_causes,
)

NEWCOMER = AGENT_IDS[-1]
# Outputs are rounded to 6 decimals, so a true "<=" may show as one unit of rounding above.
ROUNDING = 1e-6
EVIDENCE = [Evidence(tool="get_metrics", query="p99", record_ids=["m-1"], summary="p99 x10")]


def run(panel: Panel, threshold: float = 0.5) -> ConsensusResult:
    return build_consensus(
        panel.hypotheses,
        weights=panel.weights,
        expected_agents=panel.expected,
        threshold=threshold,
    )


def with_agent(panel: Panel, hypothesis: Hypothesis) -> Panel:
    return Panel(
        {**panel.hypotheses, hypothesis.agent_id: hypothesis}, panel.weights, panel.expected
    )


def opinion(agent: str, service: str, confidence: float, **extra: object) -> Hypothesis:
    fields: dict[str, object] = {"evidence": EVIDENCE, **extra}
    return Hypothesis.model_validate(
        {
            "agent_id": agent,
            "root_cause": RootCause(service=service),
            "confidence": confidence,
            **fields,
        }
    )


def primary_weight(panel: Panel, service: str) -> float:
    return sum(
        panel.weights.get(agent, 1.0)
        for agent, h in sorted(panel.hypotheses.items())
        if h.status.produced and h.root_cause and h.root_cause.service == service
    )


def failed(agent: str) -> Hypothesis:
    error = ErrorInfo(code=ErrorCode.TIMEOUT, message="deadline passed")
    return Hypothesis.failed(agent, HypothesisStatus.TIMEOUT, error)


def roster_run(hypotheses: list[Hypothesis], threshold: float = 0.6) -> ConsensusResult:
    return build_consensus(
        {h.agent_id: h for h in hypotheses},
        weights=ROSTER_WEIGHTS,
        expected_agents=ALL_AGENTS,
        threshold=threshold,
    )


# --- properties -------------------------------------------------------------------------


@given(panels(), st.randoms(use_true_random=False))
def test_output_does_not_depend_on_mapping_or_expected_order(
    panel: Panel, rnd: random.Random
) -> None:
    items = list(panel.hypotheses.items())
    rnd.shuffle(items)
    expected = list(panel.expected)
    rnd.shuffle(expected)
    weights = list(panel.weights.items())
    rnd.shuffle(weights)
    shuffled = Panel(dict(items), dict(weights), expected)
    assert run(shuffled).model_dump() == run(panel).model_dump()


@given(panels(), st.floats(0.0, 1.0))
def test_every_score_and_share_lies_in_unit_interval(panel: Panel, threshold: float) -> None:
    result = run(panel, threshold)
    values = [result.confidence, result.agreement_level, *result.quality.model_dump().values()]
    values += [c.score for c in result.candidates]
    values += [s for conflict in result.conflicts for s in conflict.scores]
    values += [m.confidence for m in result.minority_opinions]
    assert all(0.0 <= v <= 1.0 for v in values)


@given(panels())
def test_result_is_internally_consistent(panel: Panel) -> None:
    result = run(panel)
    roster = set(panel.expected) | set(panel.hypotheses)
    assert result.participating_agents == sorted(
        a for a, h in panel.hypotheses.items() if h.status.produced
    )
    assert sorted(result.participating_agents + result.failed_agents) == sorted(roster)
    assert result.quality.agreement == result.agreement_level
    ranking = [
        (-c.score, -round(primary_weight(panel, c.service), 6), c.service)
        for c in result.candidates
    ]
    assert ranking == sorted(ranking)
    for candidate in result.candidates:
        assert candidate.supporting_agents == sorted(candidate.supporting_agents)
        assert set(candidate.supporting_agents) <= set(result.participating_agents)


@given(panels())
def test_only_opinionated_producers_name_candidates(panel: Panel) -> None:
    opinionated = {a: h for a, h in panel.hypotheses.items() if h.status.produced and h.root_cause}
    named = {h.root_cause.service for h in opinionated.values() if h.root_cause}
    named |= {alt.service for h in opinionated.values() for alt in h.alternatives}
    assert {c.service for c in run(panel).candidates} == named


@given(
    st.lists(st.sampled_from(AGENT_IDS), unique=True).flatmap(
        lambda agents: st.tuples(*(hypotheses_for(a, statuses=NOT_PRODUCED) for a in agents))
    ),
    st.lists(st.sampled_from(AGENT_IDS), unique=True),
)
def test_all_failed_gives_nothing(hyps: tuple[Hypothesis, ...], expected: list[str]) -> None:
    result = build_consensus(
        {h.agent_id: h for h in hyps}, weights={}, expected_agents=expected, threshold=0.0
    )
    assert result.root_cause is None
    assert result.candidates == []
    assert result.confidence == 0.0
    assert result.agreement_level == 0.0
    assert result.participating_agents == []
    assert result.quality.data_completeness == 0.0


@given(panels(), hypotheses_for(NEWCOMER, statuses=NOT_PRODUCED))
def test_adding_a_failed_agent_never_raises_confidence(panel: Panel, newcomer: Hypothesis) -> None:
    before, after = run(panel), run(with_agent(panel, newcomer))
    assert after.candidates == before.candidates
    assert after.agreement_level == before.agreement_level
    assert after.confidence <= before.confidence + ROUNDING
    assert after.quality.data_completeness <= before.quality.data_completeness + ROUNDING
    assert NEWCOMER in after.failed_agents


# Roughly half the drawn dissenters overtake a weak leader and are filtered out below.
@settings(suppress_health_check=[HealthCheck.filter_too_much], max_examples=200)
@given(panels(opinionated=True), st.data())
def test_adding_a_dissenter_never_raises_confidence(panel: Panel, data: st.DataObject) -> None:
    before = run(panel)
    top = before.candidates[0].service
    others = tuple(s for s in SERVICES if s != top)
    dissenter = data.draw(hypotheses_for(NEWCOMER, statuses=PRODUCED, causes=root_causes(others)))
    after = run(with_agent(panel, dissenter))
    # A newcomer that takes the lead is the new majority, not a dissenter.
    assume(after.candidates[0].service == top)
    assert after.confidence <= before.confidence + ROUNDING
    assert after.agreement_level <= before.agreement_level + ROUNDING


@given(panels(opinionated=True), st.data())
def test_adding_a_confident_supporter_never_lowers_confidence(
    panel: Panel, data: st.DataObject
) -> None:
    before = run(panel)
    top = before.candidates[0].service
    supporter = data.draw(
        hypotheses_for(
            NEWCOMER,
            statuses=PRODUCED,
            causes=root_causes((top,)),
            confidence=st.floats(0.7, 1.0),
        )
    )
    after = run(with_agent(panel, supporter))
    if panel.weights[NEWCOMER] > 0:
        assert after.candidates[0].service == top
    assert after.confidence >= before.confidence - ROUNDING
    assert after.agreement_level >= before.agreement_level - ROUNDING


@given(panels(), st.floats(0.0, 1.0))
def test_threshold_gates_root_cause_but_not_candidates(panel: Panel, threshold: float) -> None:
    result = run(panel, threshold)
    if not result.candidates or result.confidence < threshold:
        assert result.root_cause is None
        if result.candidates:
            assert result.summary.startswith("No root cause reaches threshold")
    else:
        top = result.candidates[0]
        assert result.root_cause == RootCause(
            service=top.service, component=top.component, category=top.category
        )


@given(panels(opinionated=True))
def test_threshold_just_above_confidence_withholds_root_cause(panel: Panel) -> None:
    result = run(panel)
    assume(result.confidence < 1.0)
    above = run(panel, threshold=min(1.0, result.confidence + 1e-3))
    assert above.root_cause is None
    assert above.candidates == result.candidates
    at = run(panel, threshold=result.confidence)
    assert at.root_cause is not None
    assert at.root_cause.service == result.candidates[0].service


@given(panels())
def test_conflicts_are_rivals_within_a_quarter_of_the_top(panel: Panel) -> None:
    result = run(panel)
    top = result.candidates[0] if result.candidates else None
    rivals = [c.service for c in result.candidates[1:] if top and c.score >= 0.75 * top.score]
    if top is None or top.score == 0:
        rivals = []
    assert [c.services[1] for c in result.conflicts] == rivals
    assert all(c.services[0] == top.service for c in result.conflicts if top)


@given(panels())
def test_minorities_are_confident_agents_naming_another_service(panel: Panel) -> None:
    result = run(panel)
    top = result.candidates[0].service if result.candidates else None
    expected = sorted(
        agent
        for agent, h in panel.hypotheses.items()
        if h.status.produced
        and h.root_cause
        and h.root_cause.service != top
        and h.confidence >= 0.5
    )
    assert [m.agent_id for m in result.minority_opinions] == expected


@given(hypotheses_for(AGENT_IDS[0], statuses=PRODUCED, causes=root_causes()), confidences)
def test_confidence_grows_with_the_supporter_confidence(first: Hypothesis, lift: float) -> None:
    assert first.root_cause is not None
    stronger = first.model_copy(update={"confidence": max(first.confidence, lift)})
    expected = list(AGENT_IDS[:3])
    low = build_consensus(
        {first.agent_id: first}, weights={}, expected_agents=expected, threshold=0.0
    )
    high = build_consensus(
        {first.agent_id: stronger}, weights={}, expected_agents=expected, threshold=0.0
    )
    assert high.confidence >= low.confidence


# --- examples ---------------------------------------------------------------------------


def test_four_agents_agreeing_strongly_give_high_confidence() -> None:
    core = [SIGNAL, HISTORICAL, CHANGE, RISK]
    result = roster_run(
        [opinion(a, "orders-db", 0.85) for a in core]
        + [Hypothesis(agent_id=a) for a in (KNOWLEDGE, RESPONSE)]
    )
    assert result.root_cause == RootCause(service="orders-db")
    assert result.confidence >= 0.8
    assert result.agreement_level == 1.0
    assert result.conflicts == []
    assert result.minority_opinions == []
    assert result.quality.data_completeness == 1.0
    assert result.summary.startswith(f"{', '.join(sorted(core))} agree on orders-db")


def test_even_split_lists_a_conflict_and_lowers_confidence() -> None:
    agreed = roster_run([opinion(a, "orders-db", 0.8) for a in (SIGNAL, CHANGE, HISTORICAL, RISK)])
    split = roster_run(
        [opinion(a, "orders-db", 0.8) for a in (SIGNAL, CHANGE)]
        + [opinion(a, "payments-api", 0.8) for a in (HISTORICAL, RISK)]
    )
    assert split.confidence < 0.5 < agreed.confidence
    assert split.root_cause is None
    assert split.agreement_level == pytest.approx(1.9 / 3.6, abs=1e-6)
    [conflict] = split.conflicts
    assert conflict.services == ["orders-db", "payments-api"]
    assert conflict.agents == [[CHANGE, SIGNAL], [HISTORICAL, RISK]]
    assert conflict.scores == [round(1.52 / 3.6, 4), round(1.36 / 3.6, 4)]
    assert [m.agent_id for m in split.minority_opinions] == [HISTORICAL, RISK]
    assert "suggest payments-api" in split.summary


def test_three_to_one_sits_between_unanimity_and_an_even_split() -> None:
    def confidence(dissenters: int) -> float:
        agents = [SIGNAL, CHANGE, HISTORICAL, RISK]
        hyps = [opinion(a, "orders-db", 0.8) for a in agents[: 4 - dissenters]]
        hyps += [opinion(a, "payments-api", 0.8) for a in agents[4 - dissenters :]]
        return roster_run(hyps).confidence

    assert confidence(0) > confidence(1) > confidence(2)


def test_lone_agent_with_the_rest_failed_is_not_enough() -> None:
    result = roster_run(
        [opinion(SIGNAL, "orders-db", 0.95)] + [failed(a) for a in ALL_AGENTS if a != SIGNAL]
    )
    assert result.root_cause is None
    assert [c.service for c in result.candidates] == ["orders-db"]
    assert result.confidence < 0.3
    assert result.agreement_level == 1.0
    assert result.failed_agents == sorted(a for a in ALL_AGENTS if a != SIGNAL)
    assert result.quality.data_completeness == pytest.approx(1.0 / 4.9, abs=1e-6)


def test_missing_expected_agents_lower_confidence_like_failed_ones() -> None:
    hyps = [opinion(a, "orders-db", 0.8) for a in (SIGNAL, CHANGE)]
    missing = roster_run(hyps)
    with_failures = roster_run(hyps + [failed(a) for a in (HISTORICAL, RISK, KNOWLEDGE)])
    complete = build_consensus(
        {h.agent_id: h for h in hyps},
        weights=ROSTER_WEIGHTS,
        expected_agents=[SIGNAL, CHANGE],
        threshold=0.6,
    )
    assert missing.confidence == with_failures.confidence < complete.confidence
    assert HISTORICAL in missing.failed_agents


def test_failed_agent_with_a_root_cause_is_ignored() -> None:
    ghost = failed(RISK).model_copy(
        update={"root_cause": RootCause(service="ghost-svc"), "confidence": 1.0}
    )
    result = roster_run([opinion(SIGNAL, "orders-db", 0.9), ghost])
    assert [c.service for c in result.candidates] == ["orders-db"]
    assert RISK in result.failed_agents


def test_alternatives_count_half_and_once_per_agent() -> None:
    first = opinion(
        "a",
        "svc-x",
        0.8,
        alternatives=[
            AlternativeCause(service="svc-y", confidence=0.6),
            AlternativeCause(service="svc-y", confidence=0.2),
        ],
    )
    second = opinion("b", "svc-y", 0.4)
    result = build_consensus(
        {"a": first, "b": second}, weights={}, expected_agents=["a", "b"], threshold=0.0
    )
    scores = {c.service: c.score for c in result.candidates}
    assert scores == {"svc-x": 0.4, "svc-y": pytest.approx((0.3 + 0.4) / 2)}
    assert [c.service for c in result.candidates] == ["svc-x", "svc-y"]
    assert result.candidates[1].supporting_agents == ["a", "b"]
    assert result.agreement_level == 0.5


def test_alternative_only_candidate_can_lead_but_earns_no_confidence() -> None:
    hyps = {
        agent: opinion(
            agent,
            service,
            0.2,
            alternatives=[AlternativeCause(service="svc-shared", confidence=1.0)],
        )
        for agent, service in (("a", "svc-x"), ("b", "svc-y"))
    }
    result = build_consensus(hyps, weights={}, expected_agents=["a", "b"], threshold=0.0)
    assert result.candidates[0].service == "svc-shared"
    assert result.confidence == 0.0
    assert result.agreement_level == 0.0
    assert "named only as an alternative" in result.summary


def test_component_and_category_follow_the_heaviest_support() -> None:
    def agent(name: str, component: str | None, category: str, confidence: float) -> Hypothesis:
        cause = RootCause(service="svc", component=component, category=category)
        return Hypothesis(agent_id=name, root_cause=cause, confidence=confidence, evidence=EVIDENCE)

    hyps = {
        "a": agent("a", "pool", "CAPACITY", 0.9),
        "b": agent("b", "cache", "UNKNOWN", 0.5),
        "c": agent("c", "cache", "DEPLOYMENT", 0.3),
        "d": agent("d", None, "UNKNOWN", 1.0),
    }
    [candidate] = build_consensus(hyps, weights={}, expected_agents=[], threshold=0.0).candidates
    assert (candidate.component, candidate.category) == ("pool", "CAPACITY")
    hyps["e"] = agent("e", "cache", "DEPLOYMENT", 0.7)
    [candidate] = build_consensus(hyps, weights={}, expected_agents=[], threshold=0.0).candidates
    assert (candidate.component, candidate.category) == ("cache", "DEPLOYMENT")


def test_component_ties_break_alphabetically_and_unknown_category_is_default() -> None:
    hyps = {
        name: Hypothesis(
            agent_id=name,
            confidence=0.5,
            root_cause=RootCause(service="svc", component=component),
        )
        for name, component in (("a", "zeta"), ("b", "alpha"))
    }
    [candidate] = build_consensus(hyps, weights={}, expected_agents=[], threshold=0.0).candidates
    assert candidate.component == "alpha"
    assert candidate.category == "UNKNOWN"


def test_weights_decide_between_equally_sure_agents() -> None:
    hyps = {"a": opinion("a", "svc-x", 0.7), "b": opinion("b", "svc-y", 0.7)}
    result = build_consensus(
        hyps, weights={"a": 0.5, "b": 1.0}, expected_agents=["a", "b"], threshold=0.0
    )
    assert [c.service for c in result.candidates] == ["svc-y", "svc-x"]
    assert result.agreement_level == pytest.approx(1.0 / 1.5, abs=1e-6)


def test_equal_scores_rank_by_service_name() -> None:
    hyps = {"a": opinion("a", "svc-b", 0.7), "b": opinion("b", "svc-a", 0.7)}
    result = build_consensus(hyps, weights={}, expected_agents=[], threshold=0.0)
    assert [c.service for c in result.candidates] == ["svc-a", "svc-b"]


def test_equal_scores_prefer_a_primary_root_cause_over_an_alternative() -> None:
    hyps = {
        "a": opinion(
            "a", "svc-z", 0.4, alternatives=[AlternativeCause(service="svc-a", confidence=0.8)]
        ),
    }
    result = build_consensus(hyps, weights={}, expected_agents=[], threshold=0.0)
    assert [c.score for c in result.candidates] == [0.4, 0.4]
    assert [c.service for c in result.candidates] == ["svc-z", "svc-a"]
    assert result.agreement_level == 1.0


def test_claims_without_evidence_earn_less_confidence() -> None:
    backed = [opinion(a, "orders-db", 0.8) for a in (SIGNAL, CHANGE, HISTORICAL)]
    unbacked = [h.model_copy(update={"evidence": []}) for h in backed]
    assert roster_run(unbacked).confidence < roster_run(backed).confidence
    assert roster_run(unbacked).quality.evidence_coverage == 0.0
    mixed = roster_run(backed[:1] + unbacked[1:])
    assert mixed.quality.evidence_coverage == pytest.approx(1 / 3, abs=1e-6)


def test_agents_without_configured_weight_count_fully() -> None:
    hyps = {"a": opinion("a", "svc-x", 0.7), "b": opinion("b", "svc-y", 0.7)}
    result = build_consensus(hyps, weights={"a": 1.0}, expected_agents=[], threshold=0.0)
    assert result.agreement_level == 0.5


def test_summary_when_no_agent_has_an_opinion() -> None:
    nobody = roster_run([failed(a) for a in ALL_AGENTS])
    assert nobody.summary.startswith("No agent produced a hypothesis")
    silent = roster_run([Hypothesis(agent_id=SIGNAL)])
    assert silent.candidates == []
    assert "none named a root cause" in silent.summary


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan")])
def test_threshold_outside_unit_interval_is_rejected(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        build_consensus({}, weights={}, expected_agents=[], threshold=threshold)


@pytest.mark.parametrize("weight", [-1.0, float("inf"), float("nan")])
def test_invalid_weight_is_rejected(weight: float) -> None:
    with pytest.raises(ValueError, match="weight of 'a'"):
        build_consensus({}, weights={"a": weight}, expected_agents=["a"], threshold=0.5)


@settings(max_examples=25)
@given(st.lists(st.sampled_from(AGENT_IDS), unique=True, min_size=1))
def test_empty_mapping_reports_every_expected_agent_as_failed(expected: list[str]) -> None:
    result = build_consensus({}, weights={}, expected_agents=expected, threshold=0.5)
    assert result.failed_agents == sorted(expected)
    assert result.summary.startswith("No agent produced a hypothesis")


# -- breadth: an opinion formed from part of the telemetry in play -------------------------------

LOGS = [Evidence(tool="search_logs", query="errors", record_ids=["tpl-1"], summary="new errors")]
TRACES = [Evidence(tool="get_traces", query="hops", record_ids=["t-1"], summary="slow hops")]


def _split_panel(signal_evidence: list[Evidence]) -> dict[str, Hypothesis]:
    return {
        SIGNAL: opinion(SIGNAL, "route", 0.4, evidence=signal_evidence),
        RISK: opinion(RISK, "basic", 0.5),
    }


def _consensus(
    hypotheses: dict[str, Hypothesis], reads: dict[str, tuple[str, ...]] | None
) -> ConsensusResult:
    return build_consensus(
        hypotheses,
        weights={SIGNAL: 1.0, RISK: 1.0},
        expected_agents=[SIGNAL, RISK],
        threshold=0.0,
        reads=reads,
    )


def test_a_metrics_only_opinion_weighs_less_where_logs_and_traces_are_in_play() -> None:
    hypotheses = _split_panel([*LOGS, *TRACES])
    # The risk agent's tools read metrics only: a third of the metrics, logs and traces cited.
    narrowed = _consensus(hypotheses, None)
    assert narrowed.candidates[0].service == "route"
    assert narrowed.candidates[1].score == pytest.approx(0.5 / 3 / 2, abs=ROUNDING)
    # An agent whose tools are unknown keeps its full say.
    assert _consensus(hypotheses, {}).candidates[0].service == "basic"


def test_breadth_is_one_for_all_when_only_metrics_are_cited() -> None:
    hypotheses = _split_panel(EVIDENCE)
    assert _consensus(hypotheses, None) == _consensus(hypotheses, {})
    assert _consensus(hypotheses, None).candidates[0].service == "basic"


def test_breadth_does_not_lower_what_an_agreeing_opinion_corroborates() -> None:
    hypotheses = {
        SIGNAL: opinion(SIGNAL, "route", 0.6, evidence=[*LOGS, *TRACES, *EVIDENCE]),
        RISK: opinion(RISK, "route", 0.5),
    }
    assert _consensus(hypotheses, None).confidence == _consensus(hypotheses, {}).confidence


def test_an_agent_reading_no_telemetry_keeps_breadth_one() -> None:
    hypotheses = {
        SIGNAL: opinion(SIGNAL, "route", 0.4, evidence=[*LOGS, *TRACES]),
        HISTORICAL: opinion(
            HISTORICAL,
            "basic",
            0.5,
            evidence=[
                Evidence(
                    tool="search_incidents", query="similar", record_ids=["inc-1"], summary="x"
                )
            ],
        ),
    }
    result = build_consensus(
        hypotheses,
        weights={SIGNAL: 1.0, HISTORICAL: 1.0},
        expected_agents=[SIGNAL, HISTORICAL],
        threshold=0.0,
    )
    assert result.candidates[0].service == "basic"
