"""Typed records: UTC normalisation, validation and JSON shapes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from opx.tools.records import (
    GraphEdge,
    GraphNode,
    LogEvent,
    LogLevel,
    MetricSeries,
    ServiceGraph,
    iso_z,
)

from .builders import T0, at, log, series, span


def test_offsets_are_converted_to_utc_and_printed_with_z() -> None:
    plus_two = timezone(timedelta(hours=2))
    shifted = LogEvent("x", datetime(2026, 3, 1, 14, 0, tzinfo=plus_two), "api", LogLevel.INFO, "m")
    assert shifted.timestamp == T0
    assert shifted.to_data()["timestamp"] == "2026-03-01T12:00:00Z"
    assert iso_z(at(0.5)) == "2026-03-01T12:00:30Z"


def test_naive_times_are_rejected() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        MetricSeries("a", "m", "Sum", "", (datetime(2026, 1, 1),), (1.0,))


def test_series_must_be_strictly_increasing_and_finite() -> None:
    with pytest.raises(ValueError, match="strictly increase"):
        MetricSeries("a", "m", "Sum", "", (at(1), at(0)), (1.0, 2.0))
    with pytest.raises(ValueError, match="finite"):
        MetricSeries("a", "m", "Sum", "", (at(0),), (float("nan"),))
    with pytest.raises(ValueError, match="timestamps but"):
        MetricSeries("a", "m", "Sum", "", (at(0),), ())


def test_series_shape() -> None:
    data = series("api", "Latency", "p99", points=2).to_data()
    assert data == {
        "id": "api|Latency|p99",
        "service": "api",
        "metric": "Latency",
        "stat": "p99",
        "unit": "Count",
        "timestamps": ["2026-03-01T12:00:00Z", "2026-03-01T12:01:00Z"],
        "values": [0.0, 1.5],
    }


def test_optional_fields_are_omitted_from_logs_and_spans() -> None:
    assert "trace_id" not in log(1, 0).to_data()
    assert "status_code" not in span("s", 0).to_data()


def test_graph_sorts_dedupes_and_adds_edge_endpoints() -> None:
    graph = ServiceGraph(
        (GraphNode("b"), GraphNode("a", "svc"), GraphNode("a")),
        (GraphEdge("b", "c"), GraphEdge("a", "b"), GraphEdge("b", "c")),
    )
    assert [n.to_data() for n in graph.nodes] == [
        {"name": "a", "type": "svc"},
        {"name": "b", "type": None},
        {"name": "c", "type": None},
    ]
    assert [(e.source, e.target) for e in graph.edges] == [("a", "b"), ("b", "c")]
