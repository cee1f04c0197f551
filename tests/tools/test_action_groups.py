"""The Bedrock action-group adapter: every tool round-trips in both event forms; parameters are
typed and checked; the schemas are valid for Bedrock."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from opx.domain.errors import ErrorCode
from opx.domain.tool_result import MAX_TOOL_RESULT_BYTES, ToolResult
from opx.tools import action_groups
from opx.tools.action_groups import (
    MAX_FUNCTION_PARAMETERS,
    TOOLS,
    ActionGroupAdapter,
    function_schema,
    openapi_schema,
    schemas_json,
)
from opx.tools.base import TelemetryTools
from opx.tools.bundle import load_bundle
from opx.tools.memory import InMemoryTools

BUNDLE = Path(__file__).resolve().parents[2] / "examples" / "bad-deployment" / "bundle"
SERVICE = "shop-api/prod_AWS::ApiGateway::Stage"
SESSION = {
    "incident_window_start": "2026-10-07T14:00:00Z",
    "incident_window_end": "2026-10-07T14:30:00Z",
}
# Parameters of one call per tool, as an agent would send them (every value is text).
CALLS: dict[str, dict[str, str]] = {
    "list_metrics": {"service": SERVICE},
    "get_metrics": {
        "start": "2026-10-07T13:00:00Z",
        "end": "2026-10-07T14:30:00Z",
        "metric": f"{SERVICE}|errors|Sum",
    },
    "get_traffic": {"service": SERVICE},
    "search_logs": {"service": SERVICE, "pattern": "error"},
    "get_traces": {"errors_only": "true"},
    "get_service_graph": {},
    "list_deployments": {"start": "2026-10-07T12:00:00+00:00"},
    "list_config_changes": {"service": SERVICE},
    "search_incidents": {"service": SERVICE, "limit": "3"},
    "get_resolution": {"incident_id": "INC-2026-0301"},
    "retrieve_knowledge": {"query": "checkout errors after deploy", "limit": "2"},
}


@pytest.fixture(scope="module")
def tools() -> InMemoryTools:
    return load_bundle(BUNDLE)


def direct(tools: TelemetryTools, name: str) -> ToolResult:
    """The same call made directly, with the session's window where the event omits it."""
    values = {**CALLS[name]}
    spec = TOOLS[name]
    names = {p.name for p in spec.params}
    if "start" in names:
        values.setdefault("start", SESSION["incident_window_start"])
        values.setdefault("end", SESSION["incident_window_end"])
    t = {
        k: datetime.fromisoformat(v.replace("Z", "+00:00"))
        for k, v in values.items()
        if k in ("start", "end")
    }
    calls = {
        "list_metrics": lambda: tools.list_metrics(SERVICE),
        "get_metrics": lambda: tools.get_metrics(
            t["start"], t["end"], service=SERVICE, metric="errors", stat="Sum"
        ),
        "get_traffic": lambda: tools.get_traffic(SERVICE, t["start"], t["end"]),
        "search_logs": lambda: tools.search_logs(t["start"], t["end"], SERVICE, "error"),
        "get_traces": lambda: tools.get_traces(t["start"], t["end"], errors_only=True),
        "get_service_graph": tools.get_service_graph,
        "list_deployments": lambda: tools.list_deployments(t["start"], t["end"]),
        "list_config_changes": lambda: tools.list_config_changes(t["start"], t["end"], SERVICE),
        "search_incidents": lambda: tools.search_incidents(SERVICE, None, 3),
        "get_resolution": lambda: tools.get_resolution("INC-2026-0301"),
        "retrieve_knowledge": lambda: tools.retrieve_knowledge("checkout errors after deploy", 2),
    }
    return calls[name]()


def typed(name: str, param: str) -> str:
    return next((p.type for p in TOOLS[name].params if p.name == param), "string")


def function_event(name: str, values: dict[str, str]) -> dict[str, Any]:
    return {
        "messageVersion": "1.0",
        "agent": {"name": "opx-signal", "id": "AGENT12345", "alias": "TSTALIASID", "version": "1"},
        "inputText": "what is failing?",
        "sessionId": "sess-1",
        "actionGroup": "telemetry",
        "function": name,
        "parameters": [{"name": k, "type": typed(name, k), "value": v} for k, v in values.items()],
        "sessionAttributes": dict(SESSION),
        "promptSessionAttributes": {"turn": "3"},
    }


def openapi_event(name: str, values: dict[str, str]) -> dict[str, Any]:
    return {
        "messageVersion": "1.0",
        "agent": {"name": "opx-signal", "id": "AGENT12345", "alias": "TSTALIASID", "version": "1"},
        "inputText": "what is failing?",
        "sessionId": "sess-1",
        "actionGroup": "telemetry-api",
        "apiPath": f"/{name}",
        "httpMethod": "POST",
        "parameters": [],
        "requestBody": {
            "content": {
                "application/json": {
                    "properties": [
                        {"name": k, "type": typed(name, k), "value": v} for k, v in values.items()
                    ]
                }
            }
        },
        "sessionAttributes": dict(SESSION),
        "promptSessionAttributes": {},
    }


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_function_form_round_trip(tools: InMemoryTools, name: str) -> None:
    adapter = ActionGroupAdapter(lambda _: tools)
    answer = adapter.handle(function_event(name, CALLS[name]))
    assert answer["messageVersion"] == "1.0"
    assert answer["sessionAttributes"] == SESSION
    assert answer["promptSessionAttributes"] == {"turn": "3"}
    response = answer["response"]
    assert (response["actionGroup"], response["function"]) == ("telemetry", name)
    assert "responseState" not in response["functionResponse"]
    body = response["functionResponse"]["responseBody"]["TEXT"]["body"]
    assert len(body.encode()) <= MAX_TOOL_RESULT_BYTES
    expected = direct(tools, name)
    assert ToolResult.model_validate_json(body) == expected
    assert json.dumps(answer)


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_openapi_form_round_trip(tools: InMemoryTools, name: str) -> None:
    adapter = ActionGroupAdapter(lambda _: tools)
    answer = adapter.handle(openapi_event(name, CALLS[name]))
    response = answer["response"]
    assert response["apiPath"] == f"/{name}" and response["httpMethod"] == "POST"
    assert response["httpStatusCode"] == 200
    body = response["responseBody"]["application/json"]["body"]
    assert ToolResult.model_validate_json(body) == direct(tools, name)


def test_pages_follow_next_token_through_the_adapter(tools: InMemoryTools) -> None:
    adapter = ActionGroupAdapter(lambda _: tools)
    values = {"start": "2026-10-07T10:00:00Z", "end": "2026-10-07T15:00:00Z"}
    first = ToolResult.model_validate_json(
        adapter.handle(function_event("get_metrics", values))["response"]["functionResponse"][
            "responseBody"
        ]["TEXT"]["body"]
    )
    assert first.next_token is not None
    second = ToolResult.model_validate_json(
        adapter.handle(function_event("get_metrics", {**values, "next_token": first.next_token}))[
            "response"
        ]["functionResponse"]["responseBody"]["TEXT"]["body"]
    )
    assert second.data["series"] and second.data != first.data


def body_of(answer: dict[str, Any]) -> ToolResult:
    response = answer["response"]
    if "functionResponse" in response:
        text = response["functionResponse"]["responseBody"]["TEXT"]["body"]
    else:
        text = response["responseBody"]["application/json"]["body"]
    return ToolResult.model_validate_json(text)


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"limit": "three"}, "limit must be a whole number"),
        ({"limit": "2.5"}, "limit must be a whole number"),
        ({"colour": "red"}, "takes no parameter colour"),
    ],
)
def test_bad_parameters_ask_the_model_again(
    tools: InMemoryTools, values: dict[str, str], problem: str
) -> None:
    adapter = ActionGroupAdapter(lambda _: tools)
    event = function_event("search_incidents", {})
    event["parameters"] = [{"name": k, "type": "string", "value": v} for k, v in values.items()]
    answer = adapter.handle(event)
    assert answer["response"]["functionResponse"]["responseState"] == "REPROMPT"
    result = body_of(answer)
    assert result.error is not None and result.error.code is ErrorCode.INVALID_INPUT
    assert problem in result.error.message
    api = openapi_event("search_incidents", values)
    assert adapter.handle(api)["response"]["httpStatusCode"] == 400


def test_times_need_a_zone_or_the_session_window(tools: InMemoryTools) -> None:
    adapter = ActionGroupAdapter(lambda _: tools)
    naive = adapter.handle(function_event("get_traces", {"start": "2026-10-07T14:00:00"}))
    assert "time zone" in (body_of(naive).error or pytest.fail()).message
    event = function_event("get_traces", {})
    event["sessionAttributes"] = {}
    missing = body_of(adapter.handle(event))
    assert missing.error is not None and "start is required" in missing.error.message


def test_unknown_tool_and_malformed_events(tools: InMemoryTools) -> None:
    adapter = ActionGroupAdapter(lambda _: tools)
    unknown = adapter.handle(function_event("get_item", {}))
    assert unknown["response"]["functionResponse"]["responseState"] == "FAILURE"
    assert openapi_event("nope", {})["apiPath"] == "/nope"
    assert adapter.handle(openapi_event("nope", {}))["response"]["httpStatusCode"] == 404
    for event in (
        {},
        {"messageVersion": "2.0"},
        {"messageVersion": "1.0", "requestBody": 3},
        {"messageVersion": "1.0", "apiPath": "/list_metrics", "requestBody": "x"},
    ):
        answer = adapter.handle(event)
        assert answer["messageVersion"] == "1.0"
        assert isinstance(body_of(answer), ToolResult)


def test_a_tool_that_raises_is_answered(tools: InMemoryTools) -> None:
    def broken(_: Any) -> TelemetryTools:
        raise RuntimeError("no source")

    answer = ActionGroupAdapter(broken).handle(function_event("get_service_graph", {}))
    assert answer["response"]["functionResponse"]["responseState"] == "FAILURE"
    assert (body_of(answer).error or pytest.fail()).code is ErrorCode.INTERNAL_ERROR


NAME = re.compile(r"([0-9a-zA-Z][_-]?){1,100}")


def test_function_schema_fits_bedrock() -> None:
    functions = function_schema()["functions"]
    assert [f["name"] for f in functions] == sorted(TOOLS, key=list(TOOLS).index)
    assert len(functions) == 11
    for function in functions:
        assert NAME.fullmatch(function["name"])
        assert 1 <= len(function["description"]) <= 1200
        assert len(function["parameters"]) <= MAX_FUNCTION_PARAMETERS
        for name, detail in function["parameters"].items():
            assert NAME.fullmatch(name)
            assert detail["type"] in {"string", "number", "integer", "boolean", "array"}
            assert 1 <= len(detail["description"]) <= 500


def test_openapi_schema_and_export() -> None:
    document = openapi_schema()
    assert document["openapi"] == "3.0.0"
    assert sorted(document["paths"]) == sorted(f"/{n}" for n in TOOLS)
    traffic = document["paths"]["/get_traffic"]["post"]
    assert traffic["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "service"
    ]
    exported = json.loads(schemas_json())
    assert exported["functionSchema"] == function_schema()
    assert schemas_json() == schemas_json()


def test_lambda_handler_reads_aws_from_the_environment(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    action_groups._default_adapter.cache_clear()
    try:
        event = function_event("get_service_graph", {})
        answer = action_groups.handler(event, None)
    finally:
        action_groups._default_adapter.cache_clear()
    result = body_of(answer)
    assert result.source == "aws:aws"
    assert result.status.value == "SUCCESS"
    assert set(result.data) == {"nodes", "edges"}
