"""Who the agents are: ids, consensus weights, deadlines, tools and order in the graph."""

from __future__ import annotations

from dataclasses import dataclass

SIGNAL = "signal-intelligence"
HISTORICAL = "historical-pattern"
CHANGE = "change-intelligence"
RISK = "risk-blast-radius"
KNOWLEDGE = "knowledge-rag"
RESPONSE = "response-strategy"


@dataclass(frozen=True)
class AgentSpec:
    agent_id: str
    weight: float
    deadline_s: float
    core: bool
    tools: tuple[str, ...]
    description: str


ROSTER: dict[str, AgentSpec] = {
    spec.agent_id: spec
    for spec in (
        AgentSpec(
            SIGNAL,
            1.0,
            30.0,
            True,
            ("list_metrics", "get_metrics", "search_logs", "get_traces", "get_service_graph"),
            "anomalies in metrics, logs and traces, localised on the service graph",
        ),
        AgentSpec(
            HISTORICAL,
            0.9,
            20.0,
            True,
            ("search_incidents", "get_resolution"),
            "similar past incidents and how they were resolved",
        ),
        AgentSpec(
            CHANGE,
            0.9,
            25.0,
            True,
            (
                "list_deployments",
                "list_config_changes",
                "get_service_graph",
                "get_metrics",
                "search_logs",
            ),
            "deployments and configuration changes close to the incident",
        ),
        AgentSpec(
            RISK,
            0.8,
            20.0,
            True,
            ("get_service_graph", "get_traffic", "get_metrics"),
            "blast radius and propagation over the service graph",
        ),
        AgentSpec(
            KNOWLEDGE,
            0.7,
            15.0,
            False,
            ("retrieve_knowledge",),
            "runbooks and postmortems that match the evidence, with citations",
        ),
        AgentSpec(
            RESPONSE,
            0.6,
            30.0,
            False,
            (),
            "response options ranked from the other hypotheses (advice only)",
        ),
    )
}

CORE_AGENTS: tuple[str, ...] = tuple(sorted(a for a, s in ROSTER.items() if s.core))
ALL_AGENTS: tuple[str, ...] = tuple(sorted(ROSTER))
WEIGHTS: dict[str, float] = {a: s.weight for a, s in ROSTER.items()}
