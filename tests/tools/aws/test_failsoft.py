"""Common behaviour of every AWS tool: a hanging endpoint returns TIMEOUT within the deadline,
no exception ever escapes, and every page stays within 10 KB."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

from opx.domain.errors import ErrorCode
from opx.domain.tool_result import MAX_TOOL_RESULT_BYTES, ToolResult, ToolStatus
from opx.tools.aws.deadline import Deadlines
from opx.tools.aws.mapping import MetricStat, MetricTemplate, ServiceEntry, ServiceMapping
from opx.tools.aws.settings import AwsSettings, HistoryTables, KnowledgeBase
from opx.tools.aws.source import AwsTelemetrySource
from opx.tools.paging import collect
from tests.tools.aws.conftest import T0, Stubs, aws_client, make_source
from tests.tools.aws.local_http import HangingServer

WINDOW = (T0, T0 + timedelta(minutes=10))
AWS = (
    "cloudwatch",
    "logs",
    "xray",
    "servicediscovery",
    "cloudtrail",
    "resourcegroupstaggingapi",
    "dynamodb",
    "bedrock-agent-runtime",
)


def configured(**deadlines: Any) -> AwsSettings:
    template = MetricTemplate("Shop", (("Service", "svc"),), (MetricStat("Errors", "Sum"),))
    entry = ServiceEntry("svc", metrics=(template,), log_groups=("/shop/svc",))
    return AwsSettings(
        mapping=ServiceMapping(services={"svc": entry}),
        deadlines=Deadlines(**deadlines) if deadlines else Deadlines(),
        history=HistoryTables(incidents_table="history", recent_index="recent"),
        knowledge=KnowledgeBase("KB12345678"),
    )


TOOLS: dict[str, Callable[[AwsTelemetrySource], ToolResult]] = {
    "list_metrics": lambda s: s.list_metrics("svc"),
    "get_metrics": lambda s: s.get_metrics(*WINDOW, service="svc"),
    "get_traffic": lambda s: s.get_traffic("svc", *WINDOW),
    "search_logs": lambda s: s.search_logs(*WINDOW, service="svc", pattern="boom"),
    "get_traces": lambda s: s.get_traces(*WINDOW, service="svc", errors_only=True),
    "get_service_graph": lambda s: s.get_service_graph(),
    "list_deployments": lambda s: s.list_deployments(*WINDOW),
    "list_config_changes": lambda s: s.list_config_changes(*WINDOW, service="svc"),
    "search_incidents": lambda s: s.search_incidents("svc", "boom"),
    "get_resolution": lambda s: s.get_resolution("INC-1"),
    "retrieve_knowledge": lambda s: s.retrieve_knowledge("why"),
}


@pytest.fixture(scope="module")
def hanging() -> Iterator[HangingServer]:
    with HangingServer() as server:
        yield server


@pytest.fixture(scope="module")
def hanging_clients(hanging: HangingServer) -> dict[str, Any]:
    # Created before any clock starts, as a long-lived source has its clients already.
    return {service: aws_client(service, hanging.endpoint, timeout_s=5.0) for service in AWS}


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_hanging_endpoint_times_out_within_the_deadline(
    tool: str, hanging_clients: dict[str, Any]
) -> None:
    # botocore would wait 5 s; the wall-clock guard must answer at the 0.3 s deadline.
    def factory(service: str) -> Any:
        return hanging_clients[service]

    per_tool = tuple((name, 0.3) for name in sorted(TOOLS))
    source = AwsTelemetrySource(
        configured(request_s=0.15, total_s=0.3, per_tool=per_tool),
        clients=factory,
        services=("svc",),
        graph_window=WINDOW,
    )
    started = time.monotonic()
    result = TOOLS[tool](source)
    elapsed = time.monotonic() - started
    assert elapsed < 0.3 + 0.25
    assert result.status in (ToolStatus.FAILED, ToolStatus.PARTIAL)
    assert result.error is not None and result.error.code is ErrorCode.TIMEOUT


class Broken:
    """A client whose every operation fails with ``error`` or answers ``answer``."""

    def __init__(self, error: BaseException | None = None, answer: Any = None) -> None:
        self._error, self._answer = error, answer

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def operation(**_: Any) -> Any:
            if self._error is not None:
                raise self._error
            return self._answer

        return operation


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Op",
    )


BEHAVIOURS: dict[str, tuple[Callable[[str], Any], ErrorCode | None]] = {
    "throttled": (
        lambda _: Broken(client_error("ThrottlingException")),
        ErrorCode.RATE_LIMIT_EXCEEDED,
    ),
    "denied": (
        lambda _: Broken(client_error("AccessDeniedException", 403)),
        ErrorCode.ACCESS_DENIED,
    ),
    "server_error": (
        lambda _: Broken(client_error("InternalServerError", 500)),
        ErrorCode.DATA_SOURCE_UNAVAILABLE,
    ),
    "no_credentials": (lambda _: Broken(NoCredentialsError()), ErrorCode.ACCESS_DENIED),
    "bug_in_client": (lambda _: Broken(KeyError("boom")), ErrorCode.INTERNAL_ERROR),
    "no_region": (lambda _: (_ for _ in ()).throw(NoRegionError()), ErrorCode.INVALID_INPUT),
    "garbage_list": (
        lambda _: Broken(
            answer={
                "MetricDataResults": [{"Id": "m0", "Timestamps": [1], "Values": ["x"]}],
                "events": [{"timestamp": "x"}],
                "Traces": [{"Segments": [{"Document": "{"}]}],
                "Events": [{}],
                "Items": [{"bad": {"Z": 1}}],
                "retrievalResults": [None, {"score": "x"}],
                "Services": [{"Edges": [None]}],
                "results": "x",
                "Metrics": [{}],
                "TraceSummaries": [{"Id": 1}],
                "queryId": "q",
                "status": "Complete",
            }
        ),
        None,
    ),
    "none": (lambda _: Broken(answer=None), None),
}


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_no_exception_escapes(tool: str, behaviour: str) -> None:
    factory, code = BEHAVIOURS[behaviour]
    source = make_source(factory, configured(), services=("svc",), graph_window=WINDOW)
    result = TOOLS[tool](source)
    assert isinstance(result, ToolResult)
    assert result.size_bytes() <= MAX_TOOL_RESULT_BYTES
    if code is not None:
        assert result.status is ToolStatus.FAILED
        assert result.error is not None and result.error.code is code
    else:
        assert result.status in set(ToolStatus)


def test_big_answers_page_under_10_kb_with_the_error_counted(stubs: Stubs) -> None:
    logs = stubs["logs"]
    events = [
        {
            "eventId": f"e{i:04d}",
            "timestamp": int(T0.timestamp() * 1000) + i,
            "message": f"ERROR request {i} failed " + "x" * 3000,
        }
        for i in range(40)
    ]
    logs.add_response("filter_log_events", {"events": events, "nextToken": "n2"})
    logs.add_client_error(
        "filter_log_events",
        service_error_code="ServiceUnavailableException",
        http_status_code=503,
        service_message="try later " + "y" * 300,
    )
    entry = ServiceEntry("svc", log_groups=("/shop/svc",), use_defaults=False)
    source = make_source(
        stubs, AwsSettings(mapping=ServiceMapping(services={"svc": entry})), graph_window=WINDOW
    )
    pages: list[ToolResult] = []

    def call(token: str | None) -> ToolResult:
        pages.append(source.search_logs(*WINDOW, service="svc", next_token=token))
        return pages[-1]

    merged = collect(call)
    assert len(pages) > 5
    assert all(p.size_bytes() <= MAX_TOOL_RESULT_BYTES for p in pages)
    assert all(p.status is ToolStatus.PARTIAL for p in pages)
    assert [e["id"] for e in merged.data["events"]] == [f"e{i:04d}" for i in range(40)]
    assert merged.status is ToolStatus.PARTIAL
