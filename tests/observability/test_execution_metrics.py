"""Every metric, with its unit and its exact dimension set, parsed from the handler's EMF output
for a completed, a partial and a failed execution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opx.agents.roster import ALL_AGENTS, HISTORICAL, RISK
from opx.domain.errors import ErrorCode
from opx.observability.metrics import ALL_METRICS, BY_NAME, REPLAY_COUNT
from tests.runtime.builders import ScriptedBackend
from tests.runtime.handler_builders import Harness, emitted, incident_event

EXECUTION_METRICS = {m.name for m in ALL_METRICS} - {REPLAY_COUNT.name}


def check_every_metric(text: str, status: str, namespace: str = "Phase6") -> dict[str, Any]:
    metrics = emitted(text)
    assert {m.name for m in metrics} == EXECUTION_METRICS
    for m in metrics:
        definition = BY_NAME[m.name]
        assert m.unit == definition.unit, m
        assert tuple(m.dimensions) == definition.dimensions, m
        assert m.namespace == namespace
        assert "service" not in m.dimensions
    (count,) = [m for m in metrics if m.name == "Execution/Count"]
    assert count.dimensions == {"Status": status} and count.value == 1
    rates = {m.dimensions["AgentId"]: m.value for m in metrics if m.name == "Agent/FailureRate"}
    durations = [m for m in metrics if m.name == "Agent/DurationMs"]
    assert set(rates) == set(ALL_AGENTS) and len(durations) == len(ALL_AGENTS)
    assert all(d.value >= 0 for d in durations)
    return {"rates": rates, "metrics": metrics}


def test_a_completed_execution(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    assert harness.run(incident_event())["status"] == "COMPLETED"
    found = check_every_metric(harness.out.getvalue(), "COMPLETED")
    assert set(found["rates"].values()) == {0.0}
    retries = [m.value for m in found["metrics"] if m.name == "Execution/Retries"]
    assert retries == [0]


def test_a_partial_execution_reports_failed_agents_and_retries(tmp_path: Path) -> None:
    scripts = {
        RISK: [(ErrorCode.BEDROCK_MODEL_ERROR, False)],
        HISTORICAL: [ErrorCode.RATE_LIMIT_EXCEEDED, "ok"],
    }
    harness = Harness(tmp_path, backend=ScriptedBackend(scripts=scripts))
    assert harness.run(incident_event())["status"] == "COMPLETED"
    found = check_every_metric(harness.out.getvalue(), "COMPLETED")
    assert found["rates"][RISK] == 100.0 and found["rates"][HISTORICAL] == 0.0
    retries = [m.value for m in found["metrics"] if m.name == "Execution/Retries"]
    assert retries == [1]


def test_a_failed_execution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("no consensus")

    monkeypatch.setattr("opx.graph.build.build_consensus", broken)
    harness = Harness(tmp_path, env={"OPX_METRICS_NAMESPACE": "OpxTest"})
    assert harness.run(incident_event())["status"] == "FAILED"
    check_every_metric(harness.out.getvalue(), "FAILED", namespace="OpxTest")


def test_a_redelivery_counts_the_execution_but_not_its_agents_again(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.run(incident_event())
    harness.run(incident_event())
    names = sorted(m.name for m in emitted(harness.out.getvalue()))
    assert names == ["Execution/Count", "Execution/DurationMs"]


def test_powertools_service_name_adds_no_dimension(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "opx-executor")
    harness = Harness(tmp_path)
    harness.run(incident_event())
    check_every_metric(harness.out.getvalue(), "COMPLETED")
