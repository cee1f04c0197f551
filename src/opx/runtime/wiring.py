"""The composition root: builds the adapters that settings choose (store, tools, backend)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from opx.agents.analysts import local_analysts
from opx.agents.backend import LocalBackend
from opx.config import ConfigError, Settings
from opx.durability.sqlite_store import SqliteExecutionStore
from opx.durability.store import ExecutionStore, StoreUnavailable
from opx.graph.build import GraphDeps
from opx.reasoning.pricing import load_pricing
from opx.tools.base import TelemetryTools
from opx.tools.bundle import load_bundle


@dataclass(frozen=True)
class Runtime:
    deps: GraphDeps
    store: ExecutionStore
    checkpointer: AsyncSqliteSaver


def open_store(settings: Settings) -> ExecutionStore:
    if settings.store_backend != "sqlite":
        raise ConfigError(f"OPX_STORE={settings.store_backend} is not available in this build")
    return SqliteExecutionStore(settings.executions_db)


def open_tools(settings: Settings, bundle: Path) -> TelemetryTools:
    if settings.telemetry_backend != "bundle":
        raise ConfigError(f"OPX_TELEMETRY={settings.telemetry_backend} is not available here")
    return load_bundle(bundle)


def make_deps(settings: Settings, tools: TelemetryTools) -> GraphDeps:
    if settings.agent_backend != "local":
        raise ConfigError(f"OPX_AGENT_BACKEND={settings.agent_backend} is not available here")
    lookback = timedelta(hours=settings.baseline_lookback_hours)
    backend = LocalBackend(local_analysts(lookback))
    return GraphDeps(tools=tools, backend=backend, settings=settings, pricing=load_pricing())


@asynccontextmanager
async def open_runtime(settings: Settings, tools: TelemetryTools) -> AsyncIterator[Runtime]:
    """Open the store and the checkpointer for one command; both close when it ends."""
    store = open_store(settings)
    deps = make_deps(settings, tools)
    try:
        settings.checkpoint_db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(f"cannot create {settings.checkpoint_db.parent}: {exc}") from exc
    async with AsyncSqliteSaver.from_conn_string(str(settings.checkpoint_db)) as saver:
        yield Runtime(deps, store, saver)
