"""Renders evaluation results: rich tables for people, one JSON object for programs and a
Markdown table to paste into the README."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.table import Table

from opx.eval.scoring import (
    ALL,
    AccuracyRow,
    CaseOutcome,
    SpecificityRow,
    TopKRow,
    fault_type_of,
)

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


# -- fault-type tables (Nezha) -----------------------------------------------------------------

# Published service-level AS@1/3/5 on all 45 TrainTicket faults (Nezha, ESEC/FSE 2023, Table 3).
PUBLISHED_TT: dict[str, tuple[float, float, float]] = {
    "Nezha": (0.867, 0.978, 0.978),
    "MicroRCA": (0.200, 0.311, 0.444),
}
TOPK_HEADERS = (
    "Fault type",
    "n",
    "AS@1 [95 % CI]",
    "AS@3 [95 % CI]",
    "AS@5 [95 % CI]",
    "Brier",
    "Median s",
)
TOPK_NOTE = (
    "AS@k: the injected service among the first k distinct consensus candidates, with Wilson "
    "95 % intervals. Brier score of the consensus confidence against a top-1 hit. Published on "
    "all 45 TrainTicket faults (AS@1 / AS@3 / AS@5): "
    + "; ".join(
        f"{name} {' / '.join(f'{v:.3f}' for v in vals)}" for name, vals in PUBLISHED_TT.items()
    )
    + "."
)


def topk_row_json(row: TopKRow) -> dict[str, Any]:
    as1, as3, as5 = row.hits
    ci1, ci3, ci5 = row.cis
    return {
        "fault_type": row.fault_type,
        "n": row.n,
        "as1": _r(as1),
        "as3": _r(as3),
        "as5": _r(as5),
        "as1_ci": _ci(ci1),
        "as3_ci": _ci(ci3),
        "as5_ci": _ci(ci5),
        "brier": _r(row.brier),
        "median_seconds": _r(row.median_seconds),
    }


def fault_case_json(outcome: CaseOutcome) -> dict[str, Any]:
    shown: list[tuple[str, float]] = []
    for service, score in outcome.candidates:
        if service not in (s for s, _ in shown):
            shown.append((service, score))
    return {
        "fault_id": outcome.key.name,
        "fault_type": fault_type_of(outcome),
        "truth": outcome.truth,
        "status": outcome.status,
        "confidence": _r(outcome.confidence),
        "candidates": [
            {"service": service, "score": _r(score)} for service, score in shown[:CANDIDATES_SHOWN]
        ],
    }


def fault_report_json(
    rows: Sequence[TopKRow], agents: dict[str, dict[str, float]], outcomes: Sequence[CaseOutcome]
) -> dict[str, Any]:
    """The ``--json`` object: ``{"rows", "agents", "cases"}``."""
    return {
        "rows": [topk_row_json(r) for r in rows],
        "agents": {a: {g: _r(v) for g, v in rates.items()} for a, rates in agents.items()},
        "cases": [fault_case_json(o) for o in outcomes],
    }


def topk_cells(row: TopKRow) -> list[str]:
    return [
        row.fault_type,
        str(row.n),
        *(_with_ci(hit, ci) for hit, ci in zip(row.hits, row.cis, strict=True)),
        _pct(row.brier),
        f"{row.median_seconds:.2f}",
    ]


def published_cells() -> list[list[str]]:
    return [
        [f"published: {name} (45 faults)", "45", *(_pct(v) for v in vals), "–", "–"]
        for name, vals in PUBLISHED_TT.items()
    ]


def agent_headers(agents: dict[str, dict[str, float]]) -> list[str]:
    groups = sorted({g for rates in agents.values() for g in rates}, key=lambda g: (g == ALL, g))
    return ["Agent", *groups]


def agent_cells(agents: dict[str, dict[str, float]]) -> list[list[str]]:
    groups = agent_headers(agents)[1:]
    return [
        [agent, *(_pct(rates[g]) if g in rates else "–" for g in groups)]
        for agent, rates in agents.items()
    ]


def topk_table(title: str, rows: Sequence[TopKRow]) -> Table:
    table = Table(title=title, caption=TOPK_NOTE, box=box.SIMPLE_HEAD)
    for header in TOPK_HEADERS:
        table.add_column(header)
    for row in rows:
        table.add_row(*topk_cells(row))
    for cells in published_cells():
        table.add_row(*cells, style="dim")
    return table


def agent_table(agents: dict[str, dict[str, float]]) -> Table:
    table = Table(
        title="Per agent: share of faults where its root cause was the injected service",
        box=box.SIMPLE_HEAD,
    )
    for header in agent_headers(agents):
        table.add_column(header)
    for cells in agent_cells(agents):
        table.add_row(*cells)
    return table


def fault_markdown(rows: Sequence[TopKRow], agents: dict[str, dict[str, float]]) -> str:
    """The README's tables: AS@k per fault type with the published figures, then per agent."""
    lines = _markdown_table(TOPK_HEADERS, [*map(topk_cells, rows), *published_cells()])
    lines.extend(["", TOPK_NOTE, ""])
    lines.extend(_markdown_table(agent_headers(agents), agent_cells(agents)))
    return "\n".join(lines) + "\n"
