"""Human-readable views of results for the terminal (the JSON views are the models themselves)."""

from __future__ import annotations

import json

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from opx.domain.hypothesis import Hypothesis
from opx.domain.result import ExecutionResult
from opx.durability.store import ExecutionRecord
from opx.runtime.replay import CheckpointListing, ReplayReport

# Long values in a differences table are cut here; --json shows them whole.
_CELL = 120


def result_view(result: ExecutionResult) -> Group:
    """The analysis as an on-call engineer reads it: verdict first, then why, then who said what."""
    parts: list[RenderableType] = [_headline(result)]
    if result.consensus is not None and result.consensus.candidates:
        parts.append(_candidates(result))
    if result.recommendation is not None and result.recommendation.actions:
        parts.append(_section("Suggested next steps (advice for a human; nothing was changed)"))
        for i, action in enumerate(result.recommendation.actions, 1):
            tag = f"[{action.type.value}, risk {action.risk.value}] "
            parts.append(_indented(f"{i}. {tag}{action.description}", 2, hang=len(f"{i}. ")))
    if result.hypotheses:
        parts.append(_agents(result.hypotheses))
    if result.cost is not None:
        parts.append(_cost(result))
    parts.append(Text(f"Execution: {result.execution_id}", style="dim"))
    return Group(*parts)


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold")


def _indented(text: str, indent: int, *, hang: int = 0, style: str = "") -> Padding:
    """Wrapped text whose continuation lines line up under the first line's text."""
    body = Text(text, style=style)
    return (
        Padding(body, (0, 0, 0, indent))
        if not hang
        else Padding(_hanging(body, hang), (0, 0, 0, indent))
    )


def _hanging(body: Text, hang: int) -> Table:
    grid = Table.grid()
    grid.add_column(width=hang, no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(body[:hang], body[hang:])
    return grid


def _headline(result: ExecutionResult) -> Text:
    reason = f" ({result.reason.value})" if result.reason else ""
    head = Text(f"Status: {result.status.value}{reason}\n", style="bold")
    rec, consensus = result.recommendation, result.consensus
    if rec is not None:
        component = f" / {rec.root_cause.component}" if rec.root_cause.component else ""
        head.append(
            f"Root cause: {rec.root_cause.service}{component} [{rec.root_cause.category}]\n",
            style="bold green",
        )
    elif consensus is not None:
        head.append(
            "Root cause: none named with enough confidence "
            f"(best {consensus.confidence:.2f} < threshold {consensus.threshold:.2f})\n",
            style="yellow",
        )
    if consensus is not None:
        head.append(
            f"Confidence: {consensus.confidence:.2f}   Agreement: {consensus.agreement_level:.0%}"
            f"   Data completeness: {consensus.quality.data_completeness:.0%}\n"
        )
        head.append(f"Summary: {consensus.summary}")
    return head


def _candidates(result: ExecutionResult) -> Group:
    assert result.consensus is not None
    rows: list[RenderableType] = [_section("Candidates (ranked)")]
    # Candidates with no measurable support add noise to a terminal; --json lists them all.
    shown = [c for i, c in enumerate(result.consensus.candidates) if i == 0 or c.score >= 0.005]
    for i, c in enumerate(shown[:5], 1):
        component = f" / {c.component}" if c.component else ""
        backers = ", ".join(c.supporting_agents)
        line = f"{i}. {c.service}{component}  score {c.score:.2f}  (backed by {backers})"
        rows.append(_indented(line, 2, hang=len(f"{i}. ")))
    return Group(*rows)


def _agents(hypotheses: dict[str, Hypothesis]) -> Group:
    rows: list[RenderableType] = [_section("Agents")]
    for agent_id, h in sorted(hypotheses.items()):
        cause = h.root_cause.service if h.root_cause else "no root cause"
        rows.append(_indented(f"{agent_id}: {h.status.value}, {h.confidence:.2f} → {cause}", 2))
        if h.description:
            rows.append(_indented(_clip(h.description, 300), 6, style="dim"))
    return Group(*rows)


def _cost(result: ExecutionResult) -> Text:
    assert result.cost is not None
    c = result.cost
    flag = " (some model prices unknown)" if c.cost_unknown else ""
    return Text(
        f"\nCost: ${c.total_usd:.4f} of ${c.budget_usd:.2f} budget "
        f"({c.input_tokens} in / {c.output_tokens} out tokens; pricing {c.pricing_version}){flag}"
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


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
