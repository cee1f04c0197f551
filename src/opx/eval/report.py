"""Renders evaluation results: rich tables for people, one JSON object for programs and a
Markdown table to paste into the README."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.table import Table

from opx.eval.scoring import AccuracyRow, CaseOutcome, SpecificityRow

CANDIDATES_SHOWN = 5
DIGITS = 4
# The dataset authors' best methods on the development issues (top-1 recall), for comparison.
BASELINES: dict[str, dict[str, float]] = {
    "latency": {"anomaly traversal": 0.61, "ranked correlation": 0.50},
    "availability": {"anomaly traversal": 0.25, "ranked correlation": 0.81},
}
PAPER_SPECIFICITY = (0.17, 0.60)

ACCURACY_HEADERS = (
    "Split",
    "Scenario",
    "Metric",
    "Changes",
    "n",
    "Top-1 [95 % CI]",
    "Top-3 [95 % CI]",
    "Paper top-1 AT / RC",
    "Chance top-1 / 3",
    "Conf. right / wrong",
    "Brier",
    "Median s",
    "USD/case",
)
ACCURACY_NOTE = (
    "Paper: the dataset authors' anomaly traversal (AT) and ranked correlation (RC) on the "
    "development issues. Chance: a uniform guess among the other graph nodes. Conf.: mean "
    "consensus confidence when the top candidate is right / wrong; Brier score of that "
    "confidence."
)
SPECIFICITY_HEADERS = ("Scenario", "Metric", "Changes", "n", "No recommendation [95 % CI]", "Paper")


def _r(value: float) -> float:
    return round(value, DIGITS)


def _ci(bounds: tuple[float, float]) -> list[float]:
    return [_r(bounds[0]), _r(bounds[1])]


def _optional(value: float | None) -> float | None:
    return None if value is None else _r(value)


def row_json(row: AccuracyRow) -> dict[str, Any]:
    return {
        "split": row.split,
        "scenario": row.scenario,
        "metric": row.metric,
        "changes": row.changes,
        "n": row.n,
        "top1": _r(row.top1),
        "top3": _r(row.top3),
        "top1_ci": _ci(row.top1_ci),
        "top3_ci": _ci(row.top3_ci),
        "confidence_right": _optional(row.confidence_right),
        "confidence_wrong": _optional(row.confidence_wrong),
        "brier": _r(row.brier),
        "median_seconds": _r(row.median_seconds),
        "usd_per_case": round(row.usd_per_case, 6),
        "chance_top1": _r(row.chance_top1),
        "chance_top3": _r(row.chance_top3),
        "baselines_top1": BASELINES.get(row.metric, {}),
    }


def specificity_json(rows: Sequence[SpecificityRow]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{scenario: {metric: {"n", "no_recommendation_rate", "ci"}}}`` for the given rows."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row.scenario, {})[row.metric] = {
            "n": row.n,
            "no_recommendation_rate": _r(row.no_recommendation_rate),
            "ci": _ci(row.ci),
        }
    return out


def case_json(outcome: CaseOutcome) -> dict[str, Any]:
    key = outcome.key
    return {
        "split": key.split,
        "scenario": key.scenario,
        "issue": key.name,
        "metric": key.metric,
        "changes": key.changes,
        "truth": outcome.truth,
        "status": outcome.status,
        "reason": outcome.reason,
        "confidence": _r(outcome.confidence),
        "seconds": _r(outcome.seconds),
        "candidates": [
            {"service": service, "score": _r(score)}
            for service, score in outcome.candidates[:CANDIDATES_SHOWN]
        ],
    }


def window_json(outcome: CaseOutcome) -> dict[str, Any]:
    key = outcome.key
    ranked = outcome.ranked_services
    return {
        "scenario": key.scenario,
        "window": key.name,
        "metric": key.metric,
        "changes": key.changes,
        "status": outcome.status,
        "reason": outcome.reason,
        "confidence": _r(outcome.confidence),
        "top": ranked[0] if ranked else None,
    }


def report_json(
    rows: Sequence[AccuracyRow],
    specificity: Sequence[SpecificityRow],
    outcomes: Sequence[CaseOutcome],
) -> dict[str, Any]:
    """The ``--json`` object. ``specificity`` is the run without changes;
    ``specificity_with_changes`` (same shape) is there when the change-feed run was made."""
    report: dict[str, Any] = {
        "rows": [row_json(r) for r in rows],
        "specificity": specificity_json([r for r in specificity if not r.changes]),
    }
    with_changes = [r for r in specificity if r.changes]
    if with_changes or any(o.key.changes for o in outcomes):
        report["specificity_with_changes"] = specificity_json(with_changes)
    report["cases"] = [case_json(o) for o in outcomes if not o.key.healthy]
    report["windows"] = [window_json(o) for o in outcomes if o.key.healthy]
    return report


# -- text --------------------------------------------------------------------------------------


def _pct(value: float) -> str:
    return f"{value:.2f}"


def _with_ci(value: float, bounds: tuple[float, float]) -> str:
    return f"{_pct(value)} [{_pct(bounds[0])}, {_pct(bounds[1])}]"


def _maybe(value: float | None) -> str:
    return "–" if value is None else _pct(value)


def accuracy_cells(row: AccuracyRow) -> list[str]:
    paper = BASELINES.get(row.metric)
    return [
        row.split,
        row.scenario,
        row.metric,
        "on" if row.changes else "off",
        str(row.n),
        _with_ci(row.top1, row.top1_ci),
        _with_ci(row.top3, row.top3_ci),
        "–" if paper is None else " / ".join(_pct(v) for v in paper.values()),
        f"{_pct(row.chance_top1)} / {_pct(row.chance_top3)}",
        f"{_maybe(row.confidence_right)} / {_maybe(row.confidence_wrong)}",
        _pct(row.brier),
        f"{row.median_seconds:.2f}",
        f"{row.usd_per_case:.4f}",
    ]


def specificity_cells(row: SpecificityRow) -> list[str]:
    low, high = PAPER_SPECIFICITY
    return [
        row.scenario,
        row.metric,
        "on" if row.changes else "off",
        str(row.n),
        _with_ci(row.no_recommendation_rate, row.ci),
        f"{_pct(low)}–{_pct(high)}",
    ]


def accuracy_table(rows: Sequence[AccuracyRow]) -> Table:
    table = Table(
        title="PetShop: the true root cause among the consensus candidates",
        caption=ACCURACY_NOTE,
        box=box.SIMPLE_HEAD,
    )
    for header in ACCURACY_HEADERS:
        table.add_column(header)
    for row in rows:
        table.add_row(*accuracy_cells(row))
    return table


def specificity_table(rows: Sequence[SpecificityRow]) -> Table:
    table = Table(
        title="PetShop specificity: healthy windows with no recommendation", box=box.SIMPLE_HEAD
    )
    for header in SPECIFICITY_HEADERS:
        table.add_column(header)
    for row in rows:
        table.add_row(*specificity_cells(row))
    return table


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines.extend("| " + " | ".join(cells) + " |" for cells in rows)
    return lines


def markdown(rows: Sequence[AccuracyRow], specificity: Sequence[SpecificityRow]) -> str:
    """The README's tables: accuracy, then specificity when windows were run."""
    lines = _markdown_table(ACCURACY_HEADERS, [accuracy_cells(r) for r in rows])
    lines.extend(["", ACCURACY_NOTE])
    if specificity:
        lines.append("")
        lines.extend(
            _markdown_table(SPECIFICITY_HEADERS, [specificity_cells(r) for r in specificity])
        )
    return "\n".join(lines) + "\n"
