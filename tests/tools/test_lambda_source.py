"""Telemetry through the tools Lambda: boto3's Lambda client talks to a local Invoke endpoint
that runs the real action-group adapter over a bundle, so the event the source builds and the
answer it reads are the real formats on both sides; failures come back as FAILED results."""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from opx.config import ConfigError, load_settings
from opx.domain.errors import ErrorCode
from opx.domain.tool_result import ToolResult, ToolStatus
from opx.runtime.intake import Accepted, parse_event
from opx.runtime.lambda_handler import FakeContext, Invocation, invoke
from opx.runtime.wiring import open_tools
from opx.tools.action_groups import TOOLS, ActionGroupAdapter
from opx.tools.base import TelemetryTools
from opx.tools.bundle import load_bundle
from opx.tools.lambda_source import LambdaTelemetrySource, lambda_client
from opx.tools.memory import InMemoryTools
from tests.tools.fake_lambda import FakeLambda, Reply, function_error, throttled

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bad-deployment"
SERVICE = "shop-api/prod_AWS::ApiGateway::Stage"
FUNCTION = "opx-tools"
START = datetime(2026, 10, 7, 14, 0, tzinfo=UTC)
END = datetime(2026, 10, 7, 14, 30, tzinfo=UTC)
EARLY = datetime(2026, 10, 7, 10, 0, tzinfo=UTC)

# One call per tool, made the same way on the bundle and on the Lambda source.
CALLS: dict[str, Callable[[TelemetryTools], ToolResult]] = {
    "list_metrics": lambda t: t.list_metrics(SERVICE),
    "get_metrics": lambda t: t.get_metrics(START, END, service=SERVICE, metric="errors"),
    "get_traffic": lambda t: t.get_traffic(SERVICE, START, END),
    "search_logs": lambda t: t.search_logs(START, END, SERVICE, "error"),
    "get_traces": lambda t: t.get_traces(START, END, errors_only=True),
    "get_service_graph": lambda t: t.get_service_graph(),
    "list_deployments": lambda t: t.list_deployments(EARLY, END),
    "list_config_changes": lambda t: t.list_config_changes(EARLY, END, SERVICE),
    "search_incidents": lambda t: t.search_incidents(SERVICE, None, 3),
    "get_resolution": lambda t: t.get_resolution("INC-2026-0301"),
    "retrieve_knowledge": lambda t: t.retrieve_knowledge("checkout errors after deploy", 2),
}


@pytest.fixture(scope="module")
def bundle() -> InMemoryTools:
    return load_bundle(EXAMPLE / "bundle")


@pytest.fixture
def sessions() -> list[dict[str, str]]:
    """The session attributes the adapter built tools for, one per answered call."""
    return []


@pytest.fixture
def fake(bundle: InMemoryTools, sessions: list[dict[str, str]]) -> Iterator[FakeLambda]:
    def tools_for(session: Mapping[str, str]) -> TelemetryTools:
        sessions.append(dict(session))
        return bundle

    with FakeLambda(ActionGroupAdapter(tools_for)) as server:
        yield server


@pytest.fixture(autouse=True)
def _region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")


def source_at(
    server: FakeLambda | str,
    monkeypatch: pytest.MonkeyPatch,
    function: str = FUNCTION,
    read_timeout_s: float = 5.0,
) -> LambdaTelemetrySource:
    """The source as production builds it, its client sent to ``server`` by the standard
    per-service endpoint variable."""
    endpoint = server if isinstance(server, str) else server.endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", endpoint)
    return LambdaTelemetrySource(function, lambda_client(function, read_timeout_s=read_timeout_s))


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_every_tool_round_trips_through_the_lambda(
    bundle: InMemoryTools, fake: FakeLambda, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    source = source_at(fake, monkeypatch)
    answer = CALLS[name](source)
    expected = CALLS[name](bundle)
    assert expected.status is ToolStatus.SUCCESS and expected.data
    assert answer == expected
    [request] = fake.requests
    assert (request.function, request.invocation_type) == (FUNCTION, "RequestResponse")
    assert request.qualifier is None
    assert request.event["function"] == name and request.event["messageVersion"] == "1.0"


def test_the_catalogue_covers_every_tool() -> None:
    assert sorted(CALLS) == sorted(TOOLS)


def test_pages_follow_next_token_through_the_lambda(
    bundle: InMemoryTools, fake: FakeLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = source_at(fake, monkeypatch)

    def pages(tools: TelemetryTools) -> list[ToolResult]:
        out, token = [], None
        while True:
            page = tools.get_metrics(EARLY, END, next_token=token)
            out.append(page)
            token = page.next_token
            if token is None or len(out) > 50:
                return out

    direct = pages(bundle)
    assert len(direct) > 1
    assert pages(source) == direct


def test_a_stat_is_sent_as_a_series_id(
    bundle: InMemoryTools, fake: FakeLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = source_at(fake, monkeypatch)
    answer = source.get_metrics(START, END, service=SERVICE, metric="errors", stat="Sum")
    assert answer == bundle.get_metrics(START, END, service=SERVICE, metric="errors", stat="Sum")
    [request] = fake.requests
    sent = {p["name"]: p["value"] for p in request.event["parameters"]}
    assert sent["metric"] == f"{SERVICE}|errors|Sum"
    # A statistic alone cannot be named by the tool: refused here, nothing sent.
    refused = source.get_metrics(START, END, stat="Sum")
    assert refused.error is not None and refused.error.code is ErrorCode.INVALID_INPUT
    assert len(fake.requests) == 1


def test_open_tools_sends_the_incident_service_and_window(
    fake: FakeLambda, monkeypatch: pytest.MonkeyPatch, sessions: list[dict[str, str]]
) -> None:
    accepted = parse_event((EXAMPLE / "event.json").read_text())
    assert isinstance(accepted, Accepted)
    settings = load_settings({"OPX_TELEMETRY": "lambda", "OPX_TOOLS_FUNCTION": FUNCTION})
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", fake.endpoint)
    tools = open_tools(settings, None, incident=accepted.incident, env={})
    assert isinstance(tools, LambdaTelemetrySource)
    assert tools.get_service_graph().status is ToolStatus.SUCCESS
    expected = {
        "incident_service": SERVICE,
        "incident_window_start": "2026-10-07T14:00:00+00:00",
        "incident_window_end": "2026-10-07T14:30:00+00:00",
    }
    assert fake.requests[0].event["sessionAttributes"] == expected
    assert sessions == [expected]


def test_settings_require_the_function_for_lambda() -> None:
    with pytest.raises(ConfigError, match="OPX_TELEMETRY=lambda needs OPX_TOOLS_FUNCTION"):
        load_settings({"OPX_TELEMETRY": "lambda"})
    with pytest.raises(ConfigError, match="OPX_TOOLS_FUNCTION='opx tools'"):
        load_settings({"OPX_TELEMETRY": "lambda", "OPX_TOOLS_FUNCTION": "opx tools"})
    with pytest.raises(ConfigError, match="one of bundle, aws, lambda"):
        load_settings({"OPX_TELEMETRY": "lamda"})
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:opx-tools"
    for function in ("opx-tools", arn, "123456789012:function:opx-tools", f"{arn}:live"):
        settings = load_settings({"OPX_TELEMETRY": "lambda", "OPX_TOOLS_FUNCTION": function})
        assert (settings.telemetry_backend, settings.tools_function) == ("lambda", function)
    assert load_settings({}).tools_function is None


def failure(result: ToolResult) -> ErrorCode:
    assert result.status is ToolStatus.FAILED and result.error is not None
    assert result.source == "tools-lambda" and result.data == {}
    return result.error.code


def test_a_function_error_is_a_failed_result(
    fake: FakeLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = source_at(fake, monkeypatch)
    fake.script.append(function_error("KeyError", "'series'"))
    result = source.list_metrics(SERVICE)
    assert failure(result) is ErrorCode.DATA_SOURCE_UNAVAILABLE
    assert result.error is not None and "KeyError" in result.error.message
    # Lambda's own timeout of the function is a timeout, which a retry may cure.
    fake.script.append(
        function_error("Sandbox.Timedout", "RequestId: 1 Error: Task timed out after 20.00 seconds")
    )
    assert failure(source.list_metrics(SERVICE)) is ErrorCode.TIMEOUT
    assert len(fake.requests) == 2


def test_throttling_is_retried_once_then_reported(
    fake: FakeLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = source_at(fake, monkeypatch)
    fake.script.append(throttled())
    assert source.get_service_graph().status is ToolStatus.SUCCESS
    assert len(fake.requests) == 2
    fake.script.extend([throttled(), throttled()])
    code = failure(source.get_service_graph())
    assert code is ErrorCode.RATE_LIMIT_EXCEEDED and code.retryable
    assert len(fake.requests) == 4


def test_a_slow_answer_times_out(fake: FakeLambda, monkeypatch: pytest.MonkeyPatch) -> None:
    source = source_at(fake, monkeypatch, read_timeout_s=0.2)
    slow = Reply(200, b"{}", delay_s=1.0)
    fake.script.extend([slow, slow])
    began = time.monotonic()
    assert failure(source.get_service_graph()) is ErrorCode.TIMEOUT
    assert time.monotonic() - began < 2.0


def test_an_unreachable_function_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    source = source_at(closed, monkeypatch)
    assert failure(source.get_service_graph()) is ErrorCode.DATA_SOURCE_UNAVAILABLE


def _envelope(function: str, body: str) -> bytes:
    response: dict[str, Any] = {"actionGroup": "telemetry", "function": function}
    response["functionResponse"] = {"responseBody": {"TEXT": {"body": body}}}
    return json.dumps({"messageVersion": "1.0", "response": response}).encode()


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[1, 2]",
        b'{"messageVersion": "1.0"}',
        _envelope("get_service_graph", '{"status": "MAYBE"}'),
        _envelope("get_service_graph", "{"),
        # A real tool result, but the answer to another call.
        _envelope(
            "list_metrics", ToolResult(status=ToolStatus.SUCCESS, source="x").model_dump_json()
        ),
    ],
)
def test_an_answer_that_is_not_a_tool_result_is_a_failed_result(
    fake: FakeLambda, monkeypatch: pytest.MonkeyPatch, payload: bytes
) -> None:
    source = source_at(fake, monkeypatch)
    fake.script.append(Reply(200, payload))
    result = source.get_service_graph()
    assert failure(result) is ErrorCode.DATA_SOURCE_UNAVAILABLE
    assert result.error is not None and "not a tool result" in result.error.message


def test_the_handlers_own_failure_comes_back_unchanged(
    fake: FakeLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.adapter = ActionGroupAdapter(lambda _: _broken())
    source = source_at(fake, monkeypatch)
    result = source.get_service_graph()
    assert result.status is ToolStatus.FAILED and result.source == "action-group"
    assert result.error is not None and result.error.code is ErrorCode.INTERNAL_ERROR
    assert "RuntimeError: disk on fire" in result.error.message


def _broken() -> TelemetryTools:
    raise RuntimeError("disk on fire")


def test_bad_arguments_are_refused_before_sending(
    fake: FakeLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = source_at(fake, monkeypatch)
    naive = datetime(2026, 10, 7, 14, 0)
    result = source.search_logs(naive, END)
    assert failure(result) is ErrorCode.INVALID_INPUT
    assert result.error is not None and "time zone" in result.error.message
    assert fake.requests == []


def test_a_client_for_another_function_is_refused_not_raised(
    fake: FakeLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", fake.endpoint)
    source = LambdaTelemetrySource("payments", lambda_client(FUNCTION))
    result = source.get_service_graph()
    assert failure(result) is ErrorCode.WRITE_REFUSED
    assert result.error is not None and "invoke function payments" in result.error.message
    assert fake.requests == []


def test_the_executor_reads_through_the_lambda_what_it_reads_from_the_bundle(
    fake: FakeLambda, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The Lambda handler on the example incident: its analysts reading through the tools
    Lambda reach the same recommendation as reading the bundle directly."""
    event = (EXAMPLE / "event.json").read_text()
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", fake.endpoint)

    def run(env: dict[str, str], bundle: Path | None) -> dict[str, Any]:
        settings = load_settings(env, data_dir=tmp_path / env["OPX_TELEMETRY"])
        invocation = Invocation(settings, out=io.StringIO(), env={}, bundle=bundle, publish=False)
        return invoke(event, FakeContext(time.time() + 300), invocation)

    direct = run({"OPX_TELEMETRY": "bundle"}, EXAMPLE / "bundle")
    through = run({"OPX_TELEMETRY": "lambda", "OPX_TOOLS_FUNCTION": FUNCTION}, None)
    assert direct["status"] == "COMPLETED" and direct["recommendation"] is not None
    for key in ("status", "reason", "recommendation"):
        assert through[key] == direct[key], key
    tools_called = {r.event["function"] for r in fake.requests}
    assert {"get_metrics", "search_logs", "list_deployments"} <= tools_called
    assert {r.event["sessionAttributes"]["incident_service"] for r in fake.requests} == {SERVICE}
