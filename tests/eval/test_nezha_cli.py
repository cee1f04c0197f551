"""``opx eval nezha`` as a user runs it, on the tiny hand-made sample (full graph per fault)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from opx.cli import app
from tests.eval.test_nezha_data import build_sample

ROW_KEYS = {
    "fault_type",
    "n",
    "as1",
    "as3",
    "as5",
    "as1_ci",
    "as3_ci",
    "as5_ci",
    "brier",
    "median_seconds",
}
CASE_KEYS = {"fault_id", "fault_type", "truth", "status", "confidence", "candidates"}


def test_json_report_has_rows_agents_and_cases(tmp_path: Path) -> None:
    data = build_sample(tmp_path / "data")
    result = CliRunner().invoke(app, ["eval", "nezha", "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == {"rows", "agents", "cases"}
    rows = {r["fault_type"]: r for r in payload["rows"]}
    assert set(rows) == {"exception", "network_delay", "all"}
    assert all(set(r) == ROW_KEYS for r in payload["rows"])
    assert rows["all"]["n"] == 2
    assert rows["all"]["as1"] <= rows["all"]["as3"] <= rows["all"]["as5"]
    assert [c["fault_id"] for c in payload["cases"]] == [
        "2023-01-29/08:50:00",
        "2023-01-29/09:00:00",
    ]
    for case in payload["cases"]:
        assert set(case) == CASE_KEYS
        assert case["truth"] == "ts-basic-service"
        assert len(case["candidates"]) <= 5
    assert "signal-intelligence" in payload["agents"]
    assert set(payload["agents"]["signal-intelligence"]) == {"exception", "network_delay", "all"}


def test_table_and_filters(tmp_path: Path) -> None:
    data = build_sample(tmp_path / "data")
    result = CliRunner().invoke(
        app, ["eval", "nezha", "--data", str(data), "--fault-type", "exception"]
    )
    assert result.exit_code == 0, result.output
    assert "AS@1" in result.stdout and "published: Nezha" in result.stdout
    assert "network_delay" not in result.stdout


def test_bad_dataset_exits_2_with_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "nezha", "--data", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "dataset not found" in result.output
    assert "Traceback" not in result.output
