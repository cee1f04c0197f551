"""The Lambda entry point: EventBridge → this handler → one execution.

Order: validate the event (a rejected event costs no AWS call) → kill switch → execution id →
run or resume the execution until the invocation's deadline (remaining time minus
``OPX_DEADLINE_MARGIN_S``) → the result is stored by :func:`~opx.runtime.execute.execute`
(conditional write) → metrics → publish → a structured response (see
:mod:`opx.runtime.response`). :mod:`opx.runtime.failure_handler` says which failures are
answered and which are raised for Lambda to retry.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any, Protocol

from opx.config import Settings, load_settings
from opx.delivery.deliver import Delivery, deliver
from opx.delivery.publisher import Publisher, open_publisher
from opx.domain.errors import InputRejected
from opx.domain.result import ExecutionResult
from opx.durability.store import ExecutionStore
from opx.graph.build import GraphDeps
from opx.observability import logs
from opx.observability.emf import EmfWriter
from opx.observability.execution_metrics import execution_lines
from opx.observability.metrics import ERROR_STATUS
from opx.runtime.execute import Execution, execute, skipped
from opx.runtime.failure_handler import (
    INFRASTRUCTURE,
    DeadlineReached,
    error_of,
    infrastructure,
    must_retry,
)
from opx.runtime.intake import MAX_DEPTH, Accepted, parse_event
from opx.runtime.killswitch import KillSwitch, LocalKillSwitch, SsmKillSwitch, ssm_client
from opx.runtime.response import killed, rejected, response_of
from opx.runtime.wiring import make_deps, open_checkpointer, open_store, open_tools
from opx.tools.base import TelemetryTools

Clock = Callable[[], float]


class LambdaContext(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass
class Invocation:
    """What one invocation needs besides the event. ``out`` receives the EMF lines and the
    logs (stdout in Lambda, stderr on the command line). ``customize`` adjusts the graph's
    dependencies (tests give a scripted backend); ``publish`` False skips delivery."""

    settings: Settings
    out: IO[str]
    env: Mapping[str, str] = field(default_factory=dict)
    bundle: Path | None = None
    publish: bool = True
    clock: Clock = time.time
    kill_switch: KillSwitch | None = None
    publisher: Publisher | None = None
    tools: TelemetryTools | None = None
    customize: Callable[[GraphDeps], GraphDeps] | None = None


def handler(event: Any, context: LambdaContext | None = None) -> dict[str, Any]:
    """The Lambda handler (``opx.runtime.lambda_handler.handler``)."""
    settings = load_settings()
    invocation = Invocation(
        settings,
        out=sys.stdout,
        env=os.environ,
        kill_switch=warm_kill_switch(settings),
    )
    return invoke(event, context, invocation)


def invoke(event: Any, context: LambdaContext | None, invocation: Invocation) -> dict[str, Any]:
    """Handle one event as Lambda would: the response, or an exception for Lambda to retry."""
    remaining_ms = float(context.get_remaining_time_in_millis()) if context else 900_000.0
    return asyncio.run(handle(event, remaining_ms, invocation))


@dataclass
class Outcome:
    """What an invocation reports once it ends, however it ends: the result it reached (if
    any), whether it ran agents, and ERROR as the status when it raised."""

    result: ExecutionResult | None = None
    ran: bool = False
    status: str | None = None


async def handle(event: Any, remaining_ms: float, inv: Invocation) -> dict[str, Any]:
    """One invocation. Exactly one Execution/Count is reported, on every path: the result's
    status when it answers (or stops at the deadline), ERROR when it raises otherwise."""
    started = inv.clock()
    logs.bind(inv.out)
    outcome = Outcome()
    try:
        return await _handle(event, remaining_ms, inv, outcome, started)
    except DeadlineReached:
        raise  # counted under its result, INCOMPLETE: the retry resumes it
    except INFRASTRUCTURE as exc:
        outcome.status = ERROR_STATUS
        logs.warning("infrastructure failure", error=type(exc).__name__)
        raise infrastructure(exc) from exc
    except BaseException as exc:
        outcome.status = ERROR_STATUS
        logs.warning("unexpected failure", error=type(exc).__name__)
        raise
    finally:
        _report(inv, outcome, started)


def reject(exc: InputRejected, inv: Invocation, started: float | None = None) -> dict[str, Any]:
    """The answer to an event that cannot be analysed: nothing is read or written."""
    begun = inv.clock() if started is None else started
    logs.bind(inv.out)
    outcome = Outcome()
    response = _rejection(exc, outcome)
    _report(inv, outcome, begun)
    return response


async def _handle(
    event: Any, remaining_ms: float, inv: Invocation, outcome: Outcome, started: float
) -> dict[str, Any]:
    try:
        parsed = parse_event(_as_document(event))
    except InputRejected as exc:
        return _rejection(exc, outcome)
    logs.bind(inv.out, parsed.execution_id)
    if not isinstance(parsed, Accepted):
        logs.info("alarm not firing", state=parsed.state, incident_id=parsed.incident_id)
        outcome.result = skipped(parsed).result
        return response_of(outcome.result, None)
    return await _analyse(parsed, remaining_ms, inv, outcome, started)


def _rejection(exc: InputRejected, outcome: Outcome) -> dict[str, Any]:
    logs.warning("event rejected", code=exc.code.value, detail=logs.safe_text(exc.message))
    outcome.result = rejected()
    return response_of(outcome.result, exc.info)


class FakeContext:
    """A Lambda context for local invocations: the time left until ``deadline`` (epoch s)."""

    def __init__(self, deadline: float, clock: Clock = time.time) -> None:
        self._deadline = deadline
        self._clock = clock

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - self._clock()) * 1000), 0)


async def _analyse(
    accepted: Accepted, remaining_ms: float, inv: Invocation, outcome: Outcome, started: float
) -> dict[str, Any]:
    incident = accepted.incident
    switch = inv.kill_switch or warm_kill_switch(inv.settings)
    if switch.stops_all():
        logs.info("kill switch on: not analysed", incident_id=incident.incident_id)
        outcome.result = killed(incident.incident_id, accepted.execution_id)
        return response_of(outcome.result, None)
    deadline = started + remaining_ms / 1000.0 - inv.settings.deadline_margin_s
    # One store for the invocation: the execution and its delivery share the client.
    store = open_store(inv.settings)
    execution = await _execute(accepted, inv, switch, deadline, store)
    result = outcome.result = execution.result
    outcome.ran = not execution.reused and bool(result.hypotheses)
    retry = must_retry(result)
    if retry is not None:
        logs.warning("deadline reached: retry to resume", attempt=execution.attempt)
        raise retry
    response = response_of(result, error_of(result))
    logs.info(
        "execution answered",
        status=result.status.value,
        attempt=execution.attempt,
        reused=execution.reused,
        resumed=execution.resumed,
    )
    if inv.publish and execution.stored:
        await _publish(execution, inv, store)
    return response


async def _execute(
    accepted: Accepted, inv: Invocation, switch: KillSwitch, deadline: float, store: ExecutionStore
) -> Execution:
    settings = inv.settings
    tools = inv.tools or open_tools(settings, inv.bundle, incident=accepted.incident, env=inv.env)
    deps = make_deps(settings, tools, switch)
    if inv.customize is not None:
        deps = inv.customize(deps)
    async with open_checkpointer(settings) as saver:
        return await execute(
            accepted,
            deps=deps,
            store=store,
            checkpointer=saver,
            deadline=deadline,
            bundle=None if inv.bundle is None else str(inv.bundle.resolve()),
            clock=inv.clock,
        )


async def _publish(execution: Execution, inv: Invocation, store: ExecutionStore) -> None:
    publisher = inv.publisher or warm_publisher(
        inv.settings.event_bus, inv.settings.summary_topic_arn
    )
    outcome = deliver(
        execution.result,
        execution.attempt,
        store=store,
        publisher=publisher,
        clock=inv.clock,
    )
    if outcome is not Delivery.NOT_DELIVERED:
        logs.info("delivery", outcome=outcome.value)


def _report(inv: Invocation, outcome: Outcome, started: float) -> None:
    metrics = EmfWriter(inv.settings.metrics_namespace, inv.out, inv.clock)
    duration_ms = (inv.clock() - started) * 1000
    for line in execution_lines(
        outcome.result, duration_ms, ran=outcome.ran, status=outcome.status
    ):
        metrics.write(line.values, dimensions=line.dimensions)


def _as_document(event: Any) -> bytes | str | Mapping[str, Any]:
    """The event as the intake reads it. A mapping is serialised first, so that its size and
    depth are checked exactly like a file's."""
    if isinstance(event, bytes | str):
        return event
    if not isinstance(event, Mapping):
        kind = "null" if event is None else type(event).__name__
        raise InputRejected(f"the event must be a JSON object, not {kind}")
    try:
        return json.dumps(event, allow_nan=False)
    except RecursionError:
        raise InputRejected(f"the event is nested deeper than {MAX_DEPTH} levels") from None
    except (TypeError, ValueError) as exc:
        raise InputRejected(f"the event is not JSON data: {exc}") from None


@cache
def _ssm_switch(parameter: str, agent_path: str) -> KillSwitch:
    # One per warm container, so that its 10 s cache spans invocations.
    return SsmKillSwitch(ssm_client(), parameter, agent_path)


def warm_kill_switch(settings: Settings) -> KillSwitch:
    if settings.kill_switch_source == "ssm":
        return _ssm_switch(settings.kill_switch_parameter, settings.kill_switch_agent_path)
    return LocalKillSwitch(settings.kill_switch_local)


@cache
def warm_publisher(event_bus: str, topic_arn: str | None) -> Publisher:
    return open_publisher(event_bus, topic_arn)
