"""Chooses the reasoning backend each agent runs on, as the settings say: the local analysts by
default, a Bedrock agent where ``OPX_AGENT_BACKEND`` / ``OPX_AGENT_BACKEND_<AGENT>`` ask for it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from functools import partial

from opx.agents.analysts import local_analysts
from opx.agents.backend import LocalBackend, ReasoningBackend
from opx.agents.base import AgentContext, AgentOutput
from opx.agents.bedrock.backend import BedrockBackend
from opx.agents.bedrock.client import make_client
from opx.agents.roster import ALL_AGENTS
from opx.config import ConfigError, Settings, env_name
from opx.domain.errors import ErrorCode, OpxError


class RoutedBackend:
    """Sends each agent to its own backend."""

    def __init__(self, routes: Mapping[str, ReasoningBackend]) -> None:
        self._routes = dict(routes)
        self.name = "+".join(sorted({backend.name for backend in self._routes.values()}))

    def backend_of(self, agent_id: str) -> ReasoningBackend:
        try:
            return self._routes[agent_id]
        except KeyError:
            raise OpxError(
                ErrorCode.INTERNAL_ERROR, f"no backend for {agent_id}", retryable=False
            ) from None

    def version_of(self, agent_id: str) -> str:
        return self.backend_of(agent_id).version_of(agent_id)

    def model_of(self, agent_id: str) -> str:
        return self.backend_of(agent_id).model_of(agent_id)

    async def invoke(self, agent_id: str, ctx: AgentContext, attempt: int) -> AgentOutput:
        return await self.backend_of(agent_id).invoke(agent_id, ctx, attempt)


def _variable(agent_id: str) -> str:
    return "OPX_BEDROCK_AGENT_" + env_name(agent_id)


def make_backend(settings: Settings) -> ReasoningBackend:
    """The backend for this run: the local analysts, Bedrock agents, or a mix, per agent.
    ConfigError names each missing ``OPX_BEDROCK_AGENT_<AGENT>``."""
    lookback = timedelta(hours=settings.baseline_lookback_hours)
    local = LocalBackend(local_analysts(lookback))
    on_bedrock = [a for a in ALL_AGENTS if settings.backend_for(a) == "bedrock"]
    if not on_bedrock:
        return local
    missing = [a for a in on_bedrock if a not in settings.bedrock_agents]
    if missing:
        names = ", ".join(_variable(a) for a in missing)
        raise ConfigError(
            f"{names} must be set to <agentId>/<aliasId>: "
            f"{', '.join(missing)} {'runs' if len(missing) == 1 else 'run'} on Bedrock"
        )
    bedrock = BedrockBackend(
        {a: settings.bedrock_agents[a] for a in on_bedrock},
        local,
        client_factory=partial(make_client, settings.bedrock_deadline_s),
        planned_model=settings.bedrock_model,
    )
    if len(on_bedrock) == len(ALL_AGENTS):
        return bedrock
    return RoutedBackend({a: bedrock if a in on_bedrock else local for a in ALL_AGENTS})
