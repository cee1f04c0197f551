"""InMemoryTools: every method, filtering, ordering, paging bounds and input errors."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from opx.domain.errors import ErrorCode
from opx.domain.tool_result import MAX_TOOL_RESULT_BYTES, ToolResult, ToolStatus
from opx.tools.base import TelemetryTools
from opx.tools.memory import InMemoryTools, Source, traffic_family
from opx.tools.paging import collect
from opx.tools.records import ChangeKind, LogEvent, LogLevel

from .builders import T0, at, change, doc, graph, incident, log, series, span

END = at(24 * 60)


def _all(call: Any) -> dict[str, Any]:
    whole = collect(call, max_pages=10_000)
    assert whole.status is ToolStatus.SUCCESS and not whole.truncated
    return whole.data


def _pages(call: Any) -> list[ToolResult]:
    pages, token = [], None
    while True:
        page = call(token)
        assert page.size_bytes() <= MAX_TOOL_RESULT_BYTES
        pages.append(page)
        token = page.next_token
        if token is None:
            return pages


def _failed(result: ToolResult, code: ErrorCode) -> bool:
    return (
        result.status is ToolStatus.FAILED
        and result.error is not None
        and result.error.code is code
    )


def test_implements_the_protocol() -> None:
    tools = InMemoryTools("mem")
    assert isinstance(tools, TelemetryTools)
    assert tools.source_name == "mem"


def test_empty_sources_answer_empty_success() -> None:
    tools = InMemoryTools("mem")
    assert tools.get_metrics(T0, END).data == {"series": []}
    assert tools.search_logs(T0, END).data == {"events": []}
    assert tools.get_service_graph().data == {"nodes": [], "edges": []}
    assert tools.retrieve_knowledge("anything").data == {"documents": []}
    assert tools.search_incidents().data == {"incidents": []}


def test_list_metrics_is_sorted_and_filtered() -> None:
    tools = InMemoryTools("mem", series=[series("b", "M"), series("a", "Z"), series("a", "M")])
    ids = [m["id"] for m in tools.list_metrics().data["metrics"]]
    assert ids == ["a|M|Average", "a|Z|Average", "b|M|Average"]
    assert [m["id"] for m in tools.list_metrics(service="b").data["metrics"]] == ["b|M|Average"]
    assert "timestamps" not in tools.list_metrics().data["metrics"][0]


def test_metric_time_filter_is_half_open() -> None:
    tools = InMemoryTools("mem", series=[series("a", "M", points=10)])
    found = tools.get_metrics(at(2), at(5)).data["series"][0]
    assert found["timestamps"] == [
        "2026-03-01T12:02:00Z",
        "2026-03-01T12:03:00Z",
        "2026-03-01T12:04:00Z",
    ]
    assert found["values"] == [3.0, 4.5, 6.0]
    assert tools.get_metrics(at(20), at(30)).data == {"series": []}
    assert tools.get_metrics(at(3), at(3)).data == {"series": []}


def test_metric_filters_by_service_metric_and_stat() -> None:
    tools = InMemoryTools(
        "mem",
        series=[series("a", "M", "p99"), series("a", "M", "Average"), series("b", "M", "p99")],
    )
    result = tools.get_metrics(T0, END, service="a", metric="M", stat="p99")
    assert [s["id"] for s in result.data["series"]] == ["a|M|p99"]


def test_large_metric_answers_page_and_reassemble() -> None:
    many = [series(f"svc-{i}", "Latency", points=1400) for i in range(4)]
    tools = InMemoryTools("mem", series=many)
    pages = _pages(lambda tok: tools.get_metrics(T0, END, next_token=tok))
    assert len(pages) > 4
    data = _all(lambda tok: tools.get_metrics(T0, END, next_token=tok))
    assert data["series"] == [s.to_data() for s in many]


def test_get_traffic_keeps_traffic_families_of_one_service() -> None:
    tools = InMemoryTools(
        "mem",
        series=[
            series("a", "RequestCount"),
            series("a", "CPUUtilization"),
            series("a", "5XXError"),
            series("b", "Latency"),
        ],
    )
    result = tools.get_traffic("a", T0, END)
    assert [s["metric"] for s in result.data["series"]] == ["5XXError", "RequestCount"]
    assert _failed(tools.get_traffic("", T0, END), ErrorCode.INVALID_INPUT)


@pytest.mark.parametrize(
    ("metric", "family"),
    [
        ("RequestCount", "request"),
        ("Invocations", "request"),
        ("Count", "request"),
        ("HTTPCode_Target_5XX_Count", "error"),
        ("ThrottledRequests", "error"),
        ("TargetResponseTime", "latency"),
        ("Duration", "latency"),
        ("Availability", "availability"),
        ("CPUUtilization", None),
        ("ConnectionCount", None),
    ],
)
def test_traffic_family(metric: str, family: str | None) -> None:
    assert traffic_family(metric) == family


def test_logs_are_in_time_order_with_input_order_ties() -> None:
    events = [log(1, 5), log(2, 1), log(3, 5), log(4, 3)]
    tools = InMemoryTools("mem", logs=events)
    ids = [e["id"] for e in tools.search_logs(T0, END).data["events"]]
    assert ids == ["log-2", "log-4", "log-1", "log-3"]
    again = InMemoryTools("mem", logs=events)
    assert again.search_logs(T0, END) == tools.search_logs(T0, END)


def test_log_pattern_is_a_plain_case_insensitive_substring() -> None:
    events = [
        log(1, 0, message="Timeout after 30s"),
        log(2, 1, message="a.b(c)*"),
        log(3, 2, service="db", message="TIMEOUT"),
    ]
    tools = InMemoryTools("mem", logs=events)
    assert [e["id"] for e in tools.search_logs(T0, END, pattern="timeout").data["events"]] == [
        "log-1",
        "log-3",
    ]
    assert [e["id"] for e in tools.search_logs(T0, END, pattern=".b(c)*").data["events"]] == [
        "log-2"
    ]
    assert tools.search_logs(T0, END, pattern="a.*").data["events"] == []
    only_db = tools.search_logs(T0, END, service="db", pattern="timeout").data["events"]
    assert [e["id"] for e in only_db] == ["log-3"]


def test_log_window_is_half_open() -> None:
    tools = InMemoryTools("mem", logs=[log(i, i) for i in range(5)])
    ids = [e["id"] for e in tools.search_logs(at(1), at(3)).data["events"]]
    assert ids == ["log-1", "log-2"]


def test_many_logs_page_within_the_limit() -> None:
    events = [
        LogEvent(f"log-{i}", at(i / 60), "api", LogLevel.ERROR, "x" * (i % 300))
        for i in range(3000)
    ]
    tools = InMemoryTools("mem", logs=events)
    pages = _pages(lambda tok: tools.search_logs(T0, END, next_token=tok))
    assert len(pages) > 10
    data = _all(lambda tok: tools.search_logs(T0, END, next_token=tok))
    assert data["events"] == [e.to_data() for e in events]


def test_traces_order_and_error_filter() -> None:
    spans = [span("s3", 1), span("s1", 1, fault=True), span("s2", 0), span("s4", 2, "db")]
    tools = InMemoryTools("mem", spans=spans)
    ids = [s["span_id"] for s in tools.get_traces(T0, END).data["spans"]]
    assert ids == ["s2", "s1", "s3", "s4"]
    assert [s["span_id"] for s in tools.get_traces(T0, END, errors_only=True).data["spans"]] == [
        "s1"
    ]
    assert [s["span_id"] for s in tools.get_traces(T0, END, service="db").data["spans"]] == ["s4"]


def test_service_graph() -> None:
    data = InMemoryTools("mem", graph=graph()).get_service_graph().data
    assert [n["name"] for n in data["nodes"]] == ["api", "db", "web"]
    assert data["edges"] == [{"source": "api", "target": "db"}, {"source": "web", "target": "api"}]


def test_deployments_and_config_changes_are_split_by_kind() -> None:
    changes = [
        change("c2", 5, ChangeKind.DEPLOYMENT),
        change("c1", 5, ChangeKind.DEPLOYMENT),
        change("c3", 1, ChangeKind.CONFIG),
        change("c4", 2, ChangeKind.INFRASTRUCTURE, None),
        change("c5", 99, ChangeKind.DEPLOYMENT, "db"),
    ]
    tools = InMemoryTools("mem", changes=changes)
    deploys = tools.list_deployments(T0, at(10)).data["changes"]
    assert [c["change_id"] for c in deploys] == ["c1", "c2"]
    configs = tools.list_config_changes(T0, END).data["changes"]
    assert [c["change_id"] for c in configs] == ["c3", "c4"]
    assert configs[1]["service"] is None
    assert [c["change_id"] for c in tools.list_deployments(T0, END, "db").data["changes"]] == ["c5"]


def test_search_incidents_orders_filters_and_caps() -> None:
    incidents = [
        incident("i-b", 3),
        incident("i-a", 3),
        incident("i-c", 1),
        incident("i-d", 2, service="web", cause="api", title="checkout errors"),
    ]
    tools = InMemoryTools("mem", incidents=incidents)
    ids = [i["incident_id"] for i in tools.search_incidents().data["incidents"]]
    assert ids == ["i-c", "i-d", "i-a", "i-b"]
    by_service = tools.search_incidents(service="api").data["incidents"]
    assert [i["incident_id"] for i in by_service] == ["i-c", "i-d", "i-a", "i-b"]
    by_web = tools.search_incidents(service="web").data["incidents"]
    assert [i["incident_id"] for i in by_web] == ["i-d"]
    text = tools.search_incidents(text="Checkout failures").data["incidents"]
    assert [i["incident_id"] for i in text] == ["i-d"]
    assert [i["incident_id"] for i in tools.search_incidents(limit=2).data["incidents"]] == [
        "i-c",
        "i-d",
    ]
    assert _failed(tools.search_incidents(limit=0), ErrorCode.INVALID_INPUT)


def test_search_incidents_limit_is_capped_at_fifty() -> None:
    tools = InMemoryTools("mem", incidents=[incident(f"i-{n:03}", n) for n in range(80)])
    result = tools.search_incidents(limit=500)
    assert result.size_bytes() <= MAX_TOOL_RESULT_BYTES
    count = len(result.data["incidents"])
    assert count == 50 or (count < 50 and result.truncated)


def test_get_resolution() -> None:
    tools = InMemoryTools("mem", incidents=[incident("i-1", 1)])
    found = tools.get_resolution("i-1").data
    assert found["found"] is True
    assert found["resolution"] == {
        "type": "MITIGATION",
        "summary": "fixed i-1",
        "actions": ["scale up"],
        "time_to_resolve_minutes": 42.0,
    }
    assert tools.get_resolution("nope").data == {
        "incident_id": "nope",
        "found": False,
        "resolution": None,
    }


def test_retrieve_knowledge_ranks_the_matching_document_first() -> None:
    docs = [
        doc(
            "rb-cache",
            "Cache evictions",
            {"Symptoms": "cache hit ratio falls", "Fix": "increase cache memory"},
        ),
        doc(
            "rb-db",
            "Database throttling",
            {
                "Symptoms": "orders-db throttled requests rise, read capacity exceeded",
                "Fix": "raise provisioned capacity",
            },
            ("orders-db",),
        ),
        doc("arch", "Architecture", {"Overview": "web calls api which calls orders-db"}),
    ]
    tools = InMemoryTools("mem", documents=docs)
    found = tools.retrieve_knowledge("orders-db throttled capacity").data["documents"]
    assert found[0]["document_id"] == "rb-db" and found[0]["section"] == "Symptoms"
    assert set(found[0]) == {
        "document_id",
        "title",
        "doc_type",
        "services",
        "excerpt",
        "section",
        "score",
    }
    scores = [d["score"] for d in found]
    assert scores == sorted(scores, reverse=True)
    assert all(round(s, 4) == s for s in scores)
    assert tools.retrieve_knowledge("kubernetes").data == {"documents": []}
    assert len(tools.retrieve_knowledge("orders-db", limit=1).data["documents"]) == 1
    assert _failed(tools.retrieve_knowledge("x", limit=0), ErrorCode.INVALID_INPUT)


def test_knowledge_limit_is_capped_and_excerpts_bounded() -> None:
    docs = [doc(f"d{i:02}", f"Doc {i}", {"Body": "disk full " * 200}) for i in range(15)]
    result = InMemoryTools("mem", documents=docs).retrieve_knowledge("disk", limit=99)
    found = result.data["documents"]
    assert len(found) == 10
    assert [d["document_id"] for d in found] == [f"d{i:02}" for i in range(10)]
    assert all(len(d["excerpt"]) <= 400 for d in found)
    assert result.size_bytes() <= MAX_TOOL_RESULT_BYTES


@pytest.mark.parametrize("bad", [datetime(2026, 3, 1), None])
def test_bad_windows_are_invalid_input(bad: datetime | None) -> None:
    tools = InMemoryTools("mem", logs=[log(1, 0)])
    start = bad if bad is not None else END
    end = END if bad is not None else T0
    assert _failed(tools.search_logs(start, end), ErrorCode.INVALID_INPUT)
    assert _failed(tools.get_metrics(start, end), ErrorCode.INVALID_INPUT)


def test_bad_or_foreign_next_token_is_invalid_input() -> None:
    tools = InMemoryTools("mem", series=[series(f"s{i}", "M", points=2000) for i in range(3)])
    first = tools.get_metrics(T0, END)
    assert first.next_token is not None
    assert _failed(tools.get_metrics(T0, END, next_token="%%%"), ErrorCode.INVALID_INPUT)
    assert _failed(
        tools.get_metrics(T0, END, service="s1", next_token=first.next_token),
        ErrorCode.INVALID_INPUT,
    )
    assert _failed(tools.list_metrics(next_token=first.next_token), ErrorCode.INVALID_INPUT)
    assert tools.get_metrics(T0, END, next_token=first.next_token).status is ToolStatus.SUCCESS


def test_unavailable_source_fails_only_its_tools() -> None:
    tools = InMemoryTools("mem", logs=[log(1, 0)], unavailable={Source.METRICS: "metrics.csv:3: x"})
    failed = tools.get_metrics(T0, END)
    assert _failed(failed, ErrorCode.DATA_SOURCE_UNAVAILABLE)
    assert failed.error is not None and failed.error.message == "metrics.csv:3: x"
    assert _failed(tools.list_metrics(), ErrorCode.DATA_SOURCE_UNAVAILABLE)
    assert _failed(tools.get_traffic("a", T0, END), ErrorCode.DATA_SOURCE_UNAVAILABLE)
    assert tools.search_logs(T0, END).status is ToolStatus.SUCCESS
    assert tools.unavailable_sources == {"metrics": "metrics.csv:3: x"}


def test_metric_directions() -> None:
    tools = InMemoryTools("mem", metric_directions={"Latency": "up", "Availability": "down"})
    assert tools.metric_directions == {"Availability": "down", "Latency": "up"}
    with pytest.raises(ValueError, match="up, down or both"):
        InMemoryTools("mem", metric_directions={"x": "sideways"})


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        InMemoryTools("mem", incidents=[incident("i-1", 1), incident("i-1", 2)])


def test_results_are_deterministic_across_instances() -> None:
    def build() -> InMemoryTools:
        return InMemoryTools(
            "mem",
            series=[series(f"s{i}", "M", points=900) for i in range(5)],
            spans=[span(f"s{i}", i % 7) for i in range(200)],
        )

    one, two = build(), build()
    assert _pages(lambda t: one.get_metrics(T0, END, next_token=t)) == _pages(
        lambda t: two.get_metrics(T0, END, next_token=t)
    )
    assert one.get_traces(T0, END - timedelta(minutes=1)) == two.get_traces(
        T0, END - timedelta(minutes=1)
    )
