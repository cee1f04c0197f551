"""CloudWatch metrics through the AWS source: moto for discovery and points, Stubber for paging
and throttling with the exact requests."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from opx.domain.errors import ErrorCode
from opx.domain.tool_result import MAX_TOOL_RESULT_BYTES, ToolStatus
from opx.tools.aws.mapping import MetricStat, MetricTemplate, ServiceEntry, ServiceMapping
from opx.tools.aws.settings import AwsSettings
from opx.tools.paging import collect
from tests.tools.aws.conftest import T0, Stubs, make_source, raw_client

_names = itertools.count(1)


def seed_lambda(endpoint: str, function: str, minutes: int = 30) -> None:
    cloudwatch = raw_client("cloudwatch", endpoint)
    dims = [{"Name": "FunctionName", "Value": function}]
    data = []
    for minute in range(minutes):
        stamp = T0 + timedelta(minutes=minute)
        data.append(
            {"MetricName": "Invocations", "Dimensions": dims, "Value": 100.0, "Timestamp": stamp}
        )
        data.append(
            {
                "MetricName": "Errors",
                "Dimensions": dims,
                "Value": float(minute % 3),
                "Timestamp": stamp,
            }
        )
    # Same metric under another dimension set: not the function's own series.
    data.append(
        {
            "MetricName": "Errors",
            "Timestamp": T0,
            "Value": 99.0,
            "Dimensions": [*dims, {"Name": "Resource", "Value": f"{function}:prod"}],
        }
    )
    for first in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=data[first : first + 500])


def test_metrics_discovered_and_read_from_moto(moto_endpoint: str, moto_clients: Any) -> None:
    function = f"checkout-{next(_names)}"
    seed_lambda(moto_endpoint, function)
    source = make_source(moto_clients, services=(function,))

    listed = source.list_metrics(function)
    assert listed.status is ToolStatus.SUCCESS
    assert [m["id"] for m in listed.data["metrics"]] == [
        f"{function}|Errors|Sum",
        f"{function}|Invocations|Sum",
    ]

    window = (T0, T0 + timedelta(minutes=30))
    errors = source.get_metrics(*window, service=function, metric="Errors")
    assert errors.status is ToolStatus.SUCCESS
    (series,) = errors.data["series"]
    assert series["values"] == [float(m % 3) for m in range(30)]
    assert series["timestamps"][0] == "2026-05-01T12:00:00Z"
    assert series["unit"] == "Count"

    traffic = source.get_traffic(function, *window)
    assert sorted(s["metric"] for s in traffic.data["series"]) == ["Errors", "Invocations"]
    # service=None reads every known service.
    everything = source.get_metrics(*window)
    assert {s["id"] for s in everything.data["series"]} == {
        f"{function}|Errors|Sum",
        f"{function}|Invocations|Sum",
    }


def test_long_series_are_paged_under_10_kb(moto_endpoint: str, moto_clients: Any) -> None:
    function = f"busy-{next(_names)}"
    seed_lambda(moto_endpoint, function, minutes=600)
    source = make_source(moto_clients, services=(function,))
    window = (T0, T0 + timedelta(minutes=600))
    pages = []

    def call(token: str | None) -> Any:
        page = source.get_metrics(*window, service=function, next_token=token)
        pages.append(page)
        return page

    merged = collect(call)
    assert len(pages) > 1
    assert all(p.size_bytes() <= MAX_TOOL_RESULT_BYTES for p in pages)
    assert merged.status is ToolStatus.SUCCESS
    by_id = {s["id"]: s for s in merged.data["series"]}
    assert len(by_id[f"{function}|Invocations|Sum"]["values"]) == 600
    again = source.get_metrics(*window, service=function)
    assert again.model_dump_json() == pages[0].model_dump_json()


def explicit_settings(service: str) -> AwsSettings:
    template = MetricTemplate(
        "Shop", (("Service", service),), (MetricStat("Latency", "p99", "Milliseconds"),)
    )
    entry = ServiceEntry(service, metrics=(template,), use_defaults=False)
    return AwsSettings(mapping=ServiceMapping(services={service: entry}))


def expected_request(token: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "MetricDataQueries": [
            {
                "Id": "m0",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "Shop",
                        "MetricName": "Latency",
                        "Dimensions": [{"Name": "Service", "Value": "cart"}],
                    },
                    "Period": 60,
                    "Stat": "p99",
                },
                "ReturnData": True,
            }
        ],
        "StartTime": T0,
        "EndTime": T0 + timedelta(minutes=10),
        "ScanBy": "TimestampAscending",
    }
    if token:
        request["NextToken"] = token
    return request


def page(minutes: range, token: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "MetricDataResults": [
            {
                "Id": "m0",
                "Timestamps": [T0 + timedelta(minutes=m) for m in minutes],
                "Values": [float(m) for m in minutes],
                "StatusCode": "PartialData" if token else "Complete",
            }
        ]
    }
    if token:
        result["NextToken"] = token
    return result


def test_pages_of_get_metric_data_are_followed(stubs: Stubs) -> None:
    stubber = stubs["cloudwatch"]
    stubber.add_response("get_metric_data", page(range(0, 5), "t1"), expected_request())
    stubber.add_response("get_metric_data", page(range(5, 10), None), expected_request("t1"))
    source = make_source(stubs, explicit_settings("cart"))
    result = source.get_metrics(T0, T0 + timedelta(minutes=10), service="cart")
    stubs.check()
    assert result.status is ToolStatus.SUCCESS
    assert result.data["series"][0]["values"] == [float(m) for m in range(10)]
    assert result.data["series"][0]["id"] == "cart|Latency|p99"


def test_throttled_second_page_gives_partial(stubs: Stubs) -> None:
    stubber = stubs["cloudwatch"]
    stubber.add_response("get_metric_data", page(range(0, 5), "t1"), expected_request())
    stubber.add_client_error(
        "get_metric_data",
        service_error_code="Throttling",
        http_status_code=400,
        expected_params=expected_request("t1"),
    )
    source = make_source(stubs, explicit_settings("cart"))
    result = source.get_metrics(T0, T0 + timedelta(minutes=10), service="cart")
    stubs.check()
    assert result.status is ToolStatus.PARTIAL
    assert result.error is not None and result.error.code is ErrorCode.RATE_LIMIT_EXCEEDED
    assert result.data["series"][0]["values"] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_throttled_first_page_gives_failed(stubs: Stubs) -> None:
    stubs["cloudwatch"].add_client_error(
        "get_metric_data", service_error_code="ThrottlingException", http_status_code=400
    )
    source = make_source(stubs, explicit_settings("cart"))
    result = source.get_metrics(T0, T0 + timedelta(minutes=10), service="cart")
    assert result.status is ToolStatus.FAILED
    assert result.error is not None and result.error.code is ErrorCode.RATE_LIMIT_EXCEEDED


def test_bad_window_and_token_are_invalid_input(stubs: Stubs) -> None:
    source = make_source(stubs, explicit_settings("cart"))
    reversed_window = source.get_metrics(T0 + timedelta(minutes=1), T0, service="cart")
    assert reversed_window.error is not None
    assert reversed_window.error.code is ErrorCode.INVALID_INPUT
    foreign = source.get_metrics(T0, T0, service="cart", next_token="not-a-token")
    assert foreign.error is not None and foreign.error.code is ErrorCode.INVALID_INPUT
    assert stubs.stubbers == {}
