"""Price every agent attempt from its token counts and set the total against the budget.

Pure: the pricing table is passed in. An attempt that used tokens on a model the table does
not know is flagged ``cost_unknown`` (and its model listed) rather than silently costed at $0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from opx.domain.cost import AgentCostReport, AttemptCost, CostProjection, CostReport
from opx.domain.hypothesis import AttemptRecord, Hypothesis
from opx.reasoning.pricing import PricingTable

USD_DECIMALS = 8
DAYS_PER_MONTH = 30
# Listed in ``unknown_models`` when tokens were spent but no model was recorded at all.
UNSPECIFIED_MODEL = "<unspecified>"


def compute_cost(
    hypotheses: Mapping[str, Hypothesis],
    *,
    pricing: PricingTable,
    budget_usd: float,
    incidents_per_day: float = 10.0,
    warn_ratio: float = 0.8,
) -> CostReport:
    """Cost per agent and attempt, totals, budget signals and a monthly projection."""
    _check_inputs(budget_usd, incidents_per_day, warn_ratio)
    per_agent = {agent: _agent_cost(hypotheses[agent], pricing) for agent in sorted(hypotheses)}
    reports = list(per_agent.values())
    total = _usd(math.fsum(report.usd for report in reports))
    unknown = sorted(
        {
            attempt.model or UNSPECIFIED_MODEL
            for report in reports
            for attempt in report.attempts
            if attempt.cost_unknown
        }
    )
    remaining = _usd(budget_usd - total)
    exceeded = total > budget_usd
    return CostReport(
        pricing_version=pricing.version,
        per_agent=per_agent,
        input_tokens=sum(report.input_tokens for report in reports),
        output_tokens=sum(report.output_tokens for report in reports),
        total_usd=total,
        budget_usd=budget_usd,
        budget_remaining_usd=remaining,
        budget_exceeded=exceeded,
        budget_warning=exceeded or (budget_usd > 0 and total >= warn_ratio * budget_usd),
        cost_unknown=bool(unknown),
        unknown_models=unknown,
        projection=_projection(total, remaining, incidents_per_day),
    )


def attempt_cost(record: AttemptRecord, pricing: PricingTable) -> AttemptCost:
    """One attempt priced; unknown (and flagged) when tokens were spent on an unpriced model."""
    tokens = record.input_tokens + record.output_tokens
    price = pricing.price(record.model)
    unknown = tokens > 0 and price is None
    usd = 0.0
    if price is not None:
        usd = _usd(
            record.input_tokens / 1000 * price.input_per_1k
            + record.output_tokens / 1000 * price.output_per_1k
        )
    return AttemptCost(
        attempt=record.attempt,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        model=record.model,
        usd=usd,
        cost_unknown=unknown,
    )


def _agent_cost(hypothesis: Hypothesis, pricing: PricingTable) -> AgentCostReport:
    attempts = [attempt_cost(record, pricing) for record in _attempt_records(hypothesis)]
    return AgentCostReport(
        input_tokens=sum(a.input_tokens for a in attempts),
        output_tokens=sum(a.output_tokens for a in attempts),
        usd=_usd(math.fsum(a.usd for a in attempts)),
        models=sorted({a.model for a in attempts if a.model is not None}),
        cost_unknown=any(a.cost_unknown for a in attempts),
        attempts=attempts,
    )


def _attempt_records(hypothesis: Hypothesis) -> Sequence[AttemptRecord]:
    """The recorded attempts, or the aggregate ``cost`` as a single attempt when none were."""
    if hypothesis.attempts:
        return sorted(hypothesis.attempts, key=lambda record: record.attempt)
    cost = hypothesis.cost
    if cost.input_tokens + cost.output_tokens == 0:
        return []
    return [
        AttemptRecord(
            attempt=1,
            status=hypothesis.status,
            input_tokens=cost.input_tokens,
            output_tokens=cost.output_tokens,
            model=cost.model,
        )
    ]


def _projection(total: float, remaining: float, incidents_per_day: float) -> CostProjection:
    left: int | None = None
    if total > 0:
        left = math.floor(remaining / total) if remaining > 0 else 0
    return CostProjection(
        incidents_per_day=incidents_per_day,
        monthly_usd=_usd(total * incidents_per_day * DAYS_PER_MONTH),
        executions_left_in_budget=left,
    )


def _check_inputs(budget_usd: float, incidents_per_day: float, warn_ratio: float) -> None:
    if not (math.isfinite(budget_usd) and budget_usd >= 0):
        raise ValueError(f"budget_usd must be a finite number >= 0, got {budget_usd!r}")
    if not (math.isfinite(incidents_per_day) and incidents_per_day >= 0):
        raise ValueError(f"incidents_per_day must be finite and >= 0, got {incidents_per_day!r}")
    if not 0.0 <= warn_ratio <= 1.0:
        raise ValueError(f"warn_ratio must be within 0..1, got {warn_ratio!r}")


def _usd(value: float) -> float:
    return round(value, USD_DECIMALS)
