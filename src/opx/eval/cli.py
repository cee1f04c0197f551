"""The ``opx eval`` commands: ``opx eval petshop`` measures OPX on the PetShop dataset and
``opx eval nezha`` on the Nezha TrainTicket faults (metrics, logs and traces).

Tables (or JSON, or Markdown) go to stdout, the progress bar and notes to stderr. Exit codes as
for every ``opx`` command: 2 for a dataset or setting OPX cannot use, 3 for an infrastructure
failure.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from opx.config import ConfigError, load_settings
from opx.durability.store import StoreUnavailable
from opx.eval.nezha import fault_cases, list_faults
from opx.eval.nezha_data import NezhaDataError, open_dataset
from opx.eval.petshop import Case, healthy_cases, issue_cases
from opx.eval.petshop_data import DatasetError, Scenario, load_dataset
from opx.eval.report import (
    accuracy_table,
    agent_table,
    fault_markdown,
    fault_report_json,
    markdown,
    report_json,
    specificity_table,
    topk_table,
)
from opx.eval.runner import run_cases
from opx.eval.scoring import (
    CaseOutcome,
    accuracy_rows,
    agent_hit_rates,
    specificity_rows,
    topk_rows,
)

# The same codes as the main ``opx`` command (which mounts this one, so it cannot be imported).
EXIT_REJECTED, EXIT_INFRA = 2, 3

eval_app = typer.Typer(
    help="Measure OPX's accuracy on public root-cause datasets.", no_args_is_help=True
)
# The tables are wide: a pipe or file gets them unwrapped, a terminal at its own width.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


def _fail(code: int, message: str) -> NoReturn:
    err.print(f"opx: {message}", markup=False, highlight=False)
    raise typer.Exit(code)


def _guarded(action: Callable[[], T]) -> T:
    try:
        return action()
    except (DatasetError, NezhaDataError, ConfigError) as exc:
        _fail(EXIT_REJECTED, str(exc))
    except (StoreUnavailable, sqlite3.Error, OSError) as exc:
        _fail(EXIT_INFRA, f"infrastructure failure: {exc}")


def petshop_cases(
    scenarios: Sequence[Scenario],
    *,
    with_changes: bool,
    windows: int,
    seed: int,
    history_hours: float,
) -> list[Case]:
    """Every run to make: issues then healthy windows, without and (if asked) with changes."""
    cases: list[Case] = []
    for changes in (False, True) if with_changes else (False,):
        cases.extend(issue_cases(scenarios, changes=changes, seed=seed))
        for scenario in scenarios:
            cases.extend(
                healthy_cases(
                    scenario,
                    windows=windows,
                    changes=changes,
                    seed=seed,
                    history=timedelta(hours=history_hours),
                )
            )
    return cases


def _run_with_progress(
    cases: Iterable[Case], total: int, title: str = "PetShop"
) -> list[CaseOutcome]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err) as progress:
        task = progress.add_task(title, total=total)

        def done(outcome: CaseOutcome) -> None:
            key = outcome.key
            progress.update(task, advance=1, description=f"{key.scenario} {key.name}")

        return run_cases(cases, on_done=done)


@eval_app.command("petshop")
def petshop(
    data: Annotated[
        Path,
        typer.Option("--data", help="The dataset root, or one scenario folder (with graph.csv)."),
    ],
    scenario: Annotated[
        str | None, typer.Option(help="Only this scenario: low_traffic or high_traffic.")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(help="Only this split (train, dev, test, …); all of them by default."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N issues of each split.")
    ] = None,
    windows: Annotated[
        int, typer.Option(min=0, help="Healthy windows per scenario for specificity (0: none).")
    ] = 20,
    seed: Annotated[int, typer.Option(help="Seed of window positions and change times.")] = 0,
    with_changes: Annotated[
        bool,
        typer.Option(
            "--with-changes",
            help="Also run with a change feed (the real change plus decoys) and report both runs.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    as_markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the README's Markdown tables.")
    ] = False,
) -> None:
    """Run OPX's full graph over the PetShop issues and healthy windows and report top-1/top-3
    recall, calibration, specificity, time and cost per case."""
    settings = _guarded(load_settings)
    scenarios = _guarded(lambda: load_dataset(data, scenario, split, limit))
    cases = petshop_cases(
        scenarios,
        with_changes=with_changes,
        windows=windows,
        seed=seed,
        history_hours=settings.baseline_lookback_hours,
    )
    issues = sum(1 for c in cases if not c.key.healthy)
    err.print(
        f"{issues} issue runs and {len(cases) - issues} healthy-window runs over "
        f"{', '.join(s.name for s in scenarios)}",
        highlight=False,
    )
    outcomes = _guarded(lambda: _run_with_progress(cases, len(cases)))
    rows, specificity = accuracy_rows(outcomes), specificity_rows(outcomes)
    if as_json:
        payload = report_json(rows, specificity, outcomes)
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    elif as_markdown:
        sys.stdout.write(markdown(rows, specificity))
    else:
        out.print(accuracy_table(rows))
        if specificity:
            out.print(specificity_table(specificity))


def _run_nezha(data: Path, fault_type: str | None, limit: int | None) -> list[CaseOutcome]:
    """Unpack (if need be), choose the faults and run them, one case in memory at a time."""
    with open_dataset(data) as root:
        faults = list_faults(root)
        if fault_type is not None:
            faults = [f for f in faults if f.fault_type == fault_type]
        faults = faults[:limit]
        if not faults:
            kind = "" if fault_type is None else f" of type {fault_type!r}"
            raise NezhaDataError(f"{data}: no listed fault{kind} to run")
        err.print(f"{len(faults)} faults from {root.name}", highlight=False)
        return _run_with_progress(fault_cases(root, faults), len(faults), "Nezha")


@eval_app.command("nezha")
def nezha(
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="The dataset: the .tar.gz archive, the folder holding rca_data/, or its parent.",
        ),
    ],
    fault_type: Annotated[
        str | None,
        typer.Option(help="Only this fault type (exception, return, network_delay, …)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N faults.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print one JSON object: {"rows", "agents", "cases"}.')
    ] = False,
    as_markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the README's Markdown tables.")
    ] = False,
) -> None:
    """Run OPX's full graph over each Nezha TrainTicket fault (metrics, logs and traces; an
    incident on the entry service raised by the front service's LatencyP90(s)) and report
    AS@1/3/5 per fault type with Wilson intervals, each agent's hit rate, Brier score and the
    median time per case."""
    _guarded(load_settings)
    outcomes = _guarded(lambda: _run_nezha(data, fault_type, limit))
    rows, agents = topk_rows(outcomes), agent_hit_rates(outcomes)
    if as_json:
        payload = fault_report_json(rows, agents, outcomes)
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    elif as_markdown:
        sys.stdout.write(fault_markdown(rows, agents))
    else:
        out.print(topk_table("Nezha TrainTicket: the injected service among the candidates", rows))
        out.print(agent_table(agents))
