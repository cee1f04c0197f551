"""Test-only driver for the crash tests: one real execution of an incident event, with every agent
call logged to a file, and the process killed with SIGKILL at a chosen point.

    python -m tests.durability.crash_driver EVENT --data-dir D --calls FILE
        [--kill step:N | --kill before-first | --kill half] [--later SECONDS]

``step:N`` dies right after the checkpoint of graph step N is saved (a node boundary);
``before-first`` dies after the claim, before any checkpoint; ``half`` holds two core agents in
progress and dies once the other two have saved their output. ``--later`` runs with the clock
that many seconds ahead (a delivery after the dead holder's lease expired). Prints the execution
as JSON on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from opx.agents.backend import ReasoningBackend
from opx.agents.base import AgentContext, AgentOutput
from opx.agents.roster import RISK, SIGNAL
from opx.config import load_settings
from opx.runtime.execute import execute
from opx.runtime.intake import Accepted, parse_event
from opx.runtime.wiring import make_deps, open_store, open_tools

HELD = (SIGNAL, RISK)  # in progress when the "half" crash comes


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class LoggingBackend:
    """The real backend, with a line per agent start and finish appended to ``calls``."""

    def __init__(self, inner: ReasoningBackend, calls: Path, hold: Sequence[str]) -> None:
        self.inner, self.calls, self.hold = inner, calls, tuple(hold)
        self.name = inner.name

    def version_of(self, agent_id: str) -> str:
        return self.inner.version_of(agent_id)

    def model_of(self, agent_id: str) -> str:
        return self.inner.model_of(agent_id)

    async def invoke(self, agent_id: str, ctx: AgentContext, attempt: int) -> AgentOutput:
        self._log("start", agent_id)
        if agent_id in self.hold:
            await asyncio.sleep(3600)  # still working when the process dies
        output = await self.inner.invoke(agent_id, ctx, attempt)
        self._log("finish", agent_id)
        return output

    def _log(self, what: str, agent_id: str) -> None:
        with self.calls.open("a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()} {what} {agent_id}\n")


class KillingSaver(AsyncSqliteSaver):
    """The SQLite checkpointer, dying at the chosen point once what precedes it is saved."""

    kill: str = ""
    saved_outputs = 0

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        if self.kill == "before-first":
            die()
        saved = await super().aput(config, checkpoint, metadata, new_versions)
        if self.kill == f"step:{metadata.get('step')}":
            die()
        return saved

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await super().aput_writes(config, writes, task_id, task_path)
        if self.kill == "half" and any(channel == "hypotheses" for channel, _ in writes):
            self.saved_outputs += 1
            if self.saved_outputs == 2:
                die()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    event = Path(args.event)
    accepted = parse_event(event.read_bytes())
    assert isinstance(accepted, Accepted)
    settings = load_settings(data_dir=Path(args.data_dir))
    deps = make_deps(settings, open_tools(settings, event.parent / "bundle"))
    hold = HELD if args.kill == "half" else ()
    deps = replace(deps, backend=LoggingBackend(deps.backend, Path(args.calls), hold))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with KillingSaver.from_conn_string(str(settings.checkpoint_db)) as saver:
        assert isinstance(saver, KillingSaver)
        saver.kill = args.kill or ""
        execution = await execute(
            accepted,
            deps=deps,
            store=open_store(settings),
            checkpointer=saver,
            clock=lambda: time.time() + args.later,
        )
    return {
        "result": execution.result.model_dump(mode="json"),
        "reused": execution.reused,
        "resumed": execution.resumed,
        "attempt": execution.attempt,
        "pid": os.getpid(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("event")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--calls", required=True)
    parser.add_argument("--kill", default=None)
    parser.add_argument("--later", type=float, default=0.0)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
