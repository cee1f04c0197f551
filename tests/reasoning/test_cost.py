"""Cost accounting: per-attempt pricing, unknown models, budget signals and projection."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opx.domain.cost import CostReport
from opx.domain.hypothesis import AgentCost, AttemptRecord, Hypothesis, HypothesisStatus
from opx.reasoning.cost import UNSPECIFIED_MODEL, compute_cost
from opx.reasoning.pricing import ModelPrice, PricingTable, load_pricing

from .strategies import AGENT_IDS

SONNET = "anthropic.claude-3-5-sonnet-20241022-v2:0"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
MYSTERY = "vendor.mystery-model-v9:0"
PRICING = load_pricing()
TABLE = PricingTable(
    version="test-1",
    models={
        "cheap": ModelPrice(input_per_1k=0.001, output_per_1k=0.002),
        "dear": ModelPrice(input_per_1k=0.01, output_per_1k=0.03),
        "free": ModelPrice(input_per_1k=0.0, output_per_1k=0.0),
    },
)

models = st.sampled_from(
    [
        None,
        "cheap",
        "dear",
        "free",
        "us.cheap.x",
        "arn:aws:bedrock:r::foundation-model/dear",
        MYSTERY,
    ]
)
tokens = st.integers(min_value=0, max_value=500_000)
attempt_records = st.builds(
    AttemptRecord,
    attempt=st.integers(1, 4),
    status=st.sampled_from(list(HypothesisStatus)),
    input_tokens=tokens,
    output_tokens=tokens,
    model=models,
)


@st.composite
def costed_hypotheses(draw: st.DrawFn) -> dict[str, Hypothesis]:
    agents = draw(st.lists(st.sampled_from(AGENT_IDS), unique=True))
    result: dict[str, Hypothesis] = {}
    for agent in agents:
        attempts = draw(st.lists(attempt_records, max_size=3))
        cost = draw(st.builds(AgentCost, input_tokens=tokens, output_tokens=tokens, model=models))
        result[agent] = Hypothesis(agent_id=agent, attempts=attempts, cost=cost)
    return result


budgets = st.floats(min_value=0.0, max_value=50.0, allow_nan=False)


def report(
    hyps: dict[str, Hypothesis],
    budget: float = 1.0,
    *,
    incidents_per_day: float = 10.0,
    warn_ratio: float = 0.8,
) -> CostReport:
    return compute_cost(
        hyps,
        pricing=TABLE,
        budget_usd=budget,
        incidents_per_day=incidents_per_day,
        warn_ratio=warn_ratio,
    )


def single(
    input_tokens: int, output_tokens: int, model: str | None, agent: str = "agent-a"
) -> dict[str, Hypothesis]:
    record = AttemptRecord(
        attempt=1,
        status=HypothesisStatus.SUCCESS,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        model=model,
    )
    return {agent: Hypothesis(agent_id=agent, attempts=[record])}


# --- properties -------------------------------------------------------------------------


@given(costed_hypotheses(), budgets, st.randoms(use_true_random=False))
def test_output_does_not_depend_on_mapping_order(
    hyps: dict[str, Hypothesis], budget: float, rnd: random.Random
) -> None:
    items = list(hyps.items())
    rnd.shuffle(items)
    shuffled = report(dict(items), budget)
    assert shuffled.model_dump() == report(hyps, budget).model_dump()
    assert list(shuffled.per_agent) == sorted(hyps)


@given(costed_hypotheses(), budgets)
def test_totals_equal_the_sum_of_their_parts(hyps: dict[str, Hypothesis], budget: float) -> None:
    result = report(hyps, budget)
    agents = list(result.per_agent.values())
    assert result.total_usd == round(math.fsum(a.usd for a in agents), 8)
    assert result.input_tokens == sum(a.input_tokens for a in agents)
    assert result.output_tokens == sum(a.output_tokens for a in agents)
    for agent in agents:
        assert agent.usd == round(math.fsum(a.usd for a in agent.attempts), 8)
        assert agent.input_tokens == sum(a.input_tokens for a in agent.attempts)
        assert agent.cost_unknown == any(a.cost_unknown for a in agent.attempts)
    assert result.budget_remaining_usd == pytest.approx(budget - result.total_usd, abs=1e-8)


@given(costed_hypotheses(), budgets)
def test_amounts_are_never_negative(hyps: dict[str, Hypothesis], budget: float) -> None:
    result = report(hyps, budget)
    amounts = [result.total_usd, result.projection.monthly_usd]
    amounts += [a.usd for a in result.per_agent.values()]
    amounts += [t.usd for a in result.per_agent.values() for t in a.attempts]
    assert all(amount >= 0 for amount in amounts)
    left = result.projection.executions_left_in_budget
    assert left is None or left >= 0


@given(costed_hypotheses(), budgets)
def test_spending_tokens_on_an_unpriced_model_is_always_flagged(
    hyps: dict[str, Hypothesis], budget: float
) -> None:
    result = report(hyps, budget)
    spent_unpriced = set()
    for agent, hypothesis in hyps.items():
        cost = hypothesis.cost
        records: list[AttemptRecord | AgentCost] = [*hypothesis.attempts]
        if not records and cost.input_tokens + cost.output_tokens > 0:
            records = [cost]
        unpriced = [
            r
            for r in records
            if r.input_tokens + r.output_tokens > 0 and TABLE.price(r.model) is None
        ]
        assert result.per_agent[agent].cost_unknown == bool(unpriced)
        spent_unpriced |= {r.model or UNSPECIFIED_MODEL for r in unpriced}
    assert result.unknown_models == sorted(spent_unpriced)
    assert result.cost_unknown == bool(spent_unpriced)


@given(costed_hypotheses(), budgets, st.floats(0.0, 1.0))
def test_budget_signals_follow_the_total(
    hyps: dict[str, Hypothesis], budget: float, warn_ratio: float
) -> None:
    result = report(hyps, budget, warn_ratio=warn_ratio)
    assert result.budget_exceeded == (result.total_usd > budget)
    warn = result.budget_exceeded or (budget > 0 and result.total_usd >= warn_ratio * budget)
    assert result.budget_warning == warn


@given(costed_hypotheses(), budgets, st.floats(0.0, 500.0))
def test_projection_scales_the_total(
    hyps: dict[str, Hypothesis], budget: float, per_day: float
) -> None:
    result = report(hyps, budget, incidents_per_day=per_day)
    projection = result.projection
    assert projection.monthly_usd == pytest.approx(result.total_usd * per_day * 30, abs=1e-8)
    if result.total_usd == 0:
        assert projection.executions_left_in_budget is None
    elif result.budget_remaining_usd <= 0:
        assert projection.executions_left_in_budget == 0
    else:
        left = projection.executions_left_in_budget
        assert left is not None
        assert left * result.total_usd <= result.budget_remaining_usd + 1e-9
        assert (left + 1) * result.total_usd > result.budget_remaining_usd - 1e-9


# --- examples ---------------------------------------------------------------------------


def test_attempt_is_priced_per_thousand_tokens() -> None:
    result = compute_cost(single(1000, 500, SONNET), pricing=PRICING, budget_usd=1.0)
    [attempt] = result.per_agent["agent-a"].attempts
    assert attempt.usd == pytest.approx(0.003 + 0.0075)
    assert result.total_usd == pytest.approx(0.0105)
    assert result.pricing_version == "2026-11-26.2"
    assert result.per_agent["agent-a"].models == [SONNET]
    assert not result.cost_unknown


def test_region_prefixed_and_arn_models_are_priced_like_bare_ids() -> None:
    arn = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{HAIKU}"
    bare = compute_cost(single(2000, 1000, HAIKU), pricing=PRICING, budget_usd=1.0)
    for model in (f"us.{HAIKU}", f"eu.{HAIKU}", arn):
        result = compute_cost(single(2000, 1000, model), pricing=PRICING, budget_usd=1.0)
        assert result.total_usd == bare.total_usd == pytest.approx(0.0005 + 0.00125)
        assert result.per_agent["agent-a"].models == [model]


def test_several_attempts_add_up_per_agent_and_overall() -> None:
    records = [
        AttemptRecord(
            attempt=2,
            status=HypothesisStatus.SUCCESS,
            input_tokens=1000,
            output_tokens=0,
            model="dear",
        ),
        AttemptRecord(
            attempt=1,
            status=HypothesisStatus.TIMEOUT,
            input_tokens=1000,
            output_tokens=1000,
            model="cheap",
        ),
    ]
    hyps = {
        "b": Hypothesis(agent_id="b", attempts=records),
        "a": Hypothesis(agent_id="a", cost=AgentCost(input_tokens=2000, model="dear")),
    }
    result = report(hyps, budget=1.0)
    assert list(result.per_agent) == ["a", "b"]
    assert [a.attempt for a in result.per_agent["b"].attempts] == [1, 2]
    assert result.per_agent["b"].usd == pytest.approx(0.003 + 0.01)
    assert result.per_agent["b"].models == ["cheap", "dear"]
    assert result.per_agent["a"].usd == pytest.approx(0.02)
    assert result.total_usd == pytest.approx(0.033)
    assert (result.input_tokens, result.output_tokens) == (4000, 1000)


def test_unknown_model_is_flagged_never_silently_free() -> None:
    result = compute_cost(single(100, 100, MYSTERY), pricing=PRICING, budget_usd=1.0)
    agent = result.per_agent["agent-a"]
    assert agent.cost_unknown and agent.attempts[0].cost_unknown
    assert result.cost_unknown
    assert result.unknown_models == [MYSTERY]
    assert result.total_usd == 0.0


def test_tokens_without_a_model_are_flagged_as_unspecified() -> None:
    result = compute_cost(single(10, 0, None), pricing=PRICING, budget_usd=1.0)
    assert result.cost_unknown
    assert result.unknown_models == [UNSPECIFIED_MODEL]


def test_zero_tokens_without_a_model_is_a_known_zero() -> None:
    result = compute_cost(single(0, 0, None), pricing=PRICING, budget_usd=1.0)
    assert not result.cost_unknown
    assert result.total_usd == 0.0
    assert result.projection.executions_left_in_budget is None


def test_local_analyst_is_free_and_known() -> None:
    result = compute_cost(single(5000, 5000, "local-analyst"), pricing=PRICING, budget_usd=0.0)
    assert not result.cost_unknown
    assert result.total_usd == 0.0
    assert not result.budget_exceeded and not result.budget_warning


def test_agent_without_attempts_or_tokens_costs_nothing() -> None:
    result = report({"a": Hypothesis(agent_id="a")})
    assert result.per_agent["a"].attempts == []
    assert result.per_agent["a"].usd == 0.0


def test_budget_warning_before_it_is_exceeded() -> None:
    # 1000 input tokens on "dear" cost $0.01.
    hyps = single(1000, 0, "dear")
    calm = report(hyps, budget=0.02)
    warned = report(hyps, budget=0.012)
    exceeded = report(hyps, budget=0.005)
    assert (calm.budget_warning, calm.budget_exceeded) == (False, False)
    assert (warned.budget_warning, warned.budget_exceeded) == (True, False)
    assert (exceeded.budget_warning, exceeded.budget_exceeded) == (True, True)
    assert exceeded.budget_remaining_usd == pytest.approx(-0.005)
    assert exceeded.projection.executions_left_in_budget == 0


def test_projection_counts_whole_executions_left_and_a_month_of_spend() -> None:
    result = report(single(1000, 0, "dear"), budget=0.055, incidents_per_day=4.0)
    assert result.projection.monthly_usd == pytest.approx(0.01 * 4 * 30)
    assert result.projection.executions_left_in_budget == 4
    assert result.projection.incidents_per_day == 4.0


@pytest.mark.parametrize(
    ("budget", "per_day", "warn_ratio", "message"),
    [
        (-1.0, 10.0, 0.8, "budget_usd"),
        (float("nan"), 10.0, 0.8, "budget_usd"),
        (1.0, -2.0, 0.8, "incidents_per_day"),
        (1.0, 10.0, 1.5, "warn_ratio"),
    ],
)
def test_invalid_arguments_are_rejected(
    budget: float, per_day: float, warn_ratio: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        report({}, budget, incidents_per_day=per_day, warn_ratio=warn_ratio)
