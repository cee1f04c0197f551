"""The local analyst of each agent: deterministic algorithms, no model, no cost."""

from __future__ import annotations

from datetime import timedelta

from opx.agents.base import Analyst
from opx.agents.local.change import ChangeAnalyst
from opx.agents.local.historical import HistoricalAnalyst
from opx.agents.local.knowledge import KnowledgeAnalyst
from opx.agents.local.response import ResponseAnalyst
from opx.agents.local.risk import RiskAnalyst
from opx.agents.local.signal import SignalAnalyst


def local_analysts(baseline_lookback: timedelta = timedelta(hours=24)) -> dict[str, Analyst]:
    """One analyst per agent id; ``baseline_lookback`` is how far before the window they look."""
    analysts: list[Analyst] = [
        SignalAnalyst(lookback=baseline_lookback),
        HistoricalAnalyst(),
        ChangeAnalyst(lookback=baseline_lookback),
        RiskAnalyst(lookback=baseline_lookback),
        KnowledgeAnalyst(),
        ResponseAnalyst(),
    ]
    return {analyst.agent_id: analyst for analyst in analysts}
