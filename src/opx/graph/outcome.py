"""Builds the execution's final answer from the graph state: pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping

from opx import __version__
from opx.agents.roster import CORE_AGENTS, RESPONSE, WEIGHTS
from opx.domain.consensus import ConsensusResult
from opx.domain.cost import CostReport
from opx.domain.hypothesis import Hypothesis, Recommendation, RecommendationType
from opx.domain.result import (
    ActionableRecommendation,
    ExecutionResult,
    ExecutionStatus,
    Reason,
    TraceEntry,
    Versions,
)
from opx.graph.state import GraphState

MAX_ACTIONS = 5
# Reversible, low-risk advice first; a rollback is offered but never ahead of looking.
_TYPE_ORDER = {
    RecommendationType.INVESTIGATION: 0,
    RecommendationType.MITIGATION: 1,
    RecommendationType.ROLLBACK: 2,
}


def hypotheses_of(state: GraphState) -> dict[str, Hypothesis]:
    raw = state.get("hypotheses") or {}
    return {agent: Hypothesis.model_validate(raw[agent]) for agent in sorted(raw)}


def core_agents_failed(hypotheses: Mapping[str, Hypothesis]) -> bool:
    return not any(h.status.produced for a, h in hypotheses.items() if a in CORE_AGENTS)


def recommendation_for(
    consensus: ConsensusResult, hypotheses: Mapping[str, Hypothesis]
) -> ActionableRecommendation | None:
    """The advice for a confident root cause: actions of the agents that support it."""
    root = consensus.root_cause
    if root is None:
        return None
    supporters = [
        h
        for a, h in sorted(hypotheses.items())
        if h.status.produced and h.root_cause is not None and h.root_cause.service == root.service
    ]
    basis = sorted({b for h in supporters for b in h.confidence_basis})
    return ActionableRecommendation(
        root_cause=root,
        confidence=consensus.confidence,
        confidence_basis=basis,
        actions=_actions(supporters),
        summary=consensus.summary,
    )


def _actions(supporters: list[Hypothesis]) -> list[Recommendation]:
    # The response strategist already ranked options; other agents' advice follows by weight.
    ranked = sorted(
        supporters,
        key=lambda h: (h.agent_id != RESPONSE, -WEIGHTS.get(h.agent_id, 0.5), h.agent_id),
    )
    seen: set[str] = set()
    actions: list[Recommendation] = []
    for hypothesis in ranked:
        for rec in sorted(hypothesis.recommendations, key=lambda r: _TYPE_ORDER[r.type]):
            key = rec.description.strip().lower()
            if key not in seen:
                seen.add(key)
                actions.append(rec)
    return actions[:MAX_ACTIONS]


def status_of(
    consensus: ConsensusResult, hypotheses: Mapping[str, Hypothesis]
) -> tuple[ExecutionStatus, Reason]:
    if core_agents_failed(hypotheses):
        return ExecutionStatus.NO_RECOMMENDATION, Reason.ALL_CORE_AGENTS_FAILED
    if consensus.root_cause is None:
        return ExecutionStatus.NO_RECOMMENDATION, Reason.NO_CONFIDENT_ROOT_CAUSE
    return ExecutionStatus.COMPLETED, Reason.ROOT_CAUSE_IDENTIFIED


def versions_of(hypotheses: Mapping[str, Hypothesis], pricing_version: str) -> Versions:
    return Versions(
        opx=__version__,
        analysts={a: h.agent_version for a, h in sorted(hypotheses.items())},
        models={a: h.cost.model for a, h in sorted(hypotheses.items()) if h.cost.model},
        pricing=pricing_version,
    )


def build_result(
    state: GraphState, consensus: ConsensusResult, cost: CostReport
) -> ExecutionResult:
    hypotheses = hypotheses_of(state)
    status, reason = status_of(consensus, hypotheses)
    recommendation = (
        recommendation_for(consensus, hypotheses) if status is ExecutionStatus.COMPLETED else None
    )
    return ExecutionResult(
        incident_id=state["incident"]["incident_id"],
        execution_id=state["execution_id"],
        status=status,
        reason=reason,
        recommendation=recommendation,
        consensus=consensus,
        hypotheses=hypotheses,
        cost=cost,
        execution_trace=[TraceEntry.model_validate(t) for t in state.get("trace", [])],
        errors=list(state.get("errors", [])),
        versions=versions_of(hypotheses, cost.pricing_version),
    )
