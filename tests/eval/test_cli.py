"""``opx eval petshop`` as a user runs it: on the tiny dataset, and a smoke subset of the real
one when it is beside the repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from opx.cli import app
from tests.eval import builders as b

ROOT = Path(__file__).resolve().parents[2]
REAL_DATA = ROOT.parent / "shared" / "data" / "petshop"
ROW_KEYS = {
    "split",
    "scenario",
    "metric",
    "changes",
    "n",
    "top1",
    "top3",
    "top1_ci",
    "top3_ci",
    "brier",
    "median_seconds",
    "usd_per_case",
}
CASE_KEYS = {"split", "scenario", "issue", "truth", "status", "confidence", "candidates"}


@pytest.fixture(autouse=True)
def short_lookback(monkeypatch: pytest.MonkeyPatch) -> None:
    # The tiny baseline is five hours long; the real data has two days.
    monkeypatch.setenv("OPX_BASELINE_LOOKBACK_HOURS", "2")


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["eval", "petshop", *args])


def check_structure(report: dict[str, Any], issues: int, windows: int) -> None:
    assert {"rows", "specificity", "cases"} <= set(report)
    assert report["rows"]
    for row in report["rows"]:
        assert set(row) >= ROW_KEYS
        assert 0.0 <= row["top1"] <= row["top3"] <= 1.0
        assert row["top1_ci"][0] <= row["top1"] <= row["top1_ci"][1]
    assert any(row["scenario"] == "all" for row in report["rows"])
    assert len(report["cases"]) == issues
    for case in report["cases"]:
        assert set(case) >= CASE_KEYS
        # The full graph ran: the core agents produced opinions.
        assert case["status"] in {"COMPLETED", "NO_RECOMMENDATION"}
        assert case["reason"] != "ALL_CORE_AGENTS_FAILED"
        assert len(case["candidates"]) <= 5
        assert all(set(c) == {"service", "score"} for c in case["candidates"])
    for metrics in report["specificity"].values():
        for entry in metrics.values():
            assert set(entry) == {"n", "no_recommendation_rate", "ci"}
    assert len(report["windows"]) == windows


def test_json_over_a_scenario_folder(tmp_path: Path) -> None:
    data = b.write_dataset(tmp_path / "petshop")
    result = run("--data", str(data / "low_traffic"), "--split", "dev", "--windows", "1", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    check_structure(report, issues=2, windows=2)
    assert {c["truth"] for c in report["cases"]} == {b.UPDATER, b.TABLE}
    assert set(report["specificity"]) == {"low_traffic", "all"}


def test_tables_with_changes_over_the_dataset_root(tmp_path: Path) -> None:
    data = b.write_dataset(tmp_path / "petshop")
    result = run("--data", str(data), "--limit", "1", "--windows", "0", "--with-changes")
    assert result.exit_code == 0, result.output
    assert "PetShop: the true root cause" in result.stdout
    assert "high_traffic" in result.stdout and "low_traffic" in result.stdout
    assert " on " in result.stdout and " off " in result.stdout
    assert "specificity" not in result.stdout


def test_markdown_is_the_readme_table(tmp_path: Path) -> None:
    data = b.write_dataset(tmp_path / "petshop")
    result = run(
        "--data",
        str(data),
        "--scenario",
        "high_traffic",
        "--split",
        "train",
        "--limit",
        "1",
        "--windows",
        "1",
        "--markdown",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("| Split | Scenario | Metric |")
    assert "| train | high_traffic | latency | off | 1 |" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--scenario", "nowhere"], "no scenario 'nowhere'"), (["--split", "test"], "no split")],
)
def test_bad_choices_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    data = b.write_dataset(tmp_path / "petshop")
    result = run("--data", str(data), *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_missing_folder_exits_2(tmp_path: Path) -> None:
    result = run("--data", str(tmp_path / "missing"))
    assert result.exit_code == 2
    assert "dataset folder not found" in result.stderr


@pytest.mark.skipif(
    not REAL_DATA.is_dir(), reason=f"the PetShop data is not beside the repository ({REAL_DATA})"
)
def test_smoke_on_the_real_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two issues and two healthy windows of the real data: structure only, never accuracy."""
    monkeypatch.setenv("OPX_BASELINE_LOOKBACK_HOURS", "24")
    result = run(
        "--data",
        str(REAL_DATA),
        "--scenario",
        "low_traffic",
        "--split",
        "dev",
        "--limit",
        "2",
        "--windows",
        "2",
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    check_structure(report, issues=2, windows=4)
    assert {r["split"] for r in report["rows"]} == {"dev"}
    assert set(report["specificity"]) == {"low_traffic", "all"}
