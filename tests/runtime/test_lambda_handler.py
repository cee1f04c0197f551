"""The Lambda handler: response, rejection, kill switch, deadline, infrastructure failures."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opx.agents.roster import ALL_AGENTS, CHANGE, CORE_AGENTS, SIGNAL
from opx.cli import app
from opx.delivery.publisher import DeliveryFailed, open_publisher
from opx.domain.hypothesis import HypothesisStatus
from opx.durability.sqlite_store import SqliteExecutionStore
from opx.graph.build import GraphDeps
from opx.observability.metrics import EXECUTION_STATUSES
from opx.runtime.failure_handler import DeadlineReached, InfrastructureFailure
from opx.runtime.killswitch import LocalKillSwitch
from opx.runtime.response import RESPONSE_KEYS
from tests.runtime.handler_builders import (
    Emitted,
    GatedBackend,
    Harness,
    emitted,
    incident_event,
)


def stored(data_dir: Path) -> list[tuple[str, str]]:
    path = data_dir / "executions.sqlite"
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return list(db.execute("SELECT execution_id, status FROM executions"))


def test_a_completed_execution_answers_with_the_structured_response(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    response = harness.run(incident_event())
    assert tuple(response) == RESPONSE_KEYS
    assert response["status"] == "COMPLETED"
    assert response["reason"] == "ROOT_CAUSE_IDENTIFIED"
    assert response["incident_id"] == "INC-7" and len(response["execution_id"]) == 32
    assert response["recommendation"]["root_cause"]["service"] == "db"
    assert response["cost"]["budget_usd"] == 5.0 and response["error"] is None
    assert "db" in response["summary"]
    assert stored(tmp_path) == [(response["execution_id"], "COMPLETED")]


def test_a_redelivery_returns_the_stored_result_without_running_agents(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    first = harness.run(incident_event())
    second = harness.run(incident_event())
    assert second == first
    assert harness.backend.calls == dict.fromkeys(ALL_AGENTS, 1)


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ({}, "SCHEMA_VALIDATION_FAILED"),
        ([], "INVALID_INPUT"),
        (None, "INVALID_INPUT"),
        ("not json", "INVALID_INPUT"),
        ({"source": "opx.incident", "detail-type": "IncidentCreated"}, "MISSING_REQUIRED_FIELD"),
        ({"source": "opx.incident", "detail-type": "IncidentCreated", "detail": {1: {2}}}, None),
    ],
)
def test_a_rejected_event_is_answered_and_nothing_is_written(
    tmp_path: Path, event: object, code: str | None
) -> None:
    harness = Harness(tmp_path)
    response = harness.run(event)
    assert response["status"] == "REJECTED" and response["reason"] == "INVALID_EVENT"
    assert response["execution_id"] is None and response["recommendation"] is None
    assert response["error"]["message"]
    if code is not None:
        assert response["error"]["code"] == code
    assert not (tmp_path / "executions.sqlite").exists()
    assert not (tmp_path / "checkpoints.sqlite").exists()
    assert sum(harness.backend.calls.values()) == 0
    (count,) = [m for m in emitted(harness.out.getvalue()) if m.name == "Execution/Count"]
    assert count.dimensions == {"Status": "REJECTED"} and count.value == 1


def test_an_alarm_that_is_not_firing_is_skipped_without_analysis(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    event = {
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:front-5xx"],
        "detail": {
            "alarmName": "front-5xx",
            "state": {"value": "OK", "reason": "fine", "timestamp": "2026-10-01T10:30:00Z"},
            "configuration": {"metrics": []},
        },
    }
    response = harness.run(event)
    assert (response["status"], response["reason"]) == ("SKIPPED", "ALARM_NOT_FIRING")
    assert stored(tmp_path) == []


def test_the_global_kill_switch_skips_the_execution_and_stores_nothing(tmp_path: Path) -> None:
    harness = Harness(tmp_path, kill_switch=LocalKillSwitch(frozenset({"all"})))
    response = harness.run(incident_event())
    assert (response["status"], response["reason"]) == ("SKIPPED", "KILL_SWITCH")
    assert response["execution_id"] and response["error"] is None
    assert sum(harness.backend.calls.values()) == 0 and stored(tmp_path) == []
    # SKIPPED is never a final result: once the switch is off, the same event runs normally.
    harness.kill_switch = LocalKillSwitch(frozenset())
    again = harness.run(incident_event())
    assert again["status"] == "COMPLETED" and again["execution_id"] == response["execution_id"]


def test_the_kill_switch_from_the_environment(tmp_path: Path) -> None:
    harness = Harness(tmp_path, env={"OPX_KILL_SWITCH": "all"})
    assert harness.run(incident_event())["reason"] == "KILL_SWITCH"


def test_a_killed_agent_is_skipped_without_being_called(tmp_path: Path) -> None:
    harness = Harness(tmp_path, kill_switch=LocalKillSwitch(frozenset({CHANGE})))
    response = harness.run(incident_event())
    assert response["status"] == "COMPLETED"
    assert CHANGE not in harness.backend.calls
    record = SqliteExecutionStore(tmp_path / "executions.sqlite").get(response["execution_id"])
    assert record is not None and record.result is not None
    skipped = record.result.hypotheses[CHANGE]
    assert skipped.status is HypothesisStatus.SKIPPED
    assert skipped.findings["reason"] == "KILL_SWITCH"
    consensus = record.result.consensus
    assert consensus is not None and CHANGE not in consensus.participating_agents
    trace = [t for t in record.result.execution_trace if t.node == CHANGE]
    assert [(t.status, t.detail) for t in trace] == [("SKIPPED", "KILL_SWITCH")]
    agents = {m.dimensions.get("AgentId") for m in emitted(harness.out.getvalue())}
    assert CHANGE not in agents and SIGNAL in agents


def test_the_deadline_leaves_the_execution_incomplete_and_the_retry_resumes_it(
    tmp_path: Path,
) -> None:
    backend = GatedBackend({CHANGE})
    harness = Harness(tmp_path, backend=backend)
    with pytest.raises(DeadlineReached):
        harness.run(incident_event(), remaining_ms=400)
    ((execution_id, status),) = stored(tmp_path)
    assert status == "INCOMPLETE"
    counts = [m for m in emitted(harness.out.getvalue()) if m.name == "Execution/Count"]
    assert [c.dimensions for c in counts] == [{"Status": "INCOMPLETE"}]
    finished_first = {a for a in CORE_AGENTS if a != CHANGE}
    assert all(backend.calls[a] == 1 for a in finished_first)

    backend.open = True
    response = harness.run(incident_event())
    assert response["status"] == "COMPLETED" and response["execution_id"] == execution_id
    # The agents that had finished were not run again; only the interrupted one was.
    assert all(backend.calls[a] == 1 for a in finished_first)
    assert backend.calls[CHANGE] == 2
    assert stored(tmp_path) == [(execution_id, "COMPLETED")]


def test_no_time_left_at_all_raises_for_a_retry_without_claiming(tmp_path: Path) -> None:
    harness = Harness(tmp_path, settings_overrides={"deadline_margin_s": 20.0})
    with pytest.raises(DeadlineReached):
        harness.run(incident_event(), remaining_ms=5_000)
    assert stored(tmp_path) == [] and sum(harness.backend.calls.values()) == 0


def test_an_unreachable_store_is_raised_for_lambda_to_retry(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    harness = Harness(blocker / "data")
    with pytest.raises(InfrastructureFailure) as caught:
        harness.run(incident_event())
    assert caught.value.code.value == "DATA_SOURCE_UNAVAILABLE"
    counts = [m for m in emitted(harness.out.getvalue()) if m.name == "Execution/Count"]
    assert [c.dimensions for c in counts] == [{"Status": "ERROR"}]


def counts_of(harness: Harness) -> list[Emitted]:
    """The Execution/Count lines of the last invocation; each Status must be a published one."""
    counts = [m for m in emitted(harness.out.getvalue()) if m.name == "Execution/Count"]
    assert all(c.dimensions["Status"] in EXECUTION_STATUSES for c in counts), counts
    return counts


def test_a_failed_delivery_counts_one_error_and_the_agents_that_ran(
    tmp_path: Path, moto_endpoint: str
) -> None:
    harness = Harness(tmp_path)
    missing_bus = open_publisher("no-such-bus", None, endpoint_url=moto_endpoint)
    with pytest.raises(InfrastructureFailure) as caught:
        harness.run(incident_event(), publish=True, publisher=missing_bus)
    assert isinstance(caught.value.__cause__, DeliveryFailed)
    # One invocation, one count: ERROR (Lambda retries it), not COMPLETED as well.
    assert [(c.dimensions, c.value) for c in counts_of(harness)] == [({"Status": "ERROR"}, 1)]
    names = [m.name for m in emitted(harness.out.getvalue())]
    assert names.count("Execution/DurationMs") == 1 and names.count("Cost/TotalUSD") == 1
    assert names.count("Agent/FailureRate") == len(ALL_AGENTS)  # the agents did run
    # The retry answers from the stored result and counts it, once, as COMPLETED.
    assert harness.run(incident_event())["status"] == "COMPLETED"
    assert [c.dimensions for c in counts_of(harness)] == [{"Status": "COMPLETED"}]


def test_an_unexpected_exception_is_counted_once_and_raised_as_is(tmp_path: Path) -> None:
    def broken(deps: GraphDeps) -> GraphDeps:
        raise RuntimeError("a bug")

    harness = Harness(tmp_path)
    with pytest.raises(RuntimeError, match="a bug"):
        harness.run(incident_event(), customize=broken)
    assert [(c.dimensions, c.value) for c in counts_of(harness)] == [({"Status": "ERROR"}, 1)]
    assert '"unexpected failure"' in harness.out.getvalue()


@pytest.mark.parametrize(
    ("event", "status"),
    [(incident_event(), "COMPLETED"), ({}, "REJECTED")],
)
def test_every_answer_counts_exactly_once(tmp_path: Path, event: object, status: str) -> None:
    harness = Harness(tmp_path)
    harness.run(event)
    assert [(c.dimensions, c.value) for c in counts_of(harness)] == [({"Status": status}, 1)]


def test_an_execution_with_a_killed_agent_replays_identically(tmp_path: Path) -> None:
    harness = Harness(tmp_path, kill_switch=LocalKillSwitch(frozenset({CHANGE})))
    response = harness.run(incident_event())
    done = CliRunner().invoke(
        app, ["replay", response["execution_id"], "--json", "--data-dir", str(tmp_path)]
    )
    assert done.exit_code == 0, done.output
