"""build_graph(): entry → budget check → four core agents in parallel → knowledge → response →
consensus → cost guardian → finalize, with a short cut to finalize when every core agent failed."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from opx.agents.backend import ReasoningBackend
from opx.agents.base import AgentContext
from opx.agents.roster import ALL_AGENTS, CORE_AGENTS, KNOWLEDGE, RESPONSE, WEIGHTS
from opx.agents.runner import RetryPolicy, Sleep, Stopped, run_agent
from opx.config import Settings
from opx.domain.consensus import ConsensusResult
from opx.domain.cost import CostReport
from opx.domain.errors import ErrorCode, ErrorInfo
from opx.domain.incident import Incident
from opx.domain.result import ExecutionResult, ExecutionStatus, Reason, TraceEntry
from opx.graph.outcome import build_result, core_agents_failed, hypotheses_of, versions_of
from opx.graph.state import JSON, GraphState
from opx.reasoning.consensus import build_consensus
from opx.reasoning.cost import compute_cost
from opx.reasoning.pricing import PricingTable
from opx.tools.base import TelemetryTools


class Node(Protocol):
    """An async graph node; the parameter is named ``state`` as LangGraph's node protocol says."""

    def __call__(self, state: GraphState) -> Awaitable[dict[str, Any]]: ...


# A planning figure for the pre-flight estimate (input, output tokens per agent call); the cost
# guardian accounts what was really used.
_PLANNED_TOKENS = (4000, 1000)


@dataclass(frozen=True)
class GraphDeps:
    """What the nodes need that is not state: adapters and settings (never checkpointed)."""

    tools: TelemetryTools
    backend: ReasoningBackend
    settings: Settings
    pricing: PricingTable
    sleep: Sleep = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    # The kill switch, asked before each agent runs (default: never stops).
    agent_stopped: Stopped = field(default=lambda _agent: False)


def _trace(node: str, status: str, detail: str | None = None) -> list[JSON]:
    return [TraceEntry(node=node, status=status, detail=detail).model_dump(mode="json")]


def _incident(state: GraphState) -> Incident:
    return Incident.model_validate(state["incident"])


async def _entry(state: GraphState) -> dict[str, Any]:
    return {"trace": _trace("entry", "OK")}


def _budget_node(deps: GraphDeps) -> Node:
    async def budget_check(state: GraphState) -> dict[str, Any]:
        budget = _incident(state).budget_usd
        model = deps.backend.model_of(ALL_AGENTS[0])
        price = deps.pricing.price(model)
        known = price is not None
        estimate = (
            0.0
            if price is None
            else len(ALL_AGENTS)
            * (
                _PLANNED_TOKENS[0] / 1000 * price.input_per_1k
                + _PLANNED_TOKENS[1] / 1000 * price.output_per_1k
            )
        )
        status = "OK" if known and estimate <= budget else ("UNKNOWN_PRICE" if not known else "LOW")
        return {
            "budget": {
                "budget_usd": budget,
                "estimated_usd": round(estimate, 6),
                "model": model,
                "status": status,
            },
            "trace": _trace("budget_check", status),
        }

    return budget_check


def _agent_node(agent_id: str, deps: GraphDeps) -> Node:
    async def agent(state: GraphState) -> dict[str, Any]:
        prior = hypotheses_of(state)
        if agent_id == KNOWLEDGE:
            prior = {a: h for a, h in prior.items() if a in CORE_AGENTS}
        ctx = AgentContext(
            incident=_incident(state),
            tools=deps.tools,
            prior=prior if agent_id in (KNOWLEDGE, RESPONSE) else {},
            execution_id=str(state.get("execution_id") or ""),
            attempt=int(state.get("attempt") or 1),
        )
        outcome = await run_agent(
            agent_id,
            deps.backend,
            ctx,
            deadline_s=deps.settings.deadline_for(agent_id),
            policy=RetryPolicy(deps.settings.retry_max_attempts, deps.settings.retry_base_delay_s),
            sleep=deps.sleep,
            rng=deps.rng,
            stopped=deps.agent_stopped,
        )
        errors = [
            {"node": agent_id, "attempt": i + 1, "error": e.model_dump(mode="json")}
            for i, e in enumerate(outcome.errors)
        ]
        return {
            "hypotheses": {agent_id: outcome.hypothesis.model_dump(mode="json")},
            "trace": [t.model_dump(mode="json") for t in outcome.trace],
            "errors": errors,
            "timings": {
                agent_id: {"started_at": outcome.started_at, "finished_at": outcome.finished_at}
            },
        }

    return agent


def _consensus_of(state: GraphState, deps: GraphDeps) -> ConsensusResult:
    return build_consensus(
        hypotheses_of(state),
        weights=WEIGHTS,
        expected_agents=ALL_AGENTS,
        threshold=deps.settings.confidence_threshold,
    )


def _cost_of(state: GraphState, deps: GraphDeps) -> CostReport:
    return compute_cost(
        hypotheses_of(state),
        pricing=deps.pricing,
        budget_usd=_incident(state).budget_usd,
        incidents_per_day=deps.settings.incidents_per_day,
        warn_ratio=deps.settings.budget_warn_ratio,
    )


CONSENSUS_FAILED = "CONSENSUS_FAILED"


def _consensus_error(exc: Exception) -> list[JSON]:
    info = ErrorInfo.of(ErrorCode.INTERNAL_ERROR, f"consensus failed: {type(exc).__name__}: {exc}")
    return [{"node": "consensus", "attempt": 1, "error": info.model_dump(mode="json")}]


def _consensus_failed(state: GraphState) -> bool:
    return any(e.get("node") == "consensus" for e in state.get("errors", []))


def _consensus_node(deps: GraphDeps) -> Node:
    async def consensus(state: GraphState) -> dict[str, Any]:
        try:
            result = _consensus_of(state, deps)
        except Exception as exc:  # fail closed: no recommendation rather than a guess
            return {"errors": _consensus_error(exc), "trace": _trace("consensus", CONSENSUS_FAILED)}
        status = "ROOT_CAUSE" if result.root_cause else "NO_CONFIDENT_ROOT_CAUSE"
        return {
            "consensus_result": result.model_dump(mode="json"),
            "trace": _trace("consensus", status),
        }

    return consensus


def _cost_node(deps: GraphDeps) -> Node:
    async def cost_guardian(state: GraphState) -> dict[str, Any]:
        report = _cost_of(state, deps)
        status = "BUDGET_EXCEEDED" if report.budget_exceeded else "OK"
        return {
            "cost_report": report.model_dump(mode="json"),
            "trace": _trace("cost_guardian", status),
        }

    return cost_guardian


def _finalize_node(deps: GraphDeps) -> Node:
    async def finalize(state: GraphState) -> dict[str, Any]:
        # On the short cut from the core agents, consensus and cost have not run: compute them
        # here so the result still says what was tried and what it cost.
        cost = (
            CostReport.model_validate(state["cost_report"])
            if "cost_report" in state
            else _cost_of(state, deps)
        )
        errors: list[JSON] = []
        consensus: ConsensusResult | None = None
        if "consensus_result" in state:
            consensus = ConsensusResult.model_validate(state["consensus_result"])
        elif not _consensus_failed(state):
            try:
                consensus = _consensus_of(state, deps)
            except Exception as exc:
                errors = _consensus_error(exc)
        trace = _trace("finalize", "OK")
        final_state: GraphState = {
            **state,
            "trace": [*state.get("trace", []), *trace],
            "errors": [*state.get("errors", []), *errors],
        }
        result = (
            build_result(final_state, consensus, cost)
            if consensus is not None
            else failed_closed(final_state, cost)
        )
        return {"result": result.model_dump(mode="json"), "trace": trace, "errors": errors}

    return finalize


def failed_closed(state: GraphState, cost: CostReport) -> ExecutionResult:
    """The answer when consensus itself failed: FAILED, with the agents' hypotheses and the
    cost kept for the record, and no recommendation (a guess is worse than none)."""
    hypotheses = hypotheses_of(state)
    return ExecutionResult(
        incident_id=state["incident"]["incident_id"],
        execution_id=state["execution_id"],
        status=ExecutionStatus.FAILED,
        reason=Reason.INTERNAL_ERROR,
        recommendation=None,
        consensus=None,
        hypotheses=hypotheses,
        cost=cost,
        execution_trace=[TraceEntry.model_validate(t) for t in state.get("trace", [])],
        errors=list(state.get("errors", [])),
        versions=versions_of(hypotheses, cost.pricing_version),
    )


async def _core_gate(state: GraphState) -> dict[str, Any]:
    return {}


def _after_core(state: GraphState) -> Literal["continue", "all_failed"]:
    return "all_failed" if core_agents_failed(hypotheses_of(state)) else "continue"


def build_graph(
    deps: GraphDeps, checkpointer: BaseCheckpointSaver[Any] | None = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(GraphState)
    graph.add_node("entry", _entry)
    graph.add_node("budget_check", _budget_node(deps))
    for agent_id in ALL_AGENTS:
        graph.add_node(agent_id, _agent_node(agent_id, deps))
    graph.add_node("core_gate", _core_gate)
    graph.add_node("consensus", _consensus_node(deps))
    graph.add_node("cost_guardian", _cost_node(deps))
    graph.add_node("finalize", _finalize_node(deps))

    graph.add_edge(START, "entry")
    graph.add_edge("entry", "budget_check")
    for agent_id in CORE_AGENTS:
        graph.add_edge("budget_check", agent_id)
    graph.add_edge(list(CORE_AGENTS), "core_gate")
    graph.add_conditional_edges(
        "core_gate", _after_core, {"continue": KNOWLEDGE, "all_failed": "finalize"}
    )
    graph.add_edge(KNOWLEDGE, RESPONSE)
    graph.add_edge(RESPONSE, "consensus")
    graph.add_edge("consensus", "cost_guardian")
    graph.add_edge("cost_guardian", "finalize")
    graph.add_edge("finalize", END)
    return graph.compile(checkpointer=checkpointer)
