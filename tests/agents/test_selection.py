"""make_backend: local by default, Bedrock per agent, and a clear error for a missing agent id."""

from __future__ import annotations

from pathlib import Path

import pytest

from opx.agents.backend import LocalBackend
from opx.agents.bedrock.backend import BedrockBackend
from opx.agents.roster import ALL_AGENTS
from opx.agents.selection import RoutedBackend, make_backend
from opx.config import ConfigError, load_settings
from opx.domain.errors import OpxError
from opx.reasoning.pricing import load_pricing


def _refs(*agents: str) -> dict[str, str]:
    return {
        f"OPX_BEDROCK_AGENT_{a.upper().replace('-', '_')}": f"AGENT{i:05d}/ALIAS{i:05d}"
        for i, a in enumerate(agents)
    }


def test_local_by_default(tmp_path: Path) -> None:
    assert isinstance(make_backend(load_settings({}, tmp_path)), LocalBackend)


def test_all_on_bedrock(tmp_path: Path) -> None:
    env = {"OPX_AGENT_BACKEND": "bedrock", **_refs(*ALL_AGENTS)}
    backend = make_backend(load_settings(env, tmp_path))
    assert isinstance(backend, BedrockBackend)
    assert {backend.version_of(a) for a in ALL_AGENTS} == {"bedrock/1.1.0"}
    assert backend.model_of("knowledge-rag").startswith("bedrock-agent/AGENT")


def test_a_mix_routes_each_agent_to_its_backend(tmp_path: Path) -> None:
    env = {"OPX_AGENT_BACKEND_KNOWLEDGE_RAG": "bedrock", **_refs("knowledge-rag")}
    backend = make_backend(load_settings(env, tmp_path))
    assert isinstance(backend, RoutedBackend)
    assert backend.name == "bedrock+local"
    assert isinstance(backend.backend_of("knowledge-rag"), BedrockBackend)
    for agent in set(ALL_AGENTS) - {"knowledge-rag"}:
        assert isinstance(backend.backend_of(agent), LocalBackend)
        assert backend.model_of(agent) == "local-analyst"
    assert backend.version_of("knowledge-rag") == "bedrock/1.1.0"


def test_an_agent_on_bedrock_without_its_agent_id_is_a_config_error(tmp_path: Path) -> None:
    env = {"OPX_AGENT_BACKEND": "bedrock", **_refs(*ALL_AGENTS[:4])}
    with pytest.raises(ConfigError) as caught:
        make_backend(load_settings(env, tmp_path))
    message = str(caught.value)
    assert "\n" not in message
    for agent in ALL_AGENTS[4:]:
        assert f"OPX_BEDROCK_AGENT_{agent.upper().replace('-', '_')}" in message
    for agent in ALL_AGENTS[:4]:
        assert f"OPX_BEDROCK_AGENT_{agent.upper().replace('-', '_')}" not in message


def test_an_agent_id_for_a_local_agent_is_not_needed_and_not_used(tmp_path: Path) -> None:
    env = {"OPX_AGENT_BACKEND_SIGNAL_INTELLIGENCE": "local", **_refs("signal-intelligence")}
    assert isinstance(make_backend(load_settings(env, tmp_path)), LocalBackend)


def test_the_declared_bedrock_model_prices_the_budget_check_before_any_call(
    tmp_path: Path,
) -> None:
    profile = "us.anthropic.claude-3-5-sonnet-20241022-v2:0"
    env = {"OPX_AGENT_BACKEND": "bedrock", "OPX_BEDROCK_MODEL": profile, **_refs(*ALL_AGENTS)}
    backend = make_backend(load_settings(env, tmp_path))
    assert {backend.model_of(a) for a in ALL_AGENTS} == {profile}
    price = load_pricing().price(profile)
    assert price is not None and price.input_per_1k > 0
    with pytest.raises(OpxError):
        backend.model_of("no-such-agent")
