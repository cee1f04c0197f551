"""The composition root: builds the adapters that settings choose (store, tools, backend)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from opx.agents.selection import make_backend
from opx.config import ConfigError, Settings
from opx.domain.incident import Incident
from opx.durability.dynamodb import DynamoDBSaver
from opx.durability.dynamodb_executions import DynamoDBExecutionStore
from opx.durability.dynamodb_io import make_client
from opx.durability.sqlite_store import SqliteExecutionStore
from opx.durability.store import ExecutionStore, StoreUnavailable
from opx.graph.build import GraphDeps
from opx.reasoning.pricing import load_pricing
from opx.runtime.killswitch import KillSwitch
from opx.security.readonly import guard, store_policy
from opx.tools.base import TelemetryTools
from opx.tools.bundle import load_bundle

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class Runtime:
    deps: GraphDeps
    store: ExecutionStore
    checkpointer: BaseCheckpointSaver[Any]


def _dynamodb_client(settings: Settings) -> DynamoDBClient:
    """A store client: boto3 reads region, profile and endpoint (AWS_ENDPOINT_URL_DYNAMODB)
    from the standard SDK configuration, and a hook refuses any write outside the two tables."""
    client = make_client()
    return guard(client, store_policy(settings.checkpoint_table, settings.results_table))


def _require_table(client: DynamoDBClient, table: str) -> None:
    try:
        client.describe_table(TableName=table)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise StoreUnavailable(
                f"DynamoDB table {table} does not exist (the infrastructure creates it)"
            ) from exc
        raise StoreUnavailable(f"DynamoDB table {table}: {code}: {exc}") from exc
    except BotoCoreError as exc:
        raise StoreUnavailable(f"DynamoDB is unreachable: {exc}") from exc


def open_store(settings: Settings) -> ExecutionStore:
    """The execution store that ``OPX_STORE`` names."""
    if settings.store_backend == "dynamodb":
        client = _dynamodb_client(settings)
        _require_table(client, settings.results_table)
        return DynamoDBExecutionStore(settings.results_table, client=client)
    return SqliteExecutionStore(settings.executions_db)


@asynccontextmanager
async def open_checkpointer(settings: Settings) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The checkpoint saver that ``OPX_STORE`` names, closed when the block ends."""
    if settings.store_backend == "dynamodb":
        client = _dynamodb_client(settings)
        _require_table(client, settings.checkpoint_table)
        with DynamoDBSaver(settings.checkpoint_table, client=client) as saver:
            yield saver
        return
    try:
        settings.checkpoint_db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(f"cannot create {settings.checkpoint_db.parent}: {exc}") from exc
    async with AsyncSqliteSaver.from_conn_string(str(settings.checkpoint_db)) as saver:
        yield saver


def open_tools(
    settings: Settings,
    bundle: Path | None,
    *,
    incident: Incident | None = None,
    env: Mapping[str, str] | None = None,
) -> TelemetryTools:
    """The telemetry ``OPX_TELEMETRY`` names: a bundle directory; the AWS account (configured
    by ``env``: ``OPX_AWS_CONFIG``, ``OPX_REDACTION_KEY``, the region), knowing the incident's
    service and reading the service graph over its window; or the tools Lambda
    ``OPX_TOOLS_FUNCTION``, told the same incident service and window with every call."""
    if settings.telemetry_backend == "aws":
        return _aws_tools(env or {}, incident)
    if settings.telemetry_backend == "lambda":
        return _lambda_tools(settings, env or {}, incident)
    if bundle is None:
        raise ConfigError("OPX_TELEMETRY=bundle needs a telemetry bundle directory")
    return load_bundle(bundle)


def _aws_tools(env: Mapping[str, str], incident: Incident | None) -> TelemetryTools:
    from opx.tools.aws import AwsTelemetrySource, load_aws_settings  # noqa: PLC0415 (boto3)
    from opx.tools.aws.mapping import MappingError  # noqa: PLC0415

    try:
        aws = load_aws_settings(env)
    except MappingError as exc:
        raise ConfigError(str(exc)) from exc
    if incident is None:
        return AwsTelemetrySource(aws)
    window = (incident.window_start, incident.window_end)
    return AwsTelemetrySource(aws, services=[incident.service], graph_window=window)


def _lambda_tools(
    settings: Settings, env: Mapping[str, str], incident: Incident | None
) -> TelemetryTools:
    from opx.tools.aws.clients import region_from  # noqa: PLC0415 (boto3)
    from opx.tools.lambda_payloads import session_attributes  # noqa: PLC0415
    from opx.tools.lambda_source import LambdaTelemetrySource, lambda_client  # noqa: PLC0415

    function = settings.tools_function
    if function is None:
        raise ConfigError("OPX_TELEMETRY=lambda needs OPX_TOOLS_FUNCTION")
    session = (
        session_attributes(incident.service, incident.window_start, incident.window_end)
        if incident is not None
        else {}
    )
    client = lambda_client(function, region=region_from(env))
    return LambdaTelemetrySource(function, client, session=session)


def make_deps(
    settings: Settings, tools: TelemetryTools, kill_switch: KillSwitch | None = None
) -> GraphDeps:
    deps = GraphDeps(
        tools=tools, backend=make_backend(settings), settings=settings, pricing=load_pricing()
    )
    return deps if kill_switch is None else replace(deps, agent_stopped=kill_switch.stops)


@asynccontextmanager
async def open_runtime(
    settings: Settings, tools: TelemetryTools, kill_switch: KillSwitch | None = None
) -> AsyncIterator[Runtime]:
    """Open the store and the checkpointer for one command; both close when it ends."""
    store = open_store(settings)
    deps = make_deps(settings, tools, kill_switch)
    async with open_checkpointer(settings) as saver:
        yield Runtime(deps, store, saver)
