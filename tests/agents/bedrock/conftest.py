"""Fixtures: the fake Bedrock Agents runtime on 127.0.0.1, the bad-deployment example as an agent
context, and a Bedrock backend pointed at the fake."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from opx.agents.analysts import local_analysts
from opx.agents.backend import LocalBackend, ReasoningBackend
from opx.agents.base import AgentContext, Analyst
from opx.agents.bedrock.backend import BedrockBackend
from opx.agents.bedrock.client import make_client
from opx.agents.roster import ALL_AGENTS
from opx.config import BedrockAgentRef
from opx.runtime.intake import Accepted, parse_event
from opx.tools.bundle import load_bundle
from tests.agents.bedrock.fake_agent import FakeAgent, running

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "bad-deployment"
EXECUTION = "0123456789abcdef0123456789abcdef"
REFS = {
    agent: BedrockAgentRef(f"AGENT{i:05d}", f"ALIAS{i:05d}") for i, agent in enumerate(ALL_AGENTS)
}

BackendFactory = Callable[..., BedrockBackend]


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeAgent]:
    with running() as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeAgent) -> Iterator[FakeAgent]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture(scope="session")
def ctx() -> AgentContext:
    accepted = parse_event(json.loads((EXAMPLE / "event.json").read_text()))
    assert isinstance(accepted, Accepted)
    return AgentContext(
        incident=accepted.incident, tools=load_bundle(EXAMPLE / "bundle"), execution_id=EXECUTION
    )


@pytest.fixture
def make_backend(fake: FakeAgent) -> BackendFactory:
    def build(
        analysts: Mapping[str, Analyst] | None = None, read_timeout_s: float = 5.0
    ) -> BedrockBackend:
        local: ReasoningBackend = LocalBackend(analysts or local_analysts())
        return BedrockBackend(
            REFS, local, client_factory=lambda: make_client(read_timeout_s, endpoint_url=fake.url)
        )

    return build
