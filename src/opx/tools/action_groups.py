"""The Lambda adapter for Bedrock agent action groups: it parses the action-group event (function
details or OpenAPI form), calls the telemetry tool and returns Bedrock's response envelope; and it
exports the typed schema of every tool (``functionSchema`` and OpenAPI) as JSON for the
infrastructure to attach to the agents (``opx schema tools``).

Every tool answer is the tool's :class:`~opx.domain.tool_result.ToolResult` as compact JSON (at
most 10 KB). ``start``/``end`` are ISO-8601 times with a zone; when omitted they default to the
session attributes ``incident_window_start``/``incident_window_end``. A bad parameter is answered
with an ``INVALID_INPUT`` result the model can correct (``REPROMPT``, or HTTP 400).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from opx.domain.errors import ErrorCode
from opx.domain.tool_result import ToolResult
from opx.tools.base import TelemetryTools

MESSAGE_VERSION = "1.0"
# Bedrock's limit on the parameters of one function in an action group.
MAX_FUNCTION_PARAMETERS = 5
ADAPTER_SOURCE = "action-group"
WINDOW_START, WINDOW_END = "incident_window_start", "incident_window_end"
INCIDENT_SERVICE = "incident_service"
JSON_TYPE = "application/json"

Args = dict[str, Any]


class BadParameter(ValueError):
    """A parameter the tool cannot take; the model is asked to correct it."""


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # string | number | integer | boolean (Bedrock's parameter types)
    description: str
    required: bool = False


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    params: tuple[Param, ...]
    call: Callable[[TelemetryTools, Args], ToolResult]


_START = Param(
    "start",
    "string",
    "Start of the time window (ISO-8601 with a zone, inclusive); "
    "defaults to the incident window's start.",
)
_END = Param(
    "end",
    "string",
    "End of the time window (ISO-8601 with a zone, exclusive); "
    "defaults to the incident window's end.",
)
_SERVICE = Param(
    "service",
    "string",
    "Service name exactly as the telemetry names it; omit for every known service.",
)
_TOKEN = Param(
    "next_token",
    "string",
    "Pass back the next_token of the previous answer, unchanged, to read the next page.",
)


def _metrics(tools: TelemetryTools, a: Args) -> ToolResult:
    service, metric, stat = a.get("service"), a.get("metric"), None
    if isinstance(metric, str) and metric.count("|") == 2:
        # A series id from list_metrics: service|metric|stat.
        service, metric, stat = metric.split("|")
    return tools.get_metrics(
        a["start"],
        a["end"],
        service=service,
        metric=metric,
        stat=stat,
        next_token=a.get("next_token"),
    )


TOOL_SPECS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "list_metrics",
        "List the metric series (id, service, metric, stat, unit) available for a service.",
        (_SERVICE, _TOKEN),
        lambda t, a: t.list_metrics(a.get("service"), next_token=a.get("next_token")),
    ),
    ToolSpec(
        "get_metrics",
        "Read metric points (GetMetricData shape) of a time window, optionally one metric. "
        "Compare the incident window with an earlier baseline window.",
        (
            _START,
            _END,
            _SERVICE,
            Param(
                "metric",
                "string",
                "A metric name, or a series id service|metric|stat from list_metrics.",
            ),
            _TOKEN,
        ),
        _metrics,
    ),
    ToolSpec(
        "get_traffic",
        "Read the request, error, latency and availability series of a service's front door.",
        (Param("service", "string", "Service name.", required=True), _START, _END, _TOKEN),
        lambda t, a: t.get_traffic(
            a["service"], a["start"], a["end"], next_token=a.get("next_token")
        ),
    ),
    ToolSpec(
        "search_logs",
        "Search log events of a time window, optionally containing a text (plain, ignoring "
        "case where the source allows). Personal data is redacted.",
        (
            _START,
            _END,
            _SERVICE,
            Param("pattern", "string", "Plain text the message must contain."),
            _TOKEN,
        ),
        lambda t, a: t.search_logs(
            a["start"],
            a["end"],
            service=a.get("service"),
            pattern=a.get("pattern"),
            next_token=a.get("next_token"),
        ),
    ),
    ToolSpec(
        "get_traces",
        "Read trace spans of a time window (error = 4xx, fault = 5xx).",
        (
            _START,
            _END,
            _SERVICE,
            Param("errors_only", "boolean", "Only spans with an error or a fault."),
            _TOKEN,
        ),
        lambda t, a: t.get_traces(
            a["start"],
            a["end"],
            service=a.get("service"),
            errors_only=bool(a.get("errors_only", False)),
            next_token=a.get("next_token"),
        ),
    ),
    ToolSpec(
        "get_service_graph",
        "Read the service graph: nodes and edges, an edge meaning source calls target.",
        (_TOKEN,),
        lambda t, a: t.get_service_graph(next_token=a.get("next_token")),
    ),
    ToolSpec(
        "list_deployments",
        "List deployments in a time window, each with its resource and service.",
        (_START, _END, _SERVICE, _TOKEN),
        lambda t, a: t.list_deployments(
            a["start"], a["end"], service=a.get("service"), next_token=a.get("next_token")
        ),
    ),
    ToolSpec(
        "list_config_changes",
        "List configuration and infrastructure changes in a time window.",
        (_START, _END, _SERVICE, _TOKEN),
        lambda t, a: t.list_config_changes(
            a["start"], a["end"], service=a.get("service"), next_token=a.get("next_token")
        ),
    ),
    ToolSpec(
        "search_incidents",
        "Search past incidents of a service (its own or as root cause), newest first.",
        (
            _SERVICE,
            Param("text", "string", "Words to match in titles and symptoms."),
            Param("limit", "integer", "How many at most (1-50, default 10)."),
        ),
        lambda t, a: t.search_incidents(a.get("service"), a.get("text"), a.get("limit", 10)),
    ),
    ToolSpec(
        "get_resolution",
        "Read how a past incident was resolved.",
        (Param("incident_id", "string", "The incident id from search_incidents.", required=True),),
        lambda t, a: t.get_resolution(a["incident_id"]),
    ),
    ToolSpec(
        "retrieve_knowledge",
        "Retrieve runbook and postmortem excerpts relevant to a question, best first.",
        (
            Param("query", "string", "What to look for.", required=True),
            Param("limit", "integer", "How many at most (1-10, default 5)."),
        ),
        lambda t, a: t.retrieve_knowledge(a["query"], a.get("limit", 5)),
    ),
)
TOOLS: Mapping[str, ToolSpec] = {spec.name: spec for spec in TOOL_SPECS}
_TIMES = ("start", "end")
_TYPE_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "string": "an ISO-8601 time",
}


# -- schemas -----------------------------------------------------------------------------------


def function_schema() -> dict[str, Any]:
    """The ``functionSchema`` of an action group holding every tool."""
    return {
        "functions": [
            {
                "name": spec.name,
                "description": spec.description,
                "parameters": {
                    p.name: {"type": p.type, "description": p.description, "required": p.required}
                    for p in spec.params
                },
                "requireConfirmation": "DISABLED",
            }
            for spec in TOOL_SPECS
        ]
    }


_RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A tool result of at most 10 KB.",
    "properties": {
        "status": {"type": "string", "enum": ["SUCCESS", "PARTIAL", "FAILED"]},
        "data": {"type": "object", "description": "The answer (shape per tool)."},
        "truncated": {"type": "boolean"},
        "source": {"type": "string"},
        "next_token": {"type": "string", "nullable": True},
        "error": {
            "type": "object",
            "nullable": True,
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}


def openapi_schema() -> dict[str, Any]:
    """The OpenAPI 3.0 document of the same tools: one ``POST /<tool>`` each, parameters in a
    JSON request body."""
    paths: dict[str, Any] = {}
    for spec in TOOL_SPECS:
        required = [p.name for p in spec.params if p.required]
        body: dict[str, Any] = {
            "type": "object",
            "properties": {
                p.name: {"type": p.type, "description": p.description} for p in spec.params
            },
        }
        if required:
            body["required"] = required
        paths[f"/{spec.name}"] = {
            "post": {
                "operationId": spec.name,
                "description": spec.description,
                "requestBody": {
                    "required": bool(required),
                    "content": {JSON_TYPE: {"schema": body}},
                },
                "responses": {
                    "200": {
                        "description": "The tool result.",
                        "content": {JSON_TYPE: {"schema": _RESULT_SCHEMA}},
                    }
                },
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {
            "title": "OPX telemetry tools",
            "version": "1.0.0",
            "description": "Read-only, bounded telemetry tools for incident analysis.",
        },
        "paths": paths,
    }


def schemas_json() -> str:
    """Both schemas as one JSON document, stable byte for byte."""
    document = {"functionSchema": function_schema(), "openapi": openapi_schema()}
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    """One parsed action-group event."""

    form: str  # "function" or "openapi"
    action_group: str
    name: str
    values: dict[str, str]
    session: dict[str, str]
    prompt_session: dict[str, str]
    api_path: str = ""
    http_method: str = ""


def parse_event(event: Mapping[str, Any]) -> Invocation:
    """The invocation in ``event``; :class:`BadParameter` when it is not an action-group event."""
    if not isinstance(event, Mapping):
        raise BadParameter("the event must be a JSON object")
    if str(event.get("messageVersion", "")) != MESSAGE_VERSION:
        raise BadParameter(f"messageVersion must be {MESSAGE_VERSION}")
    group = str(event.get("actionGroup", ""))
    session = _strings(event.get("sessionAttributes"))
    prompt = _strings(event.get("promptSessionAttributes"))
    values = _pairs(event.get("parameters"))
    if event.get("function"):
        return Invocation("function", group, str(event["function"]), values, session, prompt)
    path = event.get("apiPath")
    if not isinstance(path, str) or not path:
        raise BadParameter("the event names neither a function nor an apiPath")
    body = _object(_object(_object(event.get("requestBody")).get("content")).get(JSON_TYPE))
    values.update(_pairs(body.get("properties")))
    method = str(event.get("httpMethod", ""))
    return Invocation("openapi", group, path.strip("/"), values, session, prompt, path, method)


def _object(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _pairs(value: object) -> dict[str, str]:
    """``[{"name", "type", "value"}]`` as name → value text."""
    found: dict[str, str] = {}
    for item in value if isinstance(value, list) else ():
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            found[item["name"]] = "" if item.get("value") is None else str(item["value"])
    return found


def arguments(spec: ToolSpec, values: Mapping[str, str], session: Mapping[str, str]) -> Args:
    """Typed arguments from the event's text values; the incident window fills missing times."""
    known = {p.name: p for p in spec.params}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise BadParameter(f"{spec.name} takes no parameter {', '.join(unknown)}")
    args: Args = {}
    for param in spec.params:
        raw = values.get(param.name)
        if raw is None or raw == "":
            raw = _session_default(param.name, session)
        if raw is None or raw == "":
            if param.required:
                raise BadParameter(f"{param.name} is required")
            continue
        args[param.name] = _typed(param, raw)
    for name in _TIMES:
        if name in known and name not in args:
            raise BadParameter(f"{name} is required (no incident window in the session)")
    return args


def _session_default(name: str, session: Mapping[str, str]) -> str | None:
    return {"start": session.get(WINDOW_START), "end": session.get(WINDOW_END)}.get(name)


def _typed(param: Param, raw: str) -> Any:
    text = raw.strip()
    try:
        if param.name in _TIMES:
            return _time(param.name, text)
        if param.type == "integer":
            number = float(text)
            if not number.is_integer():
                raise ValueError(text)
            return int(number)
        if param.type == "number":
            return float(text)
        if param.type == "boolean":
            return {"true": True, "false": False}[text.lower()]
    except BadParameter:
        raise
    except (ValueError, KeyError) as exc:
        raise BadParameter(f"{param.name} must be {_TYPE_WORDS[param.type]}, not {raw!r}") from exc
    return raw


def _time(name: str, text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if value.tzinfo is None:
        raise BadParameter(f"{name} must have a time zone, e.g. 2026-05-01T12:00:00Z")
    return value


# -- responses ---------------------------------------------------------------------------------


def _response(call: Invocation, result: ToolResult, *, status: int, state: str | None) -> Args:
    body = result.model_dump_json()
    envelope: Args = {"actionGroup": call.action_group}
    if call.form == "function":
        function_response: Args = {"responseBody": {"TEXT": {"body": body}}}
        if state is not None:
            function_response["responseState"] = state
        envelope.update(function=call.name, functionResponse=function_response)
    else:
        envelope.update(
            apiPath=call.api_path,
            httpMethod=call.http_method,
            httpStatusCode=status,
            responseBody={JSON_TYPE: {"body": body}},
        )
    return {
        "messageVersion": MESSAGE_VERSION,
        "response": envelope,
        "sessionAttributes": call.session,
        "promptSessionAttributes": call.prompt_session,
    }


class ActionGroupAdapter:
    """Answers action-group events with the tools ``tools_for`` builds from the session
    attributes (so one warm Lambda can serve many incidents)."""

    def __init__(self, tools_for: Callable[[Mapping[str, str]], TelemetryTools]) -> None:
        self._tools_for = tools_for

    def handle(self, event: Mapping[str, Any]) -> Args:
        """The response envelope for ``event``; never raises."""
        try:
            call = parse_event(event)
        except BadParameter as exc:
            bare = Invocation(
                "function",
                str(_get(event, "actionGroup")),
                str(_get(event, "function") or _get(event, "apiPath")),
                {},
                {},
                {},
            )
            return _response(bare, _invalid(str(exc)), status=400, state="FAILURE")
        spec = TOOLS.get(call.name)
        if spec is None:
            message = f"unknown tool {call.name!r}; tools: {', '.join(TOOLS)}"
            return _response(call, _invalid(message), status=404, state="FAILURE")
        try:
            args = arguments(spec, call.values, call.session)
        except BadParameter as exc:
            return _response(call, _invalid(str(exc)), status=400, state="REPROMPT")
        try:
            result = spec.call(self._tools_for(call.session), args)
        except Exception as exc:  # the adapter answers even if a tool breaks its contract
            failed = ToolResult.failed(
                ADAPTER_SOURCE, ErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:400]
            )
            return _response(call, failed, status=500, state="FAILURE")
        return _response(call, result, status=200, state=None)


def _get(event: object, key: str) -> object:
    return event.get(key, "") if isinstance(event, Mapping) else ""


def _invalid(message: str) -> ToolResult:
    return ToolResult.failed(ADAPTER_SOURCE, ErrorCode.INVALID_INPUT, message)


# -- the Lambda entry point --------------------------------------------------------------------


def aws_tools_factory(env: Mapping[str, str]) -> Callable[[Mapping[str, str]], TelemetryTools]:
    """Tools over the AWS account, built once per container; each invocation knows the
    incident's service and window from the session attributes."""
    from opx.tools.aws import AwsTelemetrySource, load_aws_settings  # noqa: PLC0415 (boto3)

    base = AwsTelemetrySource(load_aws_settings(env))

    def tools_for(session: Mapping[str, str]) -> TelemetryTools:
        try:
            start, end = _time("start", session[WINDOW_START]), _time("end", session[WINDOW_END])
            window: tuple[datetime, datetime] | None = (start, end)
        except (KeyError, ValueError):
            window = None
        service = session.get(INCIDENT_SERVICE)
        return base.with_services([service] if service else [], graph_window=window)

    return tools_for


@cache
def _default_adapter() -> ActionGroupAdapter:
    # Built on the first invocation and kept while the Lambda container is warm.
    return ActionGroupAdapter(aws_tools_factory(os.environ))


def handler(event: Mapping[str, Any], context: object = None) -> Args:
    """The Lambda handler: the AWS telemetry source configured from the environment."""
    return _default_adapter().handle(event)
