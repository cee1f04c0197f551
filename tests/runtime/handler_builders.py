"""Builders for handler tests: events, invocations over a scripted backend, EMF parsing."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from opx.agents.base import AgentContext, AgentOutput
from opx.config import load_settings
from opx.graph.build import GraphDeps
from opx.runtime.killswitch import KillSwitch
from opx.runtime.lambda_handler import Invocation, handle
from opx.tools.memory import InMemoryTools
from tests.runtime.builders import ScriptedBackend


def incident_event(incident_id: str = "INC-7", budget_usd: float = 5.0) -> dict[str, Any]:
    return {
        "version": "0",
        "source": "opx.incident",
        "detail-type": "IncidentCreated",
        "detail": {
            "incident_id": incident_id,
            "service": "front",
            "severity": "SEV2",
            "window_start": "2026-10-01T10:00:00Z",
            "window_end": "2026-10-01T10:30:00Z",
            "evidence_bundle": {"evidence_id": "e"},
            "budget_usd": budget_usd,
        },
    }


@dataclass
class Harness:
    """One data directory, one scripted backend, invocations with captured output."""

    data_dir: Path
    backend: Any = field(default_factory=ScriptedBackend)
    env: dict[str, str] = field(default_factory=dict)
    kill_switch: KillSwitch | None = None
    sleeps: list[float] = field(default_factory=list)
    settings_overrides: dict[str, Any] = field(default_factory=dict)
    out: io.StringIO = field(default_factory=io.StringIO)

    def invocation(self, **kw: Any) -> Invocation:
        base = load_settings(self.env, data_dir=self.data_dir)
        settings = replace(
            base, **{"retry_base_delay_s": 0.0, "deadline_margin_s": 0.0, **self.settings_overrides}
        )

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        def customize(deps: GraphDeps) -> GraphDeps:
            return replace(deps, backend=self.backend, sleep=sleep)

        self.out = io.StringIO()
        values: dict[str, Any] = {
            "settings": settings,
            "out": self.out,
            "publish": False,
            "tools": InMemoryTools("t"),
            "customize": customize,
            "kill_switch": self.kill_switch,
        }
        values.update(kw)
        return Invocation(**values)

    def run(self, event: Any, remaining_ms: float = 600_000, **kw: Any) -> dict[str, Any]:
        return asyncio.run(handle(event, remaining_ms, self.invocation(**kw)))


def emf_records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if '"_aws"' in line]


@dataclass(frozen=True)
class Emitted:
    name: str
    unit: str
    dimensions: dict[str, str]
    value: float
    namespace: str


def emitted(text: str) -> list[Emitted]:
    """Every metric in the EMF lines, with its unit, its dimension values and its value."""
    found = []
    for record in emf_records(text):
        (directive,) = record["_aws"]["CloudWatchMetrics"]
        (dimension_set,) = directive["Dimensions"]
        dims = {name: record[name] for name in dimension_set}
        for metric in directive["Metrics"]:
            found.append(
                Emitted(
                    metric["Name"],
                    metric["Unit"],
                    dims,
                    record[metric["Name"]],
                    directive["Namespace"],
                )
            )
    return found


class GatedBackend(ScriptedBackend):
    """Hangs ``blocked`` agents while ``open`` is False (the deadline then stops the run)."""

    def __init__(self, blocked: set[str], **kw: Any) -> None:
        super().__init__(**kw)
        self.blocked = blocked
        self.open = False

    async def invoke(self, agent_id: str, ctx: AgentContext, attempt: int) -> AgentOutput:
        if agent_id in self.blocked and not self.open:
            with self._lock:
                self.calls[agent_id] += 1
            await asyncio.get_running_loop().create_future()
        return await super().invoke(agent_id, ctx, attempt)
