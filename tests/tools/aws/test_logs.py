"""CloudWatch Logs through the AWS source: FilterLogEvents on moto; escaping, Insights and
StopQuery with Stubber and the exact requests."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opx.domain.errors import ErrorCode
from opx.domain.tool_result import ToolStatus
from opx.tools.aws.deadline import Deadlines
from opx.tools.aws.logs import filter_term, insights_query, level_of
from opx.tools.aws.mapping import ServiceEntry, ServiceMapping
from opx.tools.aws.settings import AwsSettings
from opx.tools.records import LogLevel
from tests.tools.aws.conftest import FakeClock, Stubs, make_source, raw_client

_names = itertools.count(1)
DB_NODE = "adoptions@services-database.us-west-2.rds.amazonaws.com_Database::SQL"
TRACE = "1-6b089500-0123456789abcdef01234567"


def recent_minute() -> datetime:
    # CloudWatch Logs (and moto) refuse events older than 14 days, so these are recent.
    return datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)


def seed(endpoint: str, group: str, start: datetime, messages: list[str]) -> None:
    logs = raw_client("logs", endpoint)
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s1")
    events = [
        {"timestamp": int((start + timedelta(seconds=i)).timestamp() * 1000), "message": m}
        for i, m in enumerate(messages)
    ]
    logs.put_log_events(logGroupName=group, logStreamName="s1", logEvents=events)


def test_filter_log_events_on_moto(moto_endpoint: str, moto_clients: Any) -> None:
    function = f"payments-{next(_names)}"
    start = recent_minute()
    seed(
        moto_endpoint,
        f"/aws/lambda/{function}",
        start,
        [
            "INFO started",
            json.dumps(
                {
                    "level": "error",
                    "msg": "card declined for jane@example.com",
                    "traceId": f"Root={TRACE};Parent=53995c3f42cd8ad8",
                }
            ),
            "WARN slow call to adoptions@services-database.us-west-2.rds.amazonaws.com "
            "from 10.0.3.7 key AKIAABCDEFGHIJKLMNOP",
        ],
    )
    source = make_source(moto_clients, services=(function, DB_NODE))
    result = source.search_logs(start, start + timedelta(minutes=1), service=function)
    assert result.status is ToolStatus.SUCCESS
    events = result.data["events"]
    assert [e["level"] for e in events] == ["INFO", "ERROR", "WARN"]
    assert {e["service"] for e in events} == {function}
    assert events[1]["trace_id"] == TRACE
    assert events[1]["span_id"] == "53995c3f42cd8ad8"
    assert "jane@example.com" not in events[1]["message"]
    assert "<EMAIL:" in events[1]["message"]
    slow = events[2]["message"]
    assert "adoptions@services-database.us-west-2.rds.amazonaws.com from" in slow
    assert "10.0.3.7" not in slow and "AKIAABCDEFGHIJKLMNOP" not in slow

    matched = source.search_logs(
        start, start + timedelta(minutes=1), service=function, pattern="started"
    )
    assert [e["message"] for e in matched.data["events"]] == ["INFO started"]


def test_missing_configured_group_is_an_error_but_default_groups_are_not(
    moto_endpoint: str, moto_clients: Any
) -> None:
    function = f"orders-{next(_names)}"
    start = recent_minute()
    seed(moto_endpoint, f"/aws/lambda/{function}", start, ["INFO ok"])
    quiet = make_source(moto_clients, services=(function,))
    assert quiet.search_logs(start, start + timedelta(minutes=1)).status is ToolStatus.SUCCESS

    entry = ServiceEntry(function, log_groups=(f"/missing/{function}",))
    settings = AwsSettings(mapping=ServiceMapping(services={function: entry}))
    loud = make_source(moto_clients, settings)
    result = loud.search_logs(start, start + timedelta(minutes=1), service=function)
    assert result.status is ToolStatus.PARTIAL
    assert result.error is not None
    assert result.error.code is ErrorCode.DATA_SOURCE_UNAVAILABLE
    assert [e["message"] for e in result.data["events"]] == ["INFO ok"]


def only_group(group: str, mode: str = "filter", **deadlines: Any) -> AwsSettings:
    entry = ServiceEntry("svc", log_groups=(group,), use_defaults=False)
    return AwsSettings(
        mapping=ServiceMapping(services={"svc": entry}),
        logs_mode=mode,
        deadlines=Deadlines(**deadlines) if deadlines else Deadlines(),
    )


T = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
MS = int(T.timestamp() * 1000)


def test_injection_in_pattern_is_one_literal_term(stubs: Stubs) -> None:
    attack = 'x" ?ERROR ?"y\\'
    stubs["logs"].add_response(
        "filter_log_events",
        {"events": []},
        {
            "logGroupName": "/shop/svc",
            "startTime": MS,
            "endTime": MS + 59_999,
            "limit": 1001,
            "filterPattern": '"x\\" ?ERROR ?\\"y\\\\"',
        },
    )
    source = make_source(stubs, only_group("/shop/svc"))
    result = source.search_logs(T, T + timedelta(minutes=1), service="svc", pattern=attack)
    stubs.check()
    assert result.status is ToolStatus.SUCCESS
    assert filter_term("a\nb") == '"ab"'


def test_insights_query_escapes_and_ignores_case() -> None:
    query = insights_query('Timeout") | fields @x | filter ("', 100)
    assert query == (
        "fields @timestamp, @message, @log, @logStream, @ptr"
        ' | filter strcontains(tolower(@message), "timeout\\") | fields @x | filter (\\"")'
        " | sort @timestamp asc | limit 100"
    )


def row(seconds: int, message: str, ptr: str) -> list[dict[str, str]]:
    stamp = (T + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return [
        {"field": "@timestamp", "value": stamp},
        {"field": "@message", "value": message},
        {"field": "@log", "value": "123456789012:/shop/svc"},
        {"field": "@ptr", "value": ptr},
    ]


def start_request(pattern: str | None) -> dict[str, Any]:
    return {
        "logGroupNames": ["/shop/svc"],
        "startTime": int(T.timestamp()),
        "endTime": int(T.timestamp()) + 60,
        "queryString": insights_query(pattern, 1001),
        "limit": 1001,
    }


def test_insights_complete(stubs: Stubs) -> None:
    logs = stubs["logs"]
    logs.add_response("start_query", {"queryId": "q1"}, start_request("Timeout"))
    logs.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q1"})
    logs.add_response(
        "get_query_results",
        {
            "status": "Complete",
            "results": [row(5, "ERROR Timeout b", "p2"), row(1, "ERROR Timeout a", "p1")],
        },
        {"queryId": "q1"},
    )
    clock = FakeClock()
    source = make_source(stubs, only_group("/shop/svc", "insights"), clock=clock)
    result = source.search_logs(T, T + timedelta(minutes=1), service="svc", pattern="Timeout")
    stubs.check()
    assert result.status is ToolStatus.SUCCESS
    assert [e["id"] for e in result.data["events"]] == ["p1", "p2"]
    assert result.data["events"][0]["timestamp"] == "2026-05-01T12:00:01Z"
    assert clock.sleeps == [0.25]


def test_insights_stopped_at_the_deadline(stubs: Stubs) -> None:
    logs = stubs["logs"]
    logs.add_response("start_query", {"queryId": "q9"}, start_request(None))
    for _ in range(4):
        logs.add_response(
            "get_query_results",
            {"status": "Running", "results": [row(1, "INFO partial", "p1")]},
            {"queryId": "q9"},
        )
    logs.add_response("stop_query", {"success": True}, {"queryId": "q9"})
    clock = FakeClock()
    settings = only_group("/shop/svc", "insights", per_tool=(("search_logs", 1.0),))
    source = make_source(stubs, settings, clock=clock)
    result = source.search_logs(T, T + timedelta(minutes=1), service="svc")
    stubs.check()
    assert result.status is ToolStatus.PARTIAL
    assert result.error is not None and result.error.code is ErrorCode.TIMEOUT
    assert [e["message"] for e in result.data["events"]] == ["INFO partial"]
    assert clock.now - 1000.0 < 1.0


@pytest.mark.parametrize(
    ("message", "level"),
    [
        ('{"severity": "WARNING", "msg": "x"}', LogLevel.WARN),
        ("time=1 level=error msg=boom", LogLevel.ERROR),
        ("[CRITICAL] disk full", LogLevel.FATAL),
        ("REPORT RequestId: 1 Duration: 3 ms", LogLevel.INFO),
        ("0 errors found", LogLevel.INFO),
    ],
)
def test_level_of(message: str, level: LogLevel) -> None:
    assert level_of(message, json.loads(message) if message.startswith("{") else None) is level


def test_injection_in_service_names_never_reaches_logs(stubs: Stubs) -> None:
    # Default log groups built from such a name are not valid names, so nothing is sent (a
    # request to the stub without a response would have failed the call).
    source = make_source(stubs)
    result = source.search_logs(T, T + timedelta(minutes=1), service='x" | filter 1=1 | "*')
    assert result.status is ToolStatus.SUCCESS
    assert result.data == {"events": []}
    entry = ServiceEntry("svc", log_groups=("/aws/*",), use_defaults=False)
    settings = AwsSettings(mapping=ServiceMapping(services={"svc": entry}))
    refused = make_source(stubs, settings).search_logs(T, T + timedelta(minutes=1), service="svc")
    assert refused.status is ToolStatus.FAILED
    assert refused.error is not None and refused.error.code is ErrorCode.INVALID_INPUT
