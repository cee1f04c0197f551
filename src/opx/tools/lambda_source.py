"""Telemetry read through the tools Lambda (``OPX_TELEMETRY=lambda``): each tool call is one
synchronous ``lambda:Invoke`` of the action-group function, so the caller needs no telemetry
permission of its own, only the right to invoke that one function.

Every failure (a function error, throttling, a timeout, an answer that is not a tool result, a
refused call) comes back as a FAILED :class:`~opx.domain.tool_result.ToolResult` with a canonical
code; nothing here raises for a failed read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from opx.domain.errors import ErrorCode, OpxError
from opx.domain.tool_result import ToolResult
from opx.security.readonly import guard, tools_lambda_policy
from opx.tools.action_groups import BadParameter
from opx.tools.aws.calls import aws_error_code
from opx.tools.lambda_payloads import SOURCE, failed, read_answer, tool_event

# The tools Lambda stops each tool at its own deadline (5 s in total by default) and may run up
# to that plus a cold start (its timeout is the longest deadline + 15 s): an answer slower than
# this is not coming. A shorter wait would cut off cold starts.
READ_TIMEOUT_S = 25.0
CONNECT_TIMEOUT_S = 3.0
# Two attempts in all: throttling (Lambda's concurrency limit) and a dropped connection clear
# quickly; more would outlast the agent's deadline.
MAX_ATTEMPTS = 2


def lambda_client(
    function: str,
    *,
    region: str | None = None,
    read_timeout_s: float = READ_TIMEOUT_S,
    session: Any | None = None,
) -> Any:
    """A Lambda client (endpoint, credentials and region from the standard SDK settings, e.g.
    ``AWS_ENDPOINT_URL_LAMBDA``) that may only invoke ``function`` synchronously."""
    if session is None:
        import boto3  # noqa: PLC0415 (boto3 only where AWS is used)

        session = boto3.session.Session()
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=read_timeout_s,
        retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
    )
    client = session.client("lambda", config=config, region_name=region)
    return guard(client, tools_lambda_policy(function))


class LambdaTelemetrySource:
    """The :class:`~opx.tools.base.TelemetryTools` of the tools Lambda ``function``; ``session``
    holds the incident's service and window (see
    :func:`~opx.tools.lambda_payloads.session_attributes`), sent with every call."""

    def __init__(
        self,
        function: str,
        client: Any,
        *,
        session: Mapping[str, str] | None = None,
        metric_directions: Mapping[str, str] | None = None,
    ) -> None:
        self._function = function
        self._client = client
        self._session = dict(session or {})
        self._directions = dict(metric_directions or {})

    @property
    def source_name(self) -> str:
        return SOURCE

    @property
    def metric_directions(self) -> dict[str, str]:
        # The Lambda has no tool for them; only what the caller was configured with.
        return dict(self._directions)

    def _call(self, tool: str, **values: object) -> ToolResult:
        try:
            event = tool_event(tool, values, self._session)
        except BadParameter as exc:
            return failed(ErrorCode.INVALID_INPUT, f"{tool}: {exc}")
        try:
            answer = self._client.invoke(
                FunctionName=self._function,
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode("utf-8"),
            )
            payload = answer["Payload"].read()
        except (BotoCoreError, ClientError, OpxError, OSError) as exc:
            return failed(aws_error_code(exc), f"{tool} through {self._function}: {exc}")
        return read_answer(tool, payload, answer.get("FunctionError"))

    def list_metrics(self, service: str | None = None, next_token: str | None = None) -> ToolResult:
        return self._call("list_metrics", service=service, next_token=next_token)

    def get_metrics(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        metric: str | None = None,
        stat: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult:
        if stat is not None:
            # The tool names one statistic only through a series id, service|metric|stat.
            if service is None or metric is None:
                return failed(
                    ErrorCode.INVALID_INPUT, "get_metrics: a stat needs a service and a metric"
                )
            metric = f"{service}|{metric}|{stat}"
        return self._call(
            "get_metrics",
            start=start,
            end=end,
            service=service,
            metric=metric,
            next_token=next_token,
        )

    def search_logs(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        pattern: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult:
        return self._call(
            "search_logs",
            start=start,
            end=end,
            service=service,
            pattern=pattern,
            next_token=next_token,
        )

    def get_traces(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        errors_only: bool = False,
        next_token: str | None = None,
    ) -> ToolResult:
        return self._call(
            "get_traces",
            start=start,
            end=end,
            service=service,
            errors_only=errors_only,
            next_token=next_token,
        )

    def get_service_graph(self, next_token: str | None = None) -> ToolResult:
        return self._call("get_service_graph", next_token=next_token)

    def get_traffic(
        self, service: str, start: datetime, end: datetime, next_token: str | None = None
    ) -> ToolResult:
        return self._call(
            "get_traffic", service=service, start=start, end=end, next_token=next_token
        )

    def list_deployments(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult:
        return self._call(
            "list_deployments", start=start, end=end, service=service, next_token=next_token
        )

    def list_config_changes(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult:
        return self._call(
            "list_config_changes", start=start, end=end, service=service, next_token=next_token
        )

    def search_incidents(
        self, service: str | None = None, text: str | None = None, limit: int = 10
    ) -> ToolResult:
        return self._call("search_incidents", service=service, text=text, limit=limit)

    def get_resolution(self, incident_id: str) -> ToolResult:
        return self._call("get_resolution", incident_id=incident_id)

    def retrieve_knowledge(self, query: str, limit: int = 5) -> ToolResult:
        return self._call("retrieve_knowledge", query=query, limit=limit)
