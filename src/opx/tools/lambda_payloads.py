"""The payloads exchanged with the tools Lambda, without any I/O: a tool call as the action-group
event that :func:`opx.tools.action_groups.handler` accepts, checked by that module's own parser
before it is sent, and the handler's answer (or a Lambda function error) read back as a
:class:`~opx.domain.tool_result.ToolResult`.

Calls use the function-details form of the event, the one the deployed agents' action groups
send, so the executor and the agents exercise the same path through the Lambda."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from opx.domain.errors import ErrorCode
from opx.domain.tool_result import ToolResult
from opx.tools.action_groups import (
    INCIDENT_SERVICE,
    MESSAGE_VERSION,
    TOOLS,
    WINDOW_END,
    WINDOW_START,
    BadParameter,
    arguments,
    parse_event,
)

SOURCE = "tools-lambda"
# The action group's name in the event; the handler only echoes it back.
ACTION_GROUP = "telemetry"
MAX_MESSAGE_CHARS = 400


def session_attributes(
    service: str | None, start: datetime | None, end: datetime | None
) -> dict[str, str]:
    """The session attributes the handler reads: the incident's service (which the AWS source
    then knows) and window (the default time range and the service graph's window)."""
    session: dict[str, str] = {}
    if service:
        session[INCIDENT_SERVICE] = service
    if start is not None and end is not None:
        session[WINDOW_START] = start.isoformat()
        session[WINDOW_END] = end.isoformat()
    return session


def _text(value: object) -> str:
    # The event carries every parameter as text; the handler types it back from the schema.
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def tool_event(tool: str, values: Mapping[str, object], session: Mapping[str, str]) -> Any:
    """The action-group event calling ``tool`` with ``values`` (None values are left out).
    :class:`BadParameter` when the handler would refuse it: it is parsed and typed here by the
    handler's own code, so a call that cannot succeed is never sent."""
    spec = TOOLS.get(tool)
    if spec is None:
        raise BadParameter(f"unknown tool {tool!r}")
    types = {p.name: p.type for p in spec.params}
    event = {
        "messageVersion": MESSAGE_VERSION,
        "actionGroup": ACTION_GROUP,
        "function": tool,
        "parameters": [
            {"name": name, "type": types.get(name, "string"), "value": _text(value)}
            for name, value in values.items()
            if value is not None
        ],
        "sessionAttributes": dict(session),
        "promptSessionAttributes": {},
    }
    call = parse_event(event)
    arguments(spec, call.values, call.session)
    return event


def failed(code: ErrorCode, message: str) -> ToolResult:
    return ToolResult.failed(SOURCE, code, message[:MAX_MESSAGE_CHARS])


def read_answer(tool: str, payload: bytes, function_error: str | None) -> ToolResult:
    """The tool result in the Lambda's answer to a call of ``tool``; a FAILED result when the
    function failed or its answer is not the handler's envelope around a tool result."""
    if function_error:
        return _function_failure(function_error, payload)
    try:
        envelope = json.loads(payload)
        response = envelope["response"]
        if response.get("function") != tool:
            raise ValueError(f"it answers {response.get('function')!r}, not {tool!r}")
        body = response["functionResponse"]["responseBody"]["TEXT"]["body"]
        return ToolResult.model_validate_json(body)
    except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return failed(
            ErrorCode.DATA_SOURCE_UNAVAILABLE,
            f"the tools Lambda's answer to {tool} is not a tool result ({reason})",
        )


def _function_failure(function_error: str, payload: bytes) -> ToolResult:
    """A failure inside the function (Lambda's ``{"errorType", "errorMessage"}`` payload): its
    own timeout is a TIMEOUT, anything else leaves the data unavailable this time."""
    try:
        info = json.loads(payload)
    except ValueError:
        info = {}
    if not isinstance(info, dict):
        info = {}
    kind = str(info.get("errorType") or function_error)
    message = str(info.get("errorMessage") or "no message")
    timed_out = "timedout" in kind.lower() or "timed out" in message.lower()
    code = ErrorCode.TIMEOUT if timed_out else ErrorCode.DATA_SOURCE_UNAVAILABLE
    return failed(code, f"the tools Lambda failed ({function_error}): {kind}: {message}")
