"""`opx invoke EVENT.json`: the handler's response on stdout, EMF and logs on stderr, exit codes
0 / 2 / 3, and a REJECTED response for any file that is not an event."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli.test_cli import EXAMPLE, opx
from tests.runtime.handler_builders import emitted

KEYS = [
    "status",
    "reason",
    "incident_id",
    "execution_id",
    "recommendation",
    "cost",
    "summary",
    "error",
]


def test_the_example_is_answered_like_lambda_would(tmp_path: Path) -> None:
    done = opx("invoke", str(EXAMPLE / "event.json"), data_dir=tmp_path / "d")
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout)
    assert list(response) == KEYS and response["status"] == "COMPLETED"
    assert response["recommendation"]["root_cause"]["service"]
    names = {m.name for m in emitted(done.stderr)}
    assert {"Execution/Count", "Execution/DurationMs", "Agent/FailureRate"} <= names
    logs = [json.loads(line) for line in done.stderr.splitlines() if '"level"' in line]
    assert any(entry["correlation_id"] == response["execution_id"] for entry in logs)
    again = opx("invoke", str(EXAMPLE / "event.json"), data_dir=tmp_path / "d")
    assert json.loads(again.stdout) == response


@pytest.mark.parametrize("content", [b"", b"   \n", b"{ not json", b"\xff\xfe\x00", b"[1, 2]"])
def test_files_that_are_not_events_get_a_rejected_response(tmp_path: Path, content: bytes) -> None:
    event = tmp_path / "event.json"
    event.write_bytes(content)
    done = opx("invoke", str(event), data_dir=tmp_path / "d")
    assert done.returncode == 2
    response = json.loads(done.stdout)
    assert response["status"] == "REJECTED" and response["error"]["code"] == "INVALID_INPUT"
    assert not (tmp_path / "d").exists()


def test_a_missing_or_unreadable_file_gets_a_rejected_response(tmp_path: Path) -> None:
    missing = opx("invoke", str(tmp_path / "nope.json"), data_dir=tmp_path / "d")
    assert missing.returncode == 2
    assert "not found" in json.loads(missing.stdout)["error"]["message"]
    directory = opx("invoke", str(tmp_path), data_dir=tmp_path / "d")
    assert directory.returncode == 2 and json.loads(directory.stdout)["status"] == "REJECTED"


def test_the_deadline_exits_3_and_the_next_invocation_completes(tmp_path: Path) -> None:
    example = tmp_path / "example"
    shutil.copytree(EXAMPLE, example)
    env = {"OPX_DEADLINE_MARGIN_S": "0"}
    short = opx(
        "invoke",
        str(example / "event.json"),
        "--timeout",
        "0.001",
        data_dir=tmp_path / "d",
        env=env,
    )
    assert short.returncode == 3 and short.stdout == ""
    assert "DeadlineReached" in short.stderr
    full = opx("invoke", str(example / "event.json"), data_dir=tmp_path / "d", env=env)
    assert full.returncode == 0 and json.loads(full.stdout)["status"] == "COMPLETED"


def test_an_unusable_store_exits_3(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = opx("invoke", str(EXAMPLE / "event.json"), data_dir=blocker / "d")
    assert done.returncode == 3 and done.stdout == ""
    assert "InfrastructureFailure" in done.stderr
