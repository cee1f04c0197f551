"""The whole graph through execute(): order, short cut, idempotency and crash-resume."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from opx.agents.base import AgentContext, AgentOutput
from opx.agents.roster import ALL_AGENTS, CORE_AGENTS, KNOWLEDGE, RESPONSE
from opx.config import load_settings
from opx.domain.errors import ErrorCode, OpxError
from opx.domain.hypothesis import Evidence, Hypothesis, RootCause
from opx.domain.incident import EvidenceBundle, Incident, Severity
from opx.durability.sqlite_store import SqliteExecutionStore
from opx.graph.build import GraphDeps
from opx.reasoning.pricing import load_pricing
from opx.runtime.execute import execute
from opx.runtime.intake import Accepted
from opx.tools.memory import InMemoryTools


class Crash(BaseException):
    """Stands for the process dying (not an ordinary exception the runner would contain)."""


class ScriptedBackend:
    name = "scripted"

    def __init__(
        self,
        causes: dict[str, str | None],
        *,
        fail: set[str] = frozenset(),
        crash: set[str] = frozenset(),
        jitter: bool = False,
    ) -> None:
        self.causes, self.fail, self.crash, self.jitter = causes, set(fail), set(crash), jitter
        self.calls: Counter[str] = Counter()
        self.priors: dict[str, list[str]] = {}

    def version_of(self, agent_id: str) -> str:
        return "scripted/1"

    def model_of(self, agent_id: str) -> str:
        return "local-analyst"

    async def invoke(self, agent_id: str, ctx: AgentContext, attempt: int) -> AgentOutput:
        self.calls[agent_id] += 1
        self.priors[agent_id] = sorted(ctx.prior)
        if self.jitter:
            await asyncio.sleep(random.random() / 50)
        if agent_id in self.crash:
            raise Crash(agent_id)
        if agent_id in self.fail:
            raise OpxError(ErrorCode.INVALID_INPUT, f"{agent_id} cannot run")
        cause = self.causes.get(agent_id)
        hypothesis = Hypothesis(
            agent_id=agent_id,
            root_cause=RootCause(service=cause) if cause else None,
            confidence=0.8 if cause else 0.0,
            evidence=[Evidence(tool="get_metrics", summary="x")],
        )
        return AgentOutput(hypothesis, model="local-analyst")


def accepted() -> Accepted:
    start = datetime(2026, 10, 1, 10, tzinfo=UTC)
    return Accepted(
        Incident(
            incident_id="INC-7",
            service="front",
            severity=Severity.SEV2,
            window_start=start,
            window_end=start + timedelta(minutes=30),
            evidence_bundle=EvidenceBundle(evidence_id="e"),
        )
    )


@pytest.fixture
async def saver(tmp_path: Path) -> AsyncIterator[AsyncSqliteSaver]:
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "cp.sqlite")) as s:
        yield s


def deps(backend: ScriptedBackend, tmp_path: Path) -> GraphDeps:
    settings = replace(load_settings({}, data_dir=tmp_path), retry_base_delay_s=0.0)
    return GraphDeps(
        tools=InMemoryTools("t"), backend=backend, settings=settings, pricing=load_pricing()
    )


async def run(backend: ScriptedBackend, tmp_path: Path, saver: AsyncSqliteSaver) -> Any:
    store = SqliteExecutionStore(tmp_path / "ex.sqlite")
    return await execute(accepted(), deps=deps(backend, tmp_path), store=store, checkpointer=saver)


AGREE = dict.fromkeys(ALL_AGENTS, "db")


async def test_full_run_orders_trace_and_names_the_root_cause(
    tmp_path: Path, saver: AsyncSqliteSaver
) -> None:
    backend = ScriptedBackend(AGREE)
    result = (await run(backend, tmp_path, saver)).result
    assert result.status == "COMPLETED" and result.recommendation.root_cause.service == "db"
    nodes = [t.node for t in result.execution_trace]
    assert nodes == [
        "entry",
        "budget_check",
        *CORE_AGENTS,
        KNOWLEDGE,
        RESPONSE,
        "consensus",
        "cost_guardian",
        "finalize",
    ]
    assert list(result.hypotheses) == sorted(ALL_AGENTS)
    assert backend.priors[KNOWLEDGE] == list(CORE_AGENTS)
    assert backend.priors[RESPONSE] == sorted([*CORE_AGENTS, KNOWLEDGE])
    assert backend.priors["signal-intelligence"] == []
    assert result.cost.total_usd == 0.0 and not result.cost.cost_unknown


async def test_parallel_completion_order_does_not_change_the_result(tmp_path: Path) -> None:
    outputs = []
    for i in range(4):
        async with AsyncSqliteSaver.from_conn_string(str(tmp_path / f"cp{i}.sqlite")) as s:
            store = SqliteExecutionStore(tmp_path / f"ex{i}.sqlite")
            backend = ScriptedBackend({**AGREE, "change-intelligence": "api"}, jitter=True)
            execution = await execute(
                accepted(), deps=deps(backend, tmp_path), store=store, checkpointer=s
            )
            outputs.append(execution.result.model_dump(mode="json", exclude={"timings"}))
    assert all(o == outputs[0] for o in outputs)


async def test_all_core_agents_failing_short_cuts_to_finalize(
    tmp_path: Path, saver: AsyncSqliteSaver
) -> None:
    backend = ScriptedBackend(AGREE, fail=set(CORE_AGENTS))
    result = (await run(backend, tmp_path, saver)).result
    assert (result.status, result.reason) == ("NO_RECOMMENDATION", "ALL_CORE_AGENTS_FAILED")
    assert backend.calls[KNOWLEDGE] == 0 and backend.calls[RESPONSE] == 0
    assert result.recommendation is None
    assert result.consensus.agreement_level == 0.0
    assert {e["node"] for e in result.errors} == set(CORE_AGENTS)


async def test_one_failed_agent_lowers_completeness_but_still_recommends(
    tmp_path: Path, saver: AsyncSqliteSaver
) -> None:
    backend = ScriptedBackend(AGREE, fail={"historical-pattern"})
    result = (await run(backend, tmp_path, saver)).result
    assert result.status == "COMPLETED"
    assert result.consensus.quality.data_completeness < 1.0
    assert result.hypotheses["historical-pattern"].status == "FAILURE"


async def test_a_repeat_returns_the_stored_result(tmp_path: Path, saver: AsyncSqliteSaver) -> None:
    first = await run(ScriptedBackend(AGREE), tmp_path, saver)
    backend = ScriptedBackend(AGREE)
    second = await run(backend, tmp_path, saver)
    assert second.reused and second.result == first.result
    assert sum(backend.calls.values()) == 0


async def test_crash_mid_fan_out_resumes_without_rerunning_finished_agents(
    tmp_path: Path, saver: AsyncSqliteSaver
) -> None:
    crashing = ScriptedBackend(AGREE, crash={"risk-blast-radius"})
    with pytest.raises(Crash):
        await run(crashing, tmp_path, saver)
    assert crashing.calls["signal-intelligence"] == 1
    resumed = ScriptedBackend(AGREE)
    execution = await run(resumed, tmp_path, saver)
    assert execution.result.status == "COMPLETED" and not execution.reused
    # The three core agents that finished before the crash are not paid for again.
    assert resumed.calls["risk-blast-radius"] == 1
    for agent in ("signal-intelligence", "historical-pattern", "change-intelligence"):
        assert resumed.calls[agent] == 0, agent
    assert resumed.calls[KNOWLEDGE] == 1 and resumed.calls[RESPONSE] == 1
    assert [t.node for t in execution.result.execution_trace].count("signal-intelligence") == 1
