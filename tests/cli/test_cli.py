"""The opx command as a user runs it: stdout, stderr, exit codes, nothing written on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "dynamodb-throttling"


def opx(
    *args: str, data_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "AWS_EC2_METADATA_DISABLED": "true",
        "OPX_DATA_DIR": str(data_dir),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "opx.cli", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=False,
    )


def envelope(detail: Mapping[str, object]) -> str:
    return json.dumps(
        {"source": "opx.incident", "detail-type": "IncidentCreated", "detail": detail}
    )


GOOD_DETAIL = {
    "incident_id": "INC-9",
    "service": "svc",
    "severity": "SEV3",
    "window_start": "2026-10-01T10:00:00Z",
    "window_end": "2026-10-01T10:30:00Z",
    "evidence_bundle": {"evidence_id": "ev-9"},
}
BAD_EVENTS = {
    "missing_id": envelope({k: v for k, v in GOOD_DETAIL.items() if k != "incident_id"}),
    "bad_time": envelope({**GOOD_DETAIL, "window_start": "not-a-time"}),
    "wrong_type": envelope({**GOOD_DETAIL, "severity": 3}),
    "not_json": "{ this is not json",
    "empty": "",
    "bare_detail": json.dumps(GOOD_DETAIL),
    "deep": "[" * 10000 + "]" * 10000,
}


@pytest.mark.parametrize("name", sorted(BAD_EVENTS))
def test_bad_events_give_one_line_and_exit_2(name: str, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(BAD_EVENTS[name])
    (tmp_path / "bundle").mkdir()
    data_dir = tmp_path / "data"
    done = opx("analyze", str(event), "--json", data_dir=data_dir)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("opx: "), done.stderr
    assert "Traceback" not in done.stderr
    assert not data_dir.exists()  # nothing written


def test_missing_event_file_and_bundle_are_rejected(tmp_path: Path) -> None:
    done = opx("analyze", str(tmp_path / "nope.json"), data_dir=tmp_path / "d")
    assert done.returncode == 2 and "not found" in done.stderr
    event = tmp_path / "e.json"
    event.write_text(envelope(GOOD_DETAIL))
    done = opx("analyze", str(event), data_dir=tmp_path / "d")
    assert done.returncode == 2 and "bundle" in done.stderr


def test_analyze_json_then_list_and_show(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    done = opx("analyze", str(EXAMPLE / "event.json"), "--json", data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # stdout is only the JSON document
    execution_id = result["execution_id"]
    listed = opx("executions", "list", "--json", data_dir=data_dir)
    assert [e["execution_id"] for e in json.loads(listed.stdout)] == [execution_id]
    shown = opx("executions", "show", execution_id, "--json", data_dir=data_dir)
    assert json.loads(shown.stdout) == result
    human = opx("executions", "show", execution_id, data_dir=data_dir)
    assert human.returncode == 0 and "Status:" in human.stdout


def test_unknown_execution_id_exits_2(tmp_path: Path) -> None:
    done = opx("executions", "show", "0" * 32, data_dir=tmp_path)
    assert done.returncode == 2 and "unknown execution id" in done.stderr


def test_unusable_data_dir_is_an_infrastructure_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = opx("analyze", str(EXAMPLE / "event.json"), data_dir=blocker / "sub")
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("which", ["event", "result"])
def test_schema_prints_json_schema(which: str, tmp_path: Path) -> None:
    done = opx("schema", which, data_dir=tmp_path)
    assert done.returncode == 0
    schema = json.loads(done.stdout)
    assert "$defs" in schema or "properties" in schema or "anyOf" in schema


def test_unknown_schema_exits_2(tmp_path: Path) -> None:
    assert opx("schema", "nope", data_dir=tmp_path).returncode == 2


def test_alarm_back_to_ok_is_skipped_and_not_stored(tmp_path: Path) -> None:
    event = json.loads((EXAMPLE / "event.json").read_text())
    event["detail"]["state"]["value"] = "OK"
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(event))
    (tmp_path / "bundle").mkdir()
    done = opx("analyze", str(path), "--json", data_dir=tmp_path / "data")
    assert done.returncode == 0
    assert (json.loads(done.stdout)["status"], json.loads(done.stdout)["reason"]) == (
        "SKIPPED",
        "ALARM_NOT_FIRING",
    )
    assert not (tmp_path / "data").exists()
