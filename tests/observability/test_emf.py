"""The CloudWatch Embedded Metric Format emitter and the metric names."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from opx.observability.emf import EmfError, emf_record, emit
from opx.observability.metrics import ALL_METRICS, NAMESPACE, REPLAY_COUNT, Metric


def emf_lines(stderr: str) -> list[dict[str, Any]]:
    """The EMF records among a command's stderr lines."""
    records = []
    for line in stderr.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            records.append(json.loads(line))
    return records


def test_one_dimension_free_line_with_the_metric_and_its_properties() -> None:
    stream = io.StringIO()
    emit({REPLAY_COUNT: 1}, properties={"identical": True}, stream=stream, clock=lambda: 1700.5)
    text = stream.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1
    assert json.loads(text) == {
        "_aws": {
            "Timestamp": 1_700_500,
            "CloudWatchMetrics": [
                {
                    "Namespace": "Phase6",
                    "Dimensions": [[]],
                    "Metrics": [{"Name": "Replay/Count", "Unit": "Count"}],
                }
            ],
        },
        "Replay/Count": 1,
        "identical": True,
    }


def test_the_same_input_gives_the_same_line() -> None:
    lines = []
    for _ in range(2):
        stream = io.StringIO()
        emit({REPLAY_COUNT: 1}, properties={"b": 1, "a": 2}, stream=stream, clock=lambda: 3.0)
        lines.append(stream.getvalue())
    assert lines[0] == lines[1]


@pytest.mark.parametrize(
    ("values", "properties"),
    [
        ({}, None),
        ({REPLAY_COUNT: float("nan")}, None),
        ({REPLAY_COUNT: float("inf")}, None),
        ({REPLAY_COUNT: True}, None),
        ({REPLAY_COUNT: 1}, {"Replay/Count": 2}),
        ({REPLAY_COUNT: 1}, {"_aws": {}}),
    ],
)
def test_lines_cloudwatch_would_reject_or_misread_are_refused(
    values: dict[Metric, float], properties: dict[str, Any] | None
) -> None:
    with pytest.raises(EmfError):
        emf_record(values, timestamp_ms=0, properties=properties)


def test_metric_names_are_unique_and_in_the_default_namespace() -> None:
    assert NAMESPACE == "Phase6"
    names = [m.name for m in ALL_METRICS]
    assert len(names) == len(set(names)) and REPLAY_COUNT in ALL_METRICS
    assert all(m.unit and m.description for m in ALL_METRICS)
