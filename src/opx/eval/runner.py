"""Runs evaluation cases through the normal execution path (intake, the full graph, consensus,
cost and the store), each in a fresh temporary data directory so no stored result is reused."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from opx.config import load_settings
from opx.domain.result import ExecutionResult
from opx.eval.petshop import Case
from opx.eval.scoring import CaseOutcome
from opx.runtime.execute import execute
from opx.runtime.intake import Accepted, parse_event
from opx.runtime.wiring import open_runtime

Clock = Callable[[], float]
OnDone = Callable[[CaseOutcome], None]


async def run_case(
    case: Case, *, env: Mapping[str, str] | None = None, clock: Clock = time.perf_counter
) -> CaseOutcome:
    """One case, end to end; ``env`` is the settings environment (default: the process's)."""
    accepted = parse_event(case.event)
    if not isinstance(accepted, Accepted):
        raise ValueError(f"case {case.key.name}: the event is not an incident to analyse")
    started = clock()
    with tempfile.TemporaryDirectory(prefix="opx-eval-") as data_dir:
        settings = load_settings(env, data_dir=Path(data_dir))
        async with open_runtime(settings, case.tools) as runtime:
            execution = await execute(
                accepted, deps=runtime.deps, store=runtime.store, checkpointer=runtime.checkpointer
            )
    return outcome_of(case, execution.result, clock() - started)


def outcome_of(case: Case, result: ExecutionResult, seconds: float) -> CaseOutcome:
    consensus = result.consensus
    candidates = (
        () if consensus is None else tuple((c.service, c.score) for c in consensus.candidates)
    )
    return CaseOutcome(
        key=case.key,
        truth=case.truth,
        status=result.status.value,
        reason=None if result.reason is None else result.reason.value,
        confidence=0.0 if consensus is None else consensus.confidence,
        candidates=candidates,
        seconds=seconds,
        usd=0.0 if result.cost is None else result.cost.total_usd,
        graph_nodes=case.graph_nodes,
        agents=tuple(
            (agent, None if h.root_cause is None else h.root_cause.service)
            for agent, h in sorted(result.hypotheses.items())
        ),
    )


async def _run_all(
    cases: Iterable[Case], env: Mapping[str, str] | None, on_done: OnDone | None
) -> list[CaseOutcome]:
    outcomes = []
    for case in cases:
        outcome = await run_case(case, env=env)
        outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)
    return outcomes


def run_cases(
    cases: Iterable[Case], *, env: Mapping[str, str] | None = None, on_done: OnDone | None = None
) -> list[CaseOutcome]:
    """Every case in order, one at a time (so each case's time is its own); ``cases`` may be
    built lazily, so only the case being run needs to be in memory."""
    return asyncio.run(_run_all(cases, env, on_done))
