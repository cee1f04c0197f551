"""Human-readable views of results for the terminal (the JSON views are the models themselves)."""

from __future__ import annotations

import json

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from opx.domain.hypothesis import Hypothesis
from opx.domain.result import ExecutionResult
from opx.durability.store import ExecutionRecord
from opx.runtime.replay import CheckpointListing, ReplayReport

# Long values in a differences table are cut here; --json shows them whole.
_CELL = 120


def result_view(result: ExecutionResult) -> Group:
    parts: list[Text | Table] = [_headline(result)]
    if result.consensus is not None:
        parts.append(
            Text(
                f"Agreement: {result.consensus.agreement_level:.0%}   "
                f"Data completeness: {result.consensus.quality.data_completeness:.0%}"
            )
        )
        parts.append(_candidates(result))
    if result.recommendation is not None and result.recommendation.actions:
        parts.append(
            Text("Suggested next steps (advice for a human; nothing was changed):", style="bold")
        )
        for i, action in enumerate(result.recommendation.actions, 1):
            parts.append(
                Text(f"  {i}. [{action.type.value}, risk {action.risk.value}] {action.description}")
            )
    if result.hypotheses:
        parts.append(_agents(result.hypotheses))
    if result.cost is not None:
        c = result.cost
        flag = " (some model prices unknown)" if c.cost_unknown else ""
        parts.append(
            Text(
                f"Cost: ${c.total_usd:.4f} of ${c.budget_usd:.2f} budget "
                f"({c.input_tokens} in / {c.output_tokens} out tokens){flag}"
            )
        )
    parts.append(Text(f"Execution: {result.execution_id}", style="dim"))
    return Group(*parts)


def _headline(result: ExecutionResult) -> Text:
    reason = f" ({result.reason.value})" if result.reason else ""
    status = Text(f"Status: {result.status.value}{reason}\n", style="bold")
    rec = result.recommendation
    if rec is not None:
        component = f" / {rec.root_cause.component}" if rec.root_cause.component else ""
        status.append(
            f"Root cause: {rec.root_cause.service}{component} [{rec.root_cause.category}]\n",
            style="bold green",
        )
        status.append(f"Confidence: {rec.confidence:.2f}\n")
        status.append(f"Summary: {rec.summary}")
    elif result.consensus is not None:
        status.append(
            "Root cause: none named with enough confidence "
            f"(confidence {result.consensus.confidence:.2f} < threshold "
            f"{result.consensus.threshold:.2f})",
            style="yellow",
        )
    return status


def _candidates(result: ExecutionResult) -> Table:
    table = Table(title="Candidates", title_justify="left")
    for column in ("#", "service", "component", "score", "supported by"):
        table.add_column(column, overflow="fold")
    assert result.consensus is not None
    for i, c in enumerate(result.consensus.candidates[:5], 1):
        table.add_row(
            str(i), c.service, c.component or "", f"{c.score:.2f}", ", ".join(c.supporting_agents)
        )
    return table


def _agents(hypotheses: dict[str, Hypothesis]) -> Table:
    table = Table(title="Agents", title_justify="left")
    for column in ("agent", "status", "root cause", "confidence", "view"):
        table.add_column(column, overflow="fold")
    for agent_id, h in sorted(hypotheses.items()):
        cause = h.root_cause.service if h.root_cause else "-"
        table.add_row(agent_id, h.status.value, cause, f"{h.confidence:.2f}", h.description[:160])
    return table


def executions_table(records: list[ExecutionRecord]) -> Table:
    table = Table(title="Executions", title_justify="left")
    for column in ("execution id", "incident", "status", "reason", "attempt", "root cause"):
        table.add_column(column, overflow="fold")
    for r in records:
        rec = r.result.recommendation if r.result else None
        table.add_row(
            r.execution_id,
            r.incident_id,
            r.status,
            r.reason or "",
            str(r.attempt),
            rec.root_cause.service if rec else "",
        )
    return table


def replay_view(report: ReplayReport) -> Group:
    what = "Re-run" if report.rerun else "Replay"
    verdict = (
        Text("IDENTICAL", style="bold green")
        if report.identical
        else Text(f"DIFFERENT ({len(report.differences)} differences)", style="bold red")
    )
    headline = Text(f"{what} of {report.execution_id} (attempt {report.attempt}): ")
    headline.append_text(verdict)
    parts: list[Text | Table] = [headline]
    if report.identical:
        parts.append(Text("Consensus, cost and the execution trace match the original."))
    else:
        table = Table(title="Differences", title_justify="left")
        for column in ("path", "original", "replayed"):
            table.add_column(column, overflow="fold")
        for d in report.differences:
            table.add_row(d.path, _cell(d.original), _cell(d.replayed))
        parts.append(table)
    parts.append(Text(f"External calls (tools and models): {report.external_calls}"))
    return Group(*parts)


def _cell(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= _CELL else text[: _CELL - 1] + "…"


def checkpoints_table(listing: CheckpointListing) -> Table:
    table = Table(
        title=f"Checkpoints of {listing.execution_id}, attempt {listing.attempt} "
        f"(thread {listing.thread_id})",
        title_justify="left",
    )
    for column in ("step", "source", "next", "agents done", "saved writes", "checkpoint id"):
        table.add_column(column, overflow="fold")
    for c in listing.checkpoints:
        table.add_row(
            str(c.step),
            c.source,
            ", ".join(c.next) or "(end)",
            str(len(c.agents_done)),
            _saved(c.next, c.saved_writes),
            c.checkpoint_id,
        )
    return table


def _saved(upcoming: tuple[str, ...], saved: tuple[str, ...]) -> str:
    """Which of the step's nodes had saved their output: of interest when the step was cut."""
    if not upcoming:
        return ""
    if saved == upcoming:
        return "all"
    return ", ".join(saved) or "none"


def print_to(console: Console, view: Group | Table) -> None:
    console.print(view, soft_wrap=False)
