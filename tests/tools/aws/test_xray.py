"""X-Ray traces and the service graph through the AWS source: moto for traces, Stubber for filter
expressions and GetServiceGraph, moto and Stubber for Cloud Map."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

from opx.domain.errors import ErrorCode
from opx.domain.tool_result import ToolStatus
from opx.tools.aws.mapping import ServiceEntry, ServiceMapping
from opx.tools.aws.settings import AwsSettings
from opx.tools.aws.xray import filter_expression
from tests.tools.aws.conftest import T0, Stubs, make_source, raw_client

_ids = itertools.count(1)


def trace_id(n: int) -> str:
    return f"1-{int(T0.timestamp()):08x}-{n:024x}"


def segment(n: int, name: str, offset: float, **extra: Any) -> dict[str, Any]:
    start = T0.timestamp() + offset
    return {
        "trace_id": trace_id(n),
        "id": f"{n:08x}{name[:4].encode().hex():0<8}"[:16],
        "name": name,
        "start_time": start,
        "end_time": start + 0.25,
        **extra,
    }


def test_traces_from_moto(moto_endpoint: str, moto_clients: Any) -> None:
    n = 1000 + next(_ids)
    root = segment(
        n,
        "frontend",
        10,
        origin="AWS::ECS::Fargate",
        fault=True,
        http={
            "request": {"method": "GET", "url": "https://shop.example.com/pets?owner=a@b.com"},
            "response": {"status": 502},
        },
        subsegments=[
            {
                "id": f"{n:016x}",
                "name": "DynamoDB",
                "namespace": "aws",
                "start_time": T0.timestamp() + 10.01,
                "end_time": T0.timestamp() + 10.2,
                "error": True,
                "aws": {"operation": "GetItem"},
            },
            {
                "id": f"{n + 1:016x}",
                "name": "render",
                "start_time": T0.timestamp() + 10.21,
                "end_time": T0.timestamp() + 10.24,
            },
        ],
    )
    raw_client("xray", moto_endpoint).put_trace_segments(TraceSegmentDocuments=[json.dumps(root)])
    source = make_source(moto_clients)
    result = source.get_traces(T0 + timedelta(seconds=5), T0 + timedelta(seconds=15))
    assert result.status is ToolStatus.SUCCESS
    spans = [s for s in result.data["spans"] if s["trace_id"] == trace_id(n)]
    assert [(s["service"], s["operation"]) for s in spans] == [
        ("frontend_AWS::ECS::Fargate", "GET /pets"),
        ("DynamoDB_AWS::DynamoDB", "GetItem"),
        ("frontend_AWS::ECS::Fargate", "render"),
    ]
    assert spans[0]["fault"] is True and spans[0]["status_code"] == 502
    assert spans[1]["parent_id"] == spans[0]["span_id"] and spans[1]["error"] is True
    assert spans[0]["duration_ms"] == 250.0

    # A known bare service name reports the node under that name.
    named = make_source(moto_clients, services=("frontend",))
    only = named.get_traces(T0 + timedelta(seconds=5), T0 + timedelta(seconds=15))
    assert {s["service"] for s in only.data["spans"] if s["trace_id"] == trace_id(n)} == {
        "frontend",
        "DynamoDB_AWS::DynamoDB",
    }


def test_filter_expression_escapes_service_names() -> None:
    assert filter_expression(["PetSearch_AWS::ECS::Fargate"], True) == (
        'service(id(name: "PetSearch", type: "AWS::ECS::Fargate"))'
        " AND (error = true OR fault = true)"
    )
    assert filter_expression(['x") OR service("y', "a\\b"], False) == (
        '(service("x\\") OR service(\\"y") OR service("a\\\\b"))'
    )
    assert filter_expression([], False) is None


def test_get_trace_summaries_request_with_filter(stubs: Stubs) -> None:
    xray = stubs["xray"]
    window = (T0, T0 + timedelta(minutes=5))
    xray.add_response(
        "get_trace_summaries",
        {"TraceSummaries": [{"Id": trace_id(2)}, {"Id": trace_id(1)}], "NextToken": "n1"},
        {
            "StartTime": window[0],
            "EndTime": window[1],
            "Sampling": False,
            "FilterExpression": 'service(id(name: "PetSearch", type: "AWS::ECS::Fargate"))'
            " AND (error = true OR fault = true)",
        },
    )
    xray.add_response(
        "get_trace_summaries",
        {"TraceSummaries": [{"Id": trace_id(1)}]},
        {
            "StartTime": window[0],
            "EndTime": window[1],
            "Sampling": False,
            "NextToken": "n1",
            "FilterExpression": 'service(id(name: "PetSearch", type: "AWS::ECS::Fargate"))'
            " AND (error = true OR fault = true)",
        },
    )
    docs = [
        segment(1, "PetSearch", 1, origin="AWS::ECS::Fargate", error=True),
        segment(1, "PetSite", 0.5),
        segment(2, "PetSearch", 2, origin="AWS::ECS::Fargate"),
    ]
    xray.add_response(
        "batch_get_traces",
        {
            "Traces": [
                {"Id": d["trace_id"], "Segments": [{"Id": d["id"], "Document": json.dumps(d)}]}
                for d in docs
            ]
        },
        {"TraceIds": [trace_id(1), trace_id(2)]},
    )
    source = make_source(stubs)
    result = source.get_traces(*window, service="PetSearch_AWS::ECS::Fargate", errors_only=True)
    stubs.check()
    assert result.status is ToolStatus.SUCCESS
    assert [(s["service"], s["error"]) for s in result.data["spans"]] == [
        ("PetSearch_AWS::ECS::Fargate", True)
    ]


def graph_page(services: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    page: dict[str, Any] = {"Services": services}
    if token:
        page["NextToken"] = token
    return page


def stats(total: int, errors: int = 0, faults: int = 0) -> dict[str, Any]:
    return {
        "OkCount": total - errors - faults,
        "ErrorStatistics": {"ThrottleCount": 0, "OtherCount": errors, "TotalCount": errors},
        "FaultStatistics": {"OtherCount": faults, "TotalCount": faults},
        "TotalCount": total,
        "TotalResponseTime": 1.5,
    }


DB = "adoptions@services-database.us-west-2.rds.amazonaws.com"


def stub_graph(stubs: Stubs, window: Any) -> None:
    xray = stubs["xray"]
    xray.add_response(
        "get_service_graph",
        graph_page(
            [
                {
                    "ReferenceId": 1,
                    "Name": "PetSite",
                    "Type": "client",
                    "Edges": [{"ReferenceId": 2, "SummaryStatistics": stats(200, 4, 10)}],
                },
                {
                    "ReferenceId": 2,
                    "Name": "PetSearch",
                    "Type": "AWS::ECS::Fargate",
                    "SummaryStatistics": stats(200, 4, 10),
                    "Edges": [{"ReferenceId": 3, "SummaryStatistics": stats(50, 0, 25)}],
                },
            ],
            "g1",
        ),
        {"StartTime": window[0], "EndTime": window[1]},
    )
    xray.add_response(
        "get_service_graph",
        graph_page(
            [
                {
                    "ReferenceId": 3,
                    "Name": DB,
                    "Type": "Database::SQL",
                    "SummaryStatistics": stats(50, 0, 25),
                    "Edges": [],
                }
            ],
            None,
        ),
        {"StartTime": window[0], "EndTime": window[1], "NextToken": "g1"},
    )


def test_service_graph_resolves_edges_and_rates(stubs: Stubs) -> None:
    window = (T0, T0 + timedelta(hours=1))
    stub_graph(stubs, window)
    cloudmap = stubs["servicediscovery"]
    cloudmap.add_response(
        "list_services",
        {"Services": [{"Id": "srv-2", "Name": "payments"}, {"Id": "srv-1", "Name": "PetSearch"}]},
        {"MaxResults": 100},
    )
    cloudmap.add_response(
        "get_service", {"Service": {"Id": "srv-1", "Name": "PetSearch"}}, {"Id": "srv-1"}
    )
    cloudmap.add_response(
        "get_service",
        {"Service": {"Id": "srv-2", "Name": "payments", "NamespaceId": "ns-1"}},
        {"Id": "srv-2"},
    )
    entry = ServiceEntry("search", xray_names=("PetSearch_AWS::ECS::Fargate", "PetSearch"))
    settings = AwsSettings(mapping=ServiceMapping(services={"search": entry}))
    source = make_source(stubs, settings, graph_window=window)
    result = source.get_service_graph()
    stubs.check()
    assert result.status is ToolStatus.SUCCESS
    nodes = {n["name"]: n for n in result.data["nodes"]}
    assert list(nodes) == ["PetSite_client", f"{DB}_Database::SQL", "payments", "search"]
    assert nodes["search"]["type"] == "AWS::ECS::Fargate"
    assert nodes["payments"]["type"] == "AWS::ServiceDiscovery::Service"
    assert result.data["edges"] == [
        {
            "source": "PetSite_client",
            "target": "search",
            "requests": 200,
            "error_rate": 0.02,
            "fault_rate": 0.05,
        },
        {
            "source": "search",
            "target": f"{DB}_Database::SQL",
            "requests": 50,
            "error_rate": 0.0,
            "fault_rate": 0.5,
        },
    ]


def test_graph_node_names_are_never_redacted_in_logs(stubs: Stubs) -> None:
    window = (T0, T0 + timedelta(hours=1))
    stub_graph(stubs, window)
    entry = ServiceEntry("svc", log_groups=("/shop/svc",), use_defaults=False)
    settings = AwsSettings(mapping=ServiceMapping(services={"svc": entry}))
    message = f"pool exhausted on {DB} for bob@example.com"
    stubs["logs"].add_response(
        "filter_log_events",
        {
            "events": [
                {"eventId": "e1", "timestamp": int(T0.timestamp() * 1000), "message": message}
            ]
        },
    )
    source = make_source(stubs, settings, graph_window=window)
    result = source.search_logs(T0, T0 + timedelta(minutes=1), service="svc")
    stubs.check()
    text = result.data["events"][0]["message"]
    assert f"pool exhausted on {DB} for <EMAIL:" in text
    assert "bob@example.com" not in text


def test_cloud_map_on_moto(moto_endpoint: str, moto_clients: Any) -> None:
    registry = raw_client("servicediscovery", moto_endpoint)
    name = f"ledger-{next(_ids)}"
    registry.create_http_namespace(Name=f"ns-{name}")
    namespace = next(
        n["Id"] for n in registry.list_namespaces()["Namespaces"] if n["Name"] == f"ns-{name}"
    )
    registry.create_service(Name=name, NamespaceId=namespace)
    source = make_source(moto_clients, graph_window=(T0, T0 + timedelta(hours=1)))
    result = source.get_service_graph()
    assert result.status is ToolStatus.SUCCESS
    assert {
        "name": name,
        "type": "AWS::ServiceDiscovery::Service",
        "requests": 0,
        "error_rate": 0.0,
        "fault_rate": 0.0,
    } in result.data["nodes"]


def test_graph_failure_without_cloud_map_is_partial(stubs: Stubs) -> None:
    stubs["xray"].add_client_error(
        "get_service_graph", service_error_code="AccessDeniedException", http_status_code=403
    )
    stubs["servicediscovery"].add_response("list_services", {"Services": []})
    source = make_source(stubs, graph_window=(T0, T0 + timedelta(hours=1)))
    result = source.get_service_graph()
    assert result.status is ToolStatus.PARTIAL
    assert result.error is not None and result.error.code is ErrorCode.ACCESS_DENIED
    assert result.data == {"nodes": [], "edges": []}
