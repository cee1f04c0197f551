"""Looking back at a recorded attempt: list its checkpoints, replay it from the agent outputs it
recorded (no model or tool call) or re-run its agents, and say what differs from the original.

A replay runs the ordinary graph on a throw-away in-memory checkpoint thread, so the original
attempt's checkpoints and stored result are never touched.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import StateSnapshot

from opx.agents.backend import ReasoningBackend
from opx.agents.base import AgentContext, AgentOutput
from opx.agents.recorded import RecordedBackend, Stall, wait_for_deadline
from opx.config import Settings
from opx.domain.incident import Incident
from opx.domain.result import ExecutionResult
from opx.durability.store import ExecutionRecord, ExecutionStore
from opx.graph.build import GraphDeps, build_graph
from opx.observability.metrics import REPLAY_COUNT
from opx.reasoning.pricing import PricingTable
from opx.runtime.execute import graph_config, graph_input, thread_id
from opx.tools.base import TelemetryTools
from opx.tools.memory import InMemoryTools

T = TypeVar("T")
# The metrics hook: (metric name, value). Each finished replay or re-run counts once.
MetricSink = Callable[[str, float], None]
REPLAY_COUNT_METRIC = REPLAY_COUNT.name
# Everything but the wall-clock timings is compared.
_NOT_COMPARED = {"timings"}
_MISSING: Any = None


class ReplayRejected(Exception):
    """The execution or attempt does not exist, or has nothing to replay (exit code 2)."""


# --- the clock that lets a recorded timeout fire at once -------------------------------------


class ReplayLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock can jump ahead, so a recorded timeout fires without waiting."""

    def __init__(self) -> None:
        super().__init__()
        self._skew = 0.0

    def time(self) -> float:
        return super().time() + self._skew

    def skip(self, seconds: float) -> None:
        self._skew += seconds


def run_in_replay_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a replay (or anything) on a :class:`ReplayLoop`."""
    with asyncio.Runner(loop_factory=ReplayLoop) as runner:
        return runner.run(main)


def skip_to_deadline(settings: Settings) -> Stall:
    """A stall for recorded TIMEOUT attempts: jump the loop's clock past the agent's deadline
    (on a :class:`ReplayLoop`; elsewhere the deadline is waited for in real time)."""

    async def stall(agent_id: str) -> None:
        loop = asyncio.get_running_loop()
        if isinstance(loop, ReplayLoop):
            loop.skip(settings.deadline_for(agent_id) + 1.0)
        await wait_for_deadline(agent_id)

    return stall


async def _no_sleep(seconds: float) -> None:
    return None


# --- counting what goes outside ------------------------------------------------------------


class CountingTools:
    """Passes every tool call through to ``inner`` and counts it (thread-safe: the local analysts
    call tools from worker threads)."""

    def __init__(self, inner: TelemetryTools) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value):
            return value

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls += 1
            return value(*args, **kwargs)

        return counted


class CountingBackend:
    """Passes every agent invocation through to ``inner`` and counts it."""

    def __init__(self, inner: ReasoningBackend) -> None:
        self._inner = inner
        self.name = inner.name
        self.calls = 0

    def version_of(self, agent_id: str) -> str:
        return self._inner.version_of(agent_id)

    def model_of(self, agent_id: str) -> str:
        return self._inner.model_of(agent_id)

    async def invoke(self, agent_id: str, ctx: AgentContext, attempt: int) -> AgentOutput:
        self.calls += 1
        return await self._inner.invoke(agent_id, ctx, attempt)


# --- comparing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    path: str
    original: Any
    replayed: Any


def differences(original: Any, replayed: Any, path: str = "") -> list[Difference]:
    """Where two JSON documents differ, as paths like ``consensus.candidates[0].score``; a value
    missing on one side shows as null."""
    if isinstance(original, dict) and isinstance(replayed, dict):
        found: list[Difference] = []
        for key in sorted(set(original) | set(replayed)):
            child = f"{path}.{key}" if path else str(key)
            found += differences(original.get(key, _MISSING), replayed.get(key, _MISSING), child)
        return found
    if isinstance(original, list) and isinstance(replayed, list):
        found = []
        for i in range(max(len(original), len(replayed))):
            left = original[i] if i < len(original) else _MISSING
            right = replayed[i] if i < len(replayed) else _MISSING
            found += differences(left, right, f"{path}[{i}]")
        return found
    if type(original) is type(replayed) and original == replayed:
        return []
    return [Difference(path or "$", original, replayed)]


def comparable(result: ExecutionResult) -> dict[str, Any]:
    return result.model_dump(mode="json", exclude=_NOT_COMPARED)


@dataclass(frozen=True)
class ReplayReport:
    execution_id: str
    attempt: int
    rerun: bool
    differences: tuple[Difference, ...]
    external_calls: int

    @property
    def identical(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "identical": self.identical,
            "differences": [
                {"path": d.path, "original": d.original, "replayed": d.replayed}
                for d in self.differences
            ],
            "external_calls": self.external_calls,
        }


# --- reading recorded attempts ----------------------------------------------------------------


def resolve_attempt(
    store: ExecutionStore, execution_id: str, attempt: int | None
) -> tuple[ExecutionRecord, int]:
    """The execution's record and the attempt asked for (default: its latest)."""
    record = store.get(execution_id)
    if record is None:
        raise ReplayRejected(f"unknown execution id: {execution_id}")
    chosen = record.attempt if attempt is None else attempt
    if not 1 <= chosen <= record.attempt:
        raise ReplayRejected(
            f"execution {execution_id} has attempts 1 to {record.attempt}; "
            f"there is no attempt {chosen}"
        )
    return record, chosen


def _reader_deps(settings: Settings, pricing: PricingTable, backend: ReasoningBackend) -> GraphDeps:
    return GraphDeps(
        tools=cast(TelemetryTools, CountingTools(InMemoryTools("replay"))),
        backend=backend,
        settings=settings,
        pricing=pricing,
        sleep=_no_sleep,
        rng=random.Random(0),
    )


def _config(record: ExecutionRecord, attempt: int) -> RunnableConfig:
    return graph_config(record.execution_id, attempt, record.incident_id)


@dataclass(frozen=True)
class _Recorded:
    incident: Incident
    result: ExecutionResult
    model: str | None


async def _recorded(
    record: ExecutionRecord,
    attempt: int,
    checkpointer: BaseCheckpointSaver[Any],
    settings: Settings,
    pricing: PricingTable,
) -> _Recorded:
    graph = build_graph(_reader_deps(settings, pricing, RecordedBackend({})), checkpointer)
    values = (await graph.aget_state(_config(record, attempt))).values
    name = f"attempt {attempt} of execution {record.execution_id}"
    if not values:
        raise ReplayRejected(f"{name} has no checkpoints (status {record.status})")
    if "result" not in values:
        raise ReplayRejected(f"{name} has not finished (status {record.status}): nothing to replay")
    stored = record.result if record.result_attempt == attempt else None
    return _Recorded(
        incident=Incident.model_validate(values["incident"]),
        result=stored or ExecutionResult.model_validate(values["result"]),
        model=(values.get("budget") or {}).get("model"),
    )


# --- replaying -------------------------------------------------------------------------------


async def replay(
    store: ExecutionStore,
    checkpointer: BaseCheckpointSaver[Any],
    settings: Settings,
    pricing: PricingTable,
    execution_id: str,
    *,
    attempt: int | None = None,
    rerun: GraphDeps | None = None,
    metrics: MetricSink | None = None,
) -> ReplayReport:
    """Re-execute an attempt and compare it with the original (everything but timings).

    Without ``rerun`` the agents' recorded outputs are played back (zero external calls; run it
    with :func:`run_in_replay_loop` so recorded timeouts do not wait). With ``rerun`` (deps with
    real tools and backend) the agents are called again. Raises :class:`ReplayRejected`."""
    record, chosen = resolve_attempt(store, execution_id, attempt)
    recorded = await _recorded(record, chosen, checkpointer, settings, pricing)
    if rerun is None:
        backend: ReasoningBackend = RecordedBackend(
            recorded.result.hypotheses,
            model=recorded.model,
            stall=skip_to_deadline(settings),
        )
        # Agents the kill switch skipped were not called; the replay skips them the same way.
        killed = frozenset(
            a for a, h in recorded.result.hypotheses.items() if h.status == "SKIPPED"
        )
        deps = replace(_reader_deps(settings, pricing, backend), agent_stopped=killed.__contains__)
        counted = None
    else:
        counted = CountingBackend(rerun.backend)
        deps = replace(
            rerun, tools=cast(TelemetryTools, CountingTools(rerun.tools)), backend=counted
        )
    replayed = await _run_graph(deps, recorded.incident, record, chosen)
    tools = cast(CountingTools, deps.tools)
    report = ReplayReport(
        execution_id=execution_id,
        attempt=chosen,
        rerun=rerun is not None,
        differences=tuple(differences(comparable(recorded.result), comparable(replayed))),
        external_calls=tools.calls + (counted.calls if counted is not None else 0),
    )
    if metrics is not None:
        metrics(REPLAY_COUNT_METRIC, 1.0)
    return report


async def _run_graph(
    deps: GraphDeps, incident: Incident, record: ExecutionRecord, attempt: int
) -> ExecutionResult:
    graph = build_graph(deps, InMemorySaver())
    config: RunnableConfig = {
        "configurable": {
            "thread_id": f"{thread_id(record.execution_id, attempt)}#replay",
            "incident_id": record.incident_id,
        }
    }
    final = await graph.ainvoke(
        graph_input(incident, record.execution_id, attempt), config, durability="sync"
    )
    return ExecutionResult.model_validate(final["result"])


# --- listing checkpoints ---------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointInfo:
    checkpoint_id: str
    step: int
    source: str
    next: tuple[str, ...]
    agents_done: tuple[str, ...]  # agents whose hypothesis is in this checkpoint's state
    saved_writes: tuple[str, ...]  # nodes of the pending step whose writes were already saved
    created_at: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint_id": self.checkpoint_id,
            "step": self.step,
            "source": self.source,
            "next": list(self.next),
            "agents_done": list(self.agents_done),
            "saved_writes": list(self.saved_writes),
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class CheckpointListing:
    execution_id: str
    attempt: int
    thread_id: str
    checkpoints: tuple[CheckpointInfo, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "attempt": self.attempt,
            "thread_id": self.thread_id,
            "checkpoints": [c.to_json() for c in self.checkpoints],
        }


async def list_checkpoints(
    store: ExecutionStore,
    checkpointer: BaseCheckpointSaver[Any],
    settings: Settings,
    pricing: PricingTable,
    execution_id: str,
    *,
    attempt: int | None = None,
) -> CheckpointListing:
    """An attempt's checkpoints, oldest first. Raises :class:`ReplayRejected`."""
    record, chosen = resolve_attempt(store, execution_id, attempt)
    graph = build_graph(_reader_deps(settings, pricing, RecordedBackend({})), checkpointer)
    snapshots = [s async for s in graph.aget_state_history(_config(record, chosen))]
    infos = sorted((_info(s) for s in snapshots), key=lambda c: (c.step, c.checkpoint_id))
    return CheckpointListing(execution_id, chosen, thread_id(execution_id, chosen), tuple(infos))


def _info(snapshot: StateSnapshot) -> CheckpointInfo:
    metadata = snapshot.metadata or {}
    values = snapshot.values if isinstance(snapshot.values, dict) else {}
    return CheckpointInfo(
        checkpoint_id=str(snapshot.config["configurable"]["checkpoint_id"]),
        step=int(metadata.get("step", -1)),
        source=str(metadata.get("source", "")),
        next=tuple(snapshot.next),
        agents_done=tuple(sorted(values.get("hypotheses") or {})),
        saved_writes=tuple(sorted(t.name for t in snapshot.tasks if t.result is not None)),
        created_at=snapshot.created_at,
    )
