"""All six agents on the fake Bedrock runtime, through the real CLI: non-zero tokens, a USD total
equal to the sum of the per-attempt costs, and a replay that reproduces it with zero calls."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from opx.agents.roster import ALL_AGENTS
from opx.reasoning.pricing import load_pricing
from tests.agents.bedrock.conftest import EXAMPLE, REFS
from tests.agents.bedrock.fake_agent import MODEL, FakeAgent
from tests.cli.test_cli import opx


def bedrock_env(fake: FakeAgent) -> dict[str, str]:
    env = {
        "OPX_AGENT_BACKEND": "bedrock",
        "AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME": fake.url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for agent, ref in REFS.items():
        env[f"OPX_BEDROCK_AGENT_{agent.upper().replace('-', '_')}"] = (
            f"{ref.agent_id}/{ref.alias_id}"
        )
    return env


@pytest.fixture
def analysed(fake: FakeAgent, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    data_dir = tmp_path / "data"
    done = opx(
        "analyze", str(EXAMPLE / "event.json"), "--json", data_dir=data_dir, env=bedrock_env(fake)
    )
    assert done.returncode == 0, done.stderr
    return data_dir, json.loads(done.stdout)


def test_analyze_on_bedrock_reports_real_tokens_and_their_price(
    fake: FakeAgent, analysed: tuple[Path, dict[str, Any]]
) -> None:
    _, result = analysed
    assert result["status"] == "COMPLETED"
    assert {r.agent_id for r in fake.requests} == {ref.agent_id for ref in REFS.values()}
    assert len(fake.requests) == len(ALL_AGENTS)
    cost = result["cost"]
    assert cost["input_tokens"] > 0 and cost["output_tokens"] > 0
    assert not cost["cost_unknown"]
    attempts = [a for agent in cost["per_agent"].values() for a in agent["attempts"]]
    assert len(attempts) == len(ALL_AGENTS)
    assert {a["model"] for a in attempts} == {MODEL}
    assert cost["total_usd"] == pytest.approx(math.fsum(a["usd"] for a in attempts), abs=1e-8)
    price = load_pricing().price(MODEL)
    assert price is not None
    expected = math.fsum(
        a["input_tokens"] / 1000 * price.input_per_1k
        + a["output_tokens"] / 1000 * price.output_per_1k
        for a in attempts
    )
    assert cost["total_usd"] == pytest.approx(expected, abs=1e-8) and cost["total_usd"] > 0
    for agent, hypothesis in result["hypotheses"].items():
        assert hypothesis["agent_version"] == "bedrock/1.1.0", agent
        assert hypothesis["error"] is None, (agent, hypothesis["error"])


def test_replay_reproduces_the_figures_with_zero_calls(
    fake: FakeAgent, analysed: tuple[Path, dict[str, Any]]
) -> None:
    data_dir, result = analysed
    calls = len(fake.requests)
    done = opx("replay", result["execution_id"], "--json", data_dir=data_dir, env=bedrock_env(fake))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["identical"] is True and report["differences"] == []
    assert report["external_calls"] == 0
    assert len(fake.requests) == calls
    shown = opx("executions", "show", result["execution_id"], "--json", data_dir=data_dir)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["cost"] == result["cost"]


def test_a_forced_run_does_not_continue_the_earlier_conversations(
    fake: FakeAgent, analysed: tuple[Path, dict[str, Any]]
) -> None:
    data_dir, result = analysed
    earlier = {r.session_id for r in fake.requests}
    done = opx(
        "analyze",
        str(EXAMPLE / "event.json"),
        "--force",
        "--json",
        data_dir=data_dir,
        env=bedrock_env(fake),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["execution_id"] == result["execution_id"]
    later = {r.session_id for r in fake.requests} - earlier
    assert len(later) == len(ALL_AGENTS)
    assert all("-r2-" in session for session in later)
