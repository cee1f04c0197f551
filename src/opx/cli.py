"""The ``opx`` command: analyse incidents, inspect stored executions, print the contracts.

stdout carries only each command's own output (JSON with ``--json``); progress, notes and errors
go to stderr. Exit codes: 0 done, 1 a verification found differences, 2 rejected input or unknown
id, 3 infrastructure failure (store or service unreachable).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import TypeAdapter
from rich.console import Console

from opx.config import ConfigError, Settings, load_settings
from opx.domain.errors import InputRejected
from opx.domain.incident import AlarmStateChangeEnvelope, IncidentCreatedEnvelope
from opx.domain.result import ExecutionResult, ExecutionStatus
from opx.durability.store import StoreUnavailable
from opx.eval.cli import eval_app
from opx.observability.emf import emit
from opx.observability.metrics import REPLAY_COUNT
from opx.reasoning.pricing import load_pricing
from opx.render import checkpoints_table, executions_table, print_to, replay_view, result_view
from opx.runtime.execute import Execution, execute, skipped
from opx.runtime.intake import MAX_EVENT_BYTES, Accepted, parse_event
from opx.runtime.lambda_handler import FakeContext, Invocation, invoke, reject
from opx.runtime.replay import (
    CheckpointListing,
    ReplayRejected,
    ReplayReport,
    list_checkpoints,
    replay,
    run_in_replay_loop,
)
from opx.runtime.wiring import make_deps, open_checkpointer, open_runtime, open_store, open_tools
from opx.snapshot import snapshot_command
from opx.tools.action_groups import schemas_json
from opx.tools.bundle import BundleError

EXIT_OK, EXIT_DIFFERS, EXIT_REJECTED, EXIT_INFRA = 0, 1, 2, 3

app = typer.Typer(
    name="opx",
    help="OPX: advisory root-cause analysis for incidents. Intelligence advises; humans decide.\n\n"
    "Exit codes: 0 done (any analysis status except REJECTED), 1 a verification found "
    "differences, 2 rejected input or unknown id, 3 infrastructure failure.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
executions_app = typer.Typer(help="Inspect stored executions.", no_args_is_help=True)
app.add_typer(executions_app, name="executions")
app.add_typer(eval_app, name="eval")
app.command("snapshot")(snapshot_command)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where executions and checkpoints live (default: $OPX_DATA_DIR or ~/.opx).",
        file_okay=False,
    ),
]
Attempt = Annotated[
    int | None,
    typer.Option("--attempt", min=1, help="Which attempt: 1, 2, … (default: the latest)."),
]
T = TypeVar("T")


def _fail(code: int, message: str) -> NoReturn:
    err.print(f"opx: {message}", markup=False, highlight=False)
    raise typer.Exit(code)


def _guarded(action: Callable[[], T]) -> T:
    """Map failures to one clear line on stderr and the exit-code table; never a traceback."""
    try:
        return action()
    except (InputRejected, BundleError, ConfigError, ReplayRejected) as exc:
        _fail(EXIT_REJECTED, str(exc))
    except (StoreUnavailable, sqlite3.Error, OSError, BotoCoreError, ClientError) as exc:
        _fail(EXIT_INFRA, f"infrastructure failure: {exc}")


def _settings(data_dir: Path | None) -> Settings:
    return _guarded(lambda: load_settings(data_dir=data_dir))


def _emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def _read_event(path: Path) -> bytes:
    if not path.is_file():
        _fail(EXIT_REJECTED, f"event file not found: {path}")
    with path.open("rb") as handle:
        return handle.read(MAX_EVENT_BYTES + 1)


@app.command()
def analyze(
    event: Annotated[
        Path,
        typer.Argument(
            help="The incident event: an EventBridge JSON document "
            "(IncidentCreated or CloudWatch Alarm State Change)."
        ),
    ],
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle", help="Telemetry bundle directory (default: bundle/ beside the event)."
        ),
    ] = None,
    data_dir: DataDir = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Start a new attempt even if this event already has a final result."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Analyse one incident and print the recommendation (or why there is none).

    Runs the six agents over the telemetry bundle, merges their hypotheses and reports the root
    cause with its confidence, each agent's view and the cost. A repeated event returns the
    stored result of its execution unchanged (--force runs a new attempt); an interrupted one
    resumes from its last checkpoint, re-running only the agents that had not finished.
    """
    settings = _settings(data_dir)
    parsed = _guarded(lambda: parse_event(_read_event(event)))
    if not isinstance(parsed, Accepted):
        _show(skipped(parsed), as_json)
        return
    source: str | None = None
    if settings.telemetry_backend == "bundle":
        bundle_dir = bundle or event.parent / "bundle"
        if not bundle_dir.is_dir():
            _fail(EXIT_REJECTED, f"telemetry bundle not found: {bundle_dir} (use --bundle DIR)")
        source = str(bundle_dir.resolve())
    # The AWS and Lambda sources read the account live, scoped to the incident's service and window.
    tools = _guarded(
        lambda: open_tools(
            settings,
            None if source is None else Path(source),
            incident=parsed.incident,
            env=os.environ,
        )
    )
    execution = _guarded(lambda: asyncio.run(_run(settings, tools, parsed, force, source)))
    _show(execution, as_json)


async def _run(
    settings: Settings, tools: Any, accepted: Accepted, force: bool, bundle: str | None
) -> Execution:
    async with open_runtime(settings, tools) as runtime:
        with err.status("Analysing…", spinner="dots") as status:

            def progress(node: str, update: dict[str, Any]) -> None:
                hypothesis = (update.get("hypotheses") or {}).get(node)
                if hypothesis is not None:
                    cause = (hypothesis.get("root_cause") or {}).get("service", "no root cause")
                    err.print(
                        f"  {node}: {hypothesis['status']} → {cause} "
                        f"({hypothesis['confidence']:.2f})",
                        markup=False,
                        highlight=False,
                    )
                status.update(f"Analysing… {node} done")

            return await execute(
                accepted,
                deps=runtime.deps,
                store=runtime.store,
                checkpointer=runtime.checkpointer,
                on_progress=progress,
                force=force,
                bundle=bundle,
            )


def _show(execution: Execution, as_json: bool) -> None:
    for note in _notes(execution):
        err.print(f"note: {note}", markup=False, highlight=False)
    if as_json:
        _emit_json(execution.result.model_dump(mode="json"))
    else:
        print_to(out, result_view(execution.result))


def _notes(execution: Execution) -> list[str]:
    result = execution.result
    notes = []
    if execution.reused:
        notes.append("this event's execution already finished; showing its stored result")
    elif result.status is ExecutionStatus.IN_PROGRESS:
        notes.append("another worker is running this execution; deliver it again later")
    elif execution.resumed:
        notes.append(f"resumed attempt {execution.attempt} from its last checkpoint")
    if result.status is ExecutionStatus.INCOMPLETE:
        notes.append("stopped at the lease deadline (OPX_LEASE_SECONDS); run it again to resume")
    elif not execution.stored:
        notes.append("another worker took this execution over; this result was not stored")
    return notes


@app.command("invoke")
def invoke_command(
    event: Annotated[
        Path, typer.Argument(help="The event exactly as EventBridge would hand it to Lambda.")
    ],
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle",
            help="Telemetry bundle directory when OPX_TELEMETRY=bundle "
            "(default: bundle/ beside the event).",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=0.0,
            help="Seconds the fake Lambda context has (the function timeout); the handler keeps "
            "OPX_DEADLINE_MARGIN_S of them back.",
        ),
    ] = 300.0,
    publish: Annotated[
        bool,
        typer.Option(
            "--publish/--no-publish",
            help="Publish AnalysisCompleted to OPX_EVENT_BUS (and OPX_SUMMARY_TOPIC_ARN) as "
            "Lambda does; off by default on a laptop.",
        ),
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Invoke the Lambda handler on an event file, exactly as Lambda would.

    Prints the handler's response as JSON on stdout; the metric lines (Embedded Metric Format)
    and the JSON logs go to stderr. A file that is missing, empty, unreadable or not JSON gets a
    REJECTED response too. Exit 0 for an answered event, 2 for a REJECTED one, 3 when the handler
    raised (Lambda would retry the event): an infrastructure failure, or the deadline reached
    with the execution checkpointed for the retry to resume.
    """
    settings = _settings(data_dir)
    beside = event.parent / "bundle"
    invocation = Invocation(
        settings,
        out=sys.stderr,
        env=os.environ,
        bundle=bundle or (beside if beside.is_dir() else None),
        publish=publish,
    )
    try:
        raw = _read_event(event) if event.is_file() else None
    except OSError as exc:
        raw, reason = None, f"the event file cannot be read: {exc.strerror or exc}"
    else:
        reason = f"event file not found: {event}"
    if raw is None:
        response = reject(InputRejected(reason), invocation)
    else:
        context = FakeContext(time.time() + timeout)
        try:
            response = invoke(raw, context, invocation)
        except Exception as exc:  # the handler raised: Lambda would retry the event
            _fail(EXIT_INFRA, f"the handler raised {type(exc).__name__}: {exc}")
    _emit_json(response)
    if response["status"] == ExecutionStatus.REJECTED.value:
        raise typer.Exit(EXIT_REJECTED)


@app.command("replay")
def replay_command(
    execution_id: Annotated[str, typer.Argument(help="The 32-character execution id.")],
    attempt: Attempt = None,
    rerun: Annotated[
        bool,
        typer.Option(
            "--rerun",
            help="Call the agents again on the telemetry (instead of the recorded outputs) "
            "and show what changed.",
        ),
    ] = False,
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle",
            help="Telemetry bundle for --rerun (default: the one the execution analysed).",
        ),
    ] = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-execute a stored execution and verify it reproduces the same answer.

    Plays the agents' recorded outputs back through the graph (no model or tool is called) and
    checks that consensus, cost and the execution trace are identical to the original. Exit 0
    when identical, 1 when not, 2 for an unknown id or attempt.
    """
    settings = _settings(data_dir)
    report = _guarded(
        lambda: run_in_replay_loop(_replay(settings, execution_id, attempt, rerun, bundle))
    )
    # One Embedded Metric Format line on stderr: CloudWatch Logs counts replays from it.
    emit(
        {REPLAY_COUNT: 1},
        properties={"execution_id": execution_id, "identical": report.identical},
        namespace=settings.metrics_namespace,
    )
    if as_json:
        _emit_json(report.to_json())
    else:
        print_to(out, replay_view(report))
    if not report.identical:
        raise typer.Exit(EXIT_DIFFERS)


async def _replay(
    settings: Settings,
    execution_id: str,
    attempt: int | None,
    rerun: bool,
    bundle: Path | None,
) -> ReplayReport:
    store = open_store(settings)
    deps = None
    if rerun:
        record = store.get(execution_id)
        if record is None:
            raise ReplayRejected(f"unknown execution id: {execution_id}")
        source = bundle or (Path(record.bundle) if record.bundle else None)
        if source is None:
            raise ReplayRejected(
                "--rerun needs a telemetry bundle: none was recorded for this "
                "execution (use --bundle DIR)"
            )
        if not source.is_dir():
            raise ReplayRejected(f"telemetry bundle not found: {source} (use --bundle DIR)")
        deps = make_deps(settings, open_tools(settings, source))
    async with open_checkpointer(settings) as saver:
        return await replay(
            store, saver, settings, load_pricing(), execution_id, attempt=attempt, rerun=deps
        )


@app.command()
def checkpoints(
    execution_id: Annotated[str, typer.Argument(help="The 32-character execution id.")],
    attempt: Attempt = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """List an execution's checkpoints, oldest first.

    One row per saved step: the nodes it runs next, the agents already done and, for an
    interrupted attempt, which of the running agents had saved their output.
    """
    settings = _settings(data_dir)
    listing = _guarded(lambda: asyncio.run(_checkpoint_listing(settings, execution_id, attempt)))
    if as_json:
        _emit_json(listing.to_json())
    else:
        print_to(out, checkpoints_table(listing))


async def _checkpoint_listing(
    settings: Settings, execution_id: str, attempt: int | None
) -> CheckpointListing:
    store = open_store(settings)
    async with open_checkpointer(settings) as saver:
        return await list_checkpoints(
            store, saver, settings, load_pricing(), execution_id, attempt=attempt
        )


@executions_app.command("list")
def executions_list(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
    status: Annotated[str | None, typer.Option(help="Only this status, e.g. COMPLETED.")] = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """List stored executions, newest first."""
    settings = _settings(data_dir)
    records = _guarded(lambda: open_store(settings).list(limit=limit, status=status))
    if as_json:
        _emit_json(
            [
                {
                    "execution_id": r.execution_id,
                    "incident_id": r.incident_id,
                    "status": r.status,
                    "reason": r.reason,
                    "attempt": r.attempt,
                    "updated_at": r.updated_at,
                }
                for r in records
            ]
        )
    else:
        print_to(out, executions_table(records))


@executions_app.command("show")
def executions_show(
    execution_id: Annotated[str, typer.Argument(help="The 32-character execution id.")],
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Show one stored execution's result."""
    settings = _settings(data_dir)
    record = _guarded(lambda: open_store(settings).get(execution_id))
    if record is None:
        _fail(EXIT_REJECTED, f"unknown execution id: {execution_id}")
    if record.result is None:
        _fail(EXIT_REJECTED, f"execution {execution_id} has no result yet (status {record.status})")
    _show(Execution(record.result), as_json)


@app.command()
def schema(
    which: Annotated[str, typer.Argument(help="event | result | tools")],
    as_json: JsonFlag = False,
) -> None:
    """Print the JSON Schema of the accepted events or of the execution result, or the
    Bedrock action-group function schemas of the tools."""
    if which == "event":
        adapter: TypeAdapter[Any] = TypeAdapter(IncidentCreatedEnvelope | AlarmStateChangeEnvelope)
        _emit_json(adapter.json_schema(by_alias=True))
    elif which == "result":
        _emit_json(ExecutionResult.model_json_schema())
    elif which == "tools":
        sys.stdout.write(schemas_json())
    else:
        _fail(EXIT_REJECTED, f"unknown schema {which!r}: choose event, result or tools")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
