"""Test doubles for whole executions: a scripted, thread-safe backend and its graph deps."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opx.agents.base import AgentContext, AgentOutput
from opx.agents.roster import ALL_AGENTS
from opx.config import load_settings
from opx.domain.errors import ErrorCode, OpxError
from opx.domain.hypothesis import Evidence, Hypothesis, Recommendation, RootCause
from opx.domain.incident import EvidenceBundle, Incident, Severity
from opx.graph.build import GraphDeps
from opx.reasoning.pricing import load_pricing
from opx.runtime.execute import Execution
from opx.runtime.intake import Accepted
from opx.tools.memory import InMemoryTools

# A step of an agent's script, one per attempt: "ok" answers, "hang" never returns (the runner's
# deadline or the caller's cancels it), an ErrorCode raises it (retryable as the code says), and
# (code, retryable) raises it with retryable set explicitly.
Step = str | ErrorCode | tuple[ErrorCode, bool]
AGREE: dict[str, str | None] = dict.fromkeys(ALL_AGENTS, "db")
PRICED_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"


class ScriptedBackend:
    """Answers each agent from ``causes``, following a per-agent script of attempts."""

    name = "scripted"

    def __init__(
        self,
        causes: Mapping[str, str | None] | None = None,
        *,
        scripts: Mapping[str, Sequence[Step]] | None = None,
        model: str = "local-analyst",
        tokens: tuple[int, int] = (0, 0),
        delay_s: float = 0.0,
        on_invoke: Callable[[str], None] | None = None,
    ) -> None:
        self.causes = dict(AGREE if causes is None else causes)
        self.scripts = {a: list(s) for a, s in (scripts or {}).items()}
        self.model, self.tokens, self.delay_s, self.on_invoke = model, tokens, delay_s, on_invoke
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def version_of(self, agent_id: str) -> str:
        return "scripted/1"

    def model_of(self, agent_id: str) -> str:
        return self.model

    async def invoke(self, agent_id: str, ctx: AgentContext, attempt: int) -> AgentOutput:
        with self._lock:
            self.calls[agent_id] += 1
        if self.on_invoke is not None:
            self.on_invoke(agent_id)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        script = self.scripts.get(agent_id, [])
        step = script[attempt - 1] if attempt <= len(script) else "ok"
        if step == "hang":
            await asyncio.get_running_loop().create_future()
        if isinstance(step, ErrorCode):
            raise OpxError(step, f"{agent_id} attempt {attempt}: {step.value}")
        if isinstance(step, tuple):
            code, retryable = step
            raise OpxError(code, f"{agent_id} attempt {attempt}", retryable=retryable)
        return AgentOutput(
            self.hypothesis(agent_id),
            input_tokens=self.tokens[0],
            output_tokens=self.tokens[1],
            model=self.model,
        )

    def hypothesis(self, agent_id: str) -> Hypothesis:
        cause = self.causes.get(agent_id)
        return Hypothesis(
            agent_id=agent_id,
            agent_version="scripted/1",
            root_cause=RootCause(service=cause) if cause else None,
            confidence=0.8 if cause else 0.0,
            evidence=[Evidence(tool="get_metrics", summary=f"{agent_id} saw {cause}")],
            recommendations=[Recommendation(type="INVESTIGATION", description=f"look at {cause}")],
        )


def accepted(incident_id: str = "INC-7", budget_usd: float = 5.0) -> Accepted:
    start = datetime(2026, 10, 1, 10, tzinfo=UTC)
    return Accepted(
        Incident(
            incident_id=incident_id,
            service="front",
            severity=Severity.SEV2,
            window_start=start,
            window_end=start + timedelta(minutes=30),
            evidence_bundle=EvidenceBundle(evidence_id="e"),
            budget_usd=budget_usd,
        )
    )


def make_deps(
    backend: Any, data_dir: Path, env: Mapping[str, str] | None = None, **settings: Any
) -> GraphDeps:
    base = load_settings(dict(env or {}), data_dir=data_dir)
    return GraphDeps(
        tools=InMemoryTools("t"),
        backend=backend,
        settings=replace(base, retry_base_delay_s=0.0, **settings),
        pricing=load_pricing(),
    )


def deliver_at_once(
    n: int, one: Callable[[threading.Barrier], Awaitable[Execution]]
) -> list[Execution]:
    """``n`` deliveries on ``n`` threads, each in its own event loop; ``one`` waits on the
    barrier just before it claims, so every worker claims at the same moment."""
    barrier = threading.Barrier(n)
    runs: list[Execution] = []
    lock = threading.Lock()

    def worker() -> None:
        execution = asyncio.run(one(barrier))
        with lock:
            runs.append(execution)

    workers = [threading.Thread(target=worker) for _ in range(n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    return runs


def assert_exactly_one_ran(runs: Sequence[Execution], backend: ScriptedBackend) -> None:
    """One delivery ran the execution; every other saw IN_PROGRESS or its identical result."""
    ran = [r for r in runs if not r.reused and r.result.status != "IN_PROGRESS"]
    assert len(ran) == 1 and ran[0].result.status == "COMPLETED"
    for other in runs:
        if other is not ran[0]:
            assert other.result.status == "IN_PROGRESS" or (
                other.reused and other.result == ran[0].result
            )
    assert backend.calls == dict.fromkeys(ALL_AGENTS, 1)
