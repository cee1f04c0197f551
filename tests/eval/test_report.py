"""The report: the JSON object's shape and the Markdown table."""

from __future__ import annotations

from typing import Any

from opx.eval.report import BASELINES, CANDIDATES_SHOWN, markdown, report_json
from opx.eval.scoring import CaseKey, CaseOutcome, accuracy_rows, specificity_rows

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


def outcome(
    name: str, *, healthy: bool = False, changes: bool = False, metric: str = "latency"
) -> CaseOutcome:
    ranked = tuple((f"svc-{i}", 0.9 - i / 10) for i in range(7))
    return CaseOutcome(
        key=CaseKey("healthy" if healthy else "dev", "low", name, metric, changes, healthy),
        truth=None if healthy else "svc-1",
        status="NO_RECOMMENDATION" if healthy else "COMPLETED",
        reason="NO_CONFIDENT_ROOT_CAUSE" if healthy else "ROOT_CAUSE_IDENTIFIED",
        confidence=0.123456,
        candidates=() if healthy else ranked,
        seconds=1.5,
        usd=0.0,
        graph_nodes=42,
    )


def build(outcomes: list[CaseOutcome]) -> dict[str, Any]:
    return report_json(accuracy_rows(outcomes), specificity_rows(outcomes), outcomes)


def test_json_has_rows_specificity_and_cases() -> None:
    outcomes = [
        outcome("issue_1"),
        outcome("issue_2", metric="availability"),
        outcome("window_3", healthy=True),
    ]
    report = build(outcomes)
    assert set(report) == {"rows", "specificity", "cases", "windows"}
    rows = report["rows"]
    assert isinstance(rows, list) and len(rows) == 4
    for row in rows:
        assert set(row) >= ROW_KEYS
        assert len(row["top1_ci"]) == 2
    assert {r["scenario"] for r in rows} == {"low", "all"}
    latency = next(r for r in rows if r["metric"] == "latency")
    assert latency["top1"] == 0.0 and latency["top3"] == 1.0
    assert latency["baselines_top1"] == BASELINES["latency"]
    spec = report["specificity"]
    assert spec == {
        "low": {"latency": {"n": 1, "no_recommendation_rate": 1.0, "ci": [0.2065, 1.0]}},
        "all": {"latency": {"n": 1, "no_recommendation_rate": 1.0, "ci": [0.2065, 1.0]}},
    }
    cases = report["cases"]
    assert isinstance(cases, list) and len(cases) == 2
    first = cases[0]
    assert set(first) >= CASE_KEYS
    assert first["issue"] == "issue_1" and first["truth"] == "svc-1"
    assert first["confidence"] == 0.1235
    assert len(first["candidates"]) == CANDIDATES_SHOWN
    assert first["candidates"][0] == {"service": "svc-0", "score": 0.9}


def test_change_runs_get_their_own_specificity() -> None:
    outcomes = [
        outcome("issue_1"),
        outcome("issue_1", changes=True),
        outcome("window_3", healthy=True),
        outcome("window_3", healthy=True, changes=True),
    ]
    report = build(outcomes)
    assert report["specificity_with_changes"] == report["specificity"]
    assert [r["changes"] for r in report["rows"]] == [False, False, True, True]


def test_markdown_has_one_line_per_row() -> None:
    outcomes = [outcome("issue_1"), outcome("window_3", healthy=True)]
    text = markdown(accuracy_rows(outcomes), specificity_rows(outcomes))
    table_lines = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table_lines) == 2 + 2 + 2 + 2  # header + rule, two rows, for each table
    assert "| dev | low | latency | off | 1 | 0.00 [0.00, 0.79] | 1.00 [0.21, 1.00] |" in text
    assert "0.61 / 0.50" in text
