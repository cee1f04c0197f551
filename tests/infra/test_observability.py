"""Alarms and dashboard: thresholds, missing-data handling, widget kinds, and every Phase6
metric they reference is one the runtime emits with exactly the same dimensions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_cdk.assertions import Template
from opx_infra.observability import opx_metric

from opx.observability import metrics as m
from tests.infra import cfn
from tests.infra.conftest import synth

NAMESPACE = m.DEFAULT_NAMESPACE


def alarms(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in cfn.of_type(resources, "AWS::CloudWatch::Alarm").values()
    }


def dashboard(resources: dict[str, Any]) -> dict[str, Any]:
    _, board = cfn.one(resources, "AWS::CloudWatch::Dashboard")
    return dict(json.loads(cfn.resolve(board["Properties"]["DashboardBody"], resources)))


def alarm_metrics(alarm: dict[str, Any]) -> Iterator[tuple[str, str, set[str]]]:
    """(namespace, name, dimension names) of every metric an alarm reads."""
    if "MetricName" in alarm:
        yield (
            alarm["Namespace"],
            alarm["MetricName"],
            {d["Name"] for d in alarm.get("Dimensions", [])},
        )
    for query in alarm.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            yield (
                metric["Namespace"],
                metric["MetricName"],
                {d["Name"] for d in metric.get("Dimensions", [])},
            )


def widget_metrics(body: dict[str, Any]) -> Iterator[tuple[str, str, set[str]]]:
    """The same for dashboard widgets: [namespace, name, dim, value, ..., {options}] rows."""
    for widget in body["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            plain = [x for x in row if not isinstance(x, dict)]
            if not plain:
                continue  # a math expression; its inputs are rows of their own
            assert "." not in plain, "shorthand rows would hide the real metric"
            namespace, name, *pairs = plain
            yield namespace, name, set(pairs[0::2])


def test_every_phase6_metric_referenced_is_emitted_with_its_dimensions(
    resources: dict[str, Any],
) -> None:
    referenced = [
        *[x for a in alarms(resources).values() for x in alarm_metrics(a)],
        *widget_metrics(dashboard(resources)),
    ]
    ours = [(name, dims) for namespace, name, dims in referenced if namespace == NAMESPACE]
    others = {namespace for namespace, _, _ in referenced if namespace != NAMESPACE}
    assert others == {"AWS/Events"}  # the heartbeat's incident count
    assert len(ours) > 30
    for name, dims in ours:
        assert name in m.BY_NAME, name
        assert dims == set(m.BY_NAME[name].dimensions), (name, dims)
    names = {name for name, _ in ours}
    assert names == {
        m.EXECUTION_COUNT.name,
        m.EXECUTION_RETRIES.name,
        m.COST_TOTAL.name,
        m.EXECUTION_DURATION.name,
        m.AGENT_DURATION.name,
        m.AGENT_FAILURE_RATE.name,
    }


def status_values(resources: dict[str, Any]) -> dict[str, set[str]]:
    """Every Status value an alarm or the dashboard reads Execution/Count with, by where."""
    found: dict[str, set[str]] = {}
    for name, alarm in alarms(resources).items():
        for query in alarm.get("Metrics", []):
            metric = query.get("MetricStat", {}).get("Metric", {})
            if metric.get("MetricName") == m.EXECUTION_COUNT.name:
                (dim,) = metric["Dimensions"]
                found.setdefault(name, set()).add(dim["Value"])
    for widget in dashboard(resources)["widgets"]:
        props = widget["properties"]
        for row in props.get("metrics", []):
            plain = [x for x in row if not isinstance(x, dict)]
            if plain[:2] == [NAMESPACE, m.EXECUTION_COUNT.name]:
                found.setdefault(props["title"], set()).add(plain[3])
    return found


def test_status_values_are_the_ones_the_runtime_emits(resources: dict[str, Any]) -> None:
    """Every outcome the handler counts is summed, ERROR included; nothing else is read."""
    emitted = set(m.EXECUTION_STATUSES)
    assert {"ERROR", "FAILED", "COMPLETED", "REJECTED"} <= emitted
    found = status_values(resources)
    assert set(found) == {
        "opx-FailureRate",
        "opx-Heartbeat",
        "Executions by outcome",
        "Failure rate (%)",
    }
    for where, values in found.items():
        assert values == emitted, where


def test_the_failure_rate_counts_failed_results_and_errors(resources: dict[str, Any]) -> None:
    rate = alarms(resources)["opx-FailureRate"]
    ids = {
        q["MetricStat"]["Metric"]["Dimensions"][0]["Value"]: q["Id"]
        for q in rate["Metrics"]
        if "MetricStat" in q
    }
    [expression] = [q["Expression"] for q in rate["Metrics"] if "Expression" in q]
    failed = " + ".join(f"FILL({ids[s]}, 0)" for s in ("FAILED", "ERROR"))
    total = " + ".join(f"FILL({ids[s]}, 0)" for s in m.EXECUTION_STATUSES)
    assert expression == f"100 * ({failed}) / ({total})"
    assert set(m.FAILURE_STATUSES) == {"FAILED", "ERROR"}


def test_a_metric_with_the_wrong_dimensions_is_refused() -> None:
    with pytest.raises(ValueError, match="published with dimensions"):
        opx_metric(m.AGENT_DURATION, NAMESPACE)
    with pytest.raises(ValueError, match="published with dimensions"):
        opx_metric(m.COST_TOTAL, NAMESPACE, {m.STATUS: "FAILED"})


def test_alarm_thresholds_and_missing_data(resources: dict[str, Any]) -> None:
    found = alarms(resources)
    assert sorted(found) == [
        "opx-CostPerHour",
        "opx-Duration",
        "opx-FailureRate",
        "opx-Heartbeat",
        "opx-Retries",
    ]
    for alarm in found.values():
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] and alarm["OKActions"]
    rate = found["opx-FailureRate"]
    assert rate["Threshold"] == 10 and rate["EvaluationPeriods"] == 1
    [expression] = [q for q in rate["Metrics"] if "Expression" in q]
    failed = next(
        q["Id"]
        for q in rate["Metrics"]
        if "MetricStat" in q
        and q["MetricStat"]["Metric"]["Dimensions"] == [{"Name": "Status", "Value": "FAILED"}]
    )
    assert expression["Expression"].startswith(f"100 * (FILL({failed}, 0) + FILL(")
    assert {q["MetricStat"]["Period"] for q in rate["Metrics"] if "MetricStat" in q} == {300}
    retries = found["opx-Retries"]
    assert (retries["MetricName"], retries["Statistic"], retries["Threshold"]) == (
        "Execution/Retries",
        "Maximum",
        5,
    )
    cost = found["opx-CostPerHour"]
    assert (cost["MetricName"], cost["Statistic"], cost["Period"], cost["Threshold"]) == (
        "Cost/TotalUSD",
        "Sum",
        3600,
        10,
    )
    duration = found["opx-Duration"]
    assert (duration["MetricName"], duration["Statistic"], duration["Threshold"]) == (
        "Execution/DurationMs",
        "Maximum",
        60_000,
    )


def test_heartbeat_fires_on_incidents_without_executions(resources: dict[str, Any]) -> None:
    heartbeat = alarms(resources)["opx-Heartbeat"]
    queries = {q["Id"]: q for q in heartbeat["Metrics"]}
    incidents = queries["incidents"]["MetricStat"]["Metric"]
    assert incidents == {
        "Namespace": "AWS/Events",
        "MetricName": "MatchedEvents",
        "Dimensions": [{"Name": "RuleName", "Value": "opx-incident-created"}],
    }
    [expression] = [q["Expression"] for q in queries.values() if "Expression" in q]
    counted = [
        i
        for i, q in queries.items()
        if "MetricStat" in q and q["MetricStat"]["Metric"]["MetricName"] == "Execution/Count"
    ]
    assert len(counted) == 8  # every ExecutionStatus, and ERROR
    assert expression.startswith("IF(FILL(incidents, 0) > 0 AND (")
    assert all(f"FILL({i}, 0)" in expression for i in counted)
    # Longer than the executor's 600 s timeout, so a running execution is not silence.
    assert {q["MetricStat"]["Period"] for q in queries.values() if "MetricStat" in q} == {900}
    assert heartbeat["Threshold"] == 0 and heartbeat["EvaluationPeriods"] == 2


def test_thresholds_are_configurable(tmp_path: Any) -> None:
    template = synth(tmp_path, {"opx:duration_alarm_s": "300", "opx:cost_per_hour_usd": "25"})
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"AlarmName": "opx-Duration", "Threshold": 300_000}
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"AlarmName": "opx-CostPerHour", "Threshold": 25}
    )


def test_dashboard_widgets(resources: dict[str, Any]) -> None:
    widgets = {w["properties"]["title"]: w["properties"] for w in dashboard(resources)["widgets"]}
    assert widgets["Executions by outcome"]["view"] == "timeSeries"
    assert widgets["Cost (USD per hour)"]["view"] == "timeSeries"
    assert widgets["Failure rate (%)"]["view"] == "gauge"
    assert widgets["Failure rate (%)"]["yAxis"]["left"] == {"min": 0, "max": 100}
    for title in ("Agent duration (ms, p90)", "Agent failure rate (%)"):
        assert widgets[title]["view"] == "bar"
        assert len(widgets[title]["metrics"]) == 6


def test_namespace_follows_the_setting(tmp_path: Any) -> None:
    template: Template = synth(tmp_path, {"opx:metrics_namespace": "Staging/Opx"})
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"AlarmName": "opx-Retries", "Namespace": "Staging/Opx"}
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Environment": {"Variables": {"OPX_METRICS_NAMESPACE": "Staging/Opx"}}},
    )
