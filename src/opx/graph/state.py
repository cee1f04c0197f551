"""The graph state: plain JSON values only, with reducers on every key parallel nodes write."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from opx.agents.roster import CHANGE, HISTORICAL, KNOWLEDGE, RESPONSE, RISK, SIGNAL

JSON = dict[str, Any]

# Trace order is fixed by stage, then node, then attempt, so that parallel agents finishing in a
# different order still give the same trace.
STAGES: dict[str, int] = {
    "entry": 0,
    "budget_check": 1,
    SIGNAL: 2,
    HISTORICAL: 2,
    CHANGE: 2,
    RISK: 2,
    KNOWLEDGE: 3,
    RESPONSE: 4,
    "consensus": 5,
    "cost_guardian": 6,
    "finalize": 7,
}


def _order(entry: JSON) -> tuple[int, str, int]:
    return (STAGES.get(entry["node"], 99), entry["node"], int(entry.get("attempt", 1)))


def merge_by_key(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Merge dicts written by parallel nodes; keys are agent ids, so writers never collide."""
    merged = dict(left or {})
    merged.update(right or {})
    return {key: merged[key] for key in sorted(merged)}


def append_in_stage_order(left: list[JSON] | None, right: list[JSON] | None) -> list[JSON]:
    """Append entries and keep them in stage order (a stable sort keeps a node's own order)."""
    return sorted([*(left or []), *(right or [])], key=_order)


class GraphState(TypedDict, total=False):
    incident: JSON
    execution_id: str
    attempt: int
    budget: JSON
    hypotheses: Annotated[dict[str, JSON], merge_by_key]
    trace: Annotated[list[JSON], append_in_stage_order]
    errors: Annotated[list[JSON], append_in_stage_order]
    timings: Annotated[dict[str, JSON], merge_by_key]
    consensus_result: JSON
    cost_report: JSON
    result: JSON
