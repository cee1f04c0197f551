"""The failure matrix: each handled failure is answered (never raised) as the plan says."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from opx.agents.roster import ALL_AGENTS, CHANGE, HISTORICAL, RISK, SIGNAL
from opx.config import load_settings
from opx.domain.errors import ErrorCode
from opx.domain.hypothesis import HypothesisStatus
from opx.domain.result import ExecutionResult
from opx.domain.tool_result import ToolResult
from opx.durability.sqlite_store import SqliteExecutionStore
from opx.runtime.lambda_handler import Invocation, invoke
from opx.tools.bundle import load_bundle
from tests.runtime.builders import PRICED_MODEL, ScriptedBackend
from tests.runtime.handler_builders import Harness, incident_event

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "bad-deployment"


def result_of(data_dir: Path, response: dict[str, Any]) -> ExecutionResult:
    record = SqliteExecutionStore(data_dir / "executions.sqlite").get(response["execution_id"])
    assert record is not None and record.result is not None
    return record.result


def test_agent_timeout_gives_timeout_with_zero_confidence(tmp_path: Path) -> None:
    backend = ScriptedBackend(scripts={RISK: ["hang"]})
    harness = Harness(tmp_path, backend=backend, env={"OPX_DEADLINE_RISK_BLAST_RADIUS_S": "0.05"})
    response = harness.run(incident_event())
    assert response["status"] == "COMPLETED" and response["error"] is None
    risk = result_of(tmp_path, response).hypotheses[RISK]
    assert risk.status is HypothesisStatus.TIMEOUT and risk.confidence == 0.0
    assert risk.error is not None and risk.error.code is ErrorCode.TIMEOUT


class FailingGraphTools:
    """Bundle telemetry whose service-graph action group fails."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_service_graph(self, next_token: str | None = None) -> ToolResult:
        return ToolResult.failed("bundle", ErrorCode.DATA_SOURCE_UNAVAILABLE, "graph is down")


def local_run(data_dir: Path, tools: Any) -> ExecutionResult:
    """The example incident through the handler with the real local analysts."""
    event = json.loads((EXAMPLE / "event.json").read_text())
    settings = load_settings({}, data_dir=data_dir)
    invocation = Invocation(settings, out=io.StringIO(), tools=tools, publish=False)
    return result_of(data_dir, invoke(event, None, invocation))


def test_action_group_failure_gives_partial_with_reduced_confidence(tmp_path: Path) -> None:
    bundle = load_bundle(EXAMPLE / "bundle")
    healthy = local_run(tmp_path / "healthy", bundle)
    degraded = local_run(tmp_path / "degraded", FailingGraphTools(bundle))
    before, after = healthy.hypotheses[CHANGE], degraded.hypotheses[CHANGE]
    assert before.status is HypothesisStatus.SUCCESS
    assert after.status is HypothesisStatus.PARTIAL
    assert after.root_cause == before.root_cause
    assert 0.0 < after.confidence < before.confidence
    # The graph gap weakens other agents too; the execution is still answered, not failed.
    assert healthy.status.value == "COMPLETED"
    assert degraded.status.value in ("COMPLETED", "NO_RECOMMENDATION")


def test_bedrock_throttling_is_retried_with_backoff_in_trace_and_attempts(tmp_path: Path) -> None:
    throttled = [ErrorCode.BEDROCK_THROTTLING, ErrorCode.BEDROCK_THROTTLING, "ok"]
    backend = ScriptedBackend(scripts={SIGNAL: throttled})
    harness = Harness(tmp_path, backend=backend, settings_overrides={"retry_base_delay_s": 1.0})
    response = harness.run(incident_event())
    assert response["status"] == "COMPLETED"
    result = result_of(tmp_path, response)
    signal = result.hypotheses[SIGNAL]
    assert signal.status is HypothesisStatus.SUCCESS
    assert [(a.attempt, a.status.value) for a in signal.attempts] == [
        (1, "FAILURE"),
        (2, "FAILURE"),
        (3, "SUCCESS"),
    ]
    codes = [a.error.code for a in signal.attempts if a.error is not None]
    assert codes == [ErrorCode.BEDROCK_THROTTLING] * 2
    trace = [(t.attempt, t.status, t.detail) for t in result.execution_trace if t.node == SIGNAL]
    assert trace == [
        (1, "FAILURE", "BEDROCK_THROTTLING"),
        (2, "FAILURE", "BEDROCK_THROTTLING"),
        (3, "SUCCESS", None),
    ]
    # Exponential backoff with ±20 % jitter: about 1 s, then about 2 s.
    assert len(harness.sleeps) == 2
    assert 0.8 <= harness.sleeps[0] <= 1.2 and 1.6 <= harness.sleeps[1] <= 2.4


def test_budget_exceeded_is_a_signal_and_the_execution_completes(tmp_path: Path) -> None:
    backend = ScriptedBackend(model=PRICED_MODEL, tokens=(200_000, 50_000))
    harness = Harness(tmp_path, backend=backend)
    response = harness.run(incident_event(budget_usd=0.01))
    assert response["status"] == "COMPLETED" and response["error"] is None
    assert response["cost"]["budget_exceeded"] is True
    assert response["cost"]["total_usd"] > 0.01
    result = result_of(tmp_path, response)
    guardian = [t.status for t in result.execution_trace if t.node == "cost_guardian"]
    assert guardian == ["BUDGET_EXCEEDED"]
    assert backend.calls == dict.fromkeys(ALL_AGENTS, 1)


def test_consensus_failure_fails_closed_without_a_recommendation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("weights sum to zero")

    monkeypatch.setattr("opx.graph.build.build_consensus", broken)
    harness = Harness(tmp_path)
    response = harness.run(incident_event())
    assert (response["status"], response["reason"]) == ("FAILED", "INTERNAL_ERROR")
    assert response["recommendation"] is None
    assert response["error"]["code"] == "INTERNAL_ERROR"
    assert "consensus failed" in response["error"]["message"]
    result = result_of(tmp_path, response)
    assert result.consensus is None and len(result.hypotheses) == len(ALL_AGENTS)
    assert [t.status for t in result.execution_trace if t.node == "consensus"] == [
        "CONSENSUS_FAILED"
    ]


def test_every_core_agent_failing_answers_without_raising(tmp_path: Path) -> None:
    fatal = [(ErrorCode.BEDROCK_MODEL_ERROR, False)]
    scripts = dict.fromkeys((SIGNAL, HISTORICAL, CHANGE, RISK), fatal)
    harness = Harness(tmp_path, backend=ScriptedBackend(scripts=scripts))
    response = harness.run(incident_event())
    assert (response["status"], response["reason"]) == (
        "NO_RECOMMENDATION",
        "ALL_CORE_AGENTS_FAILED",
    )
    assert response["error"]["code"] == "INSUFFICIENT_DATA"
