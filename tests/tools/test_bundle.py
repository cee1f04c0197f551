"""Loading bundles from disk: the happy path, manifest errors and malformed data files."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opx.domain.errors import ErrorCode
from opx.domain.tool_result import ToolResult, ToolStatus
from opx.tools.bundle import BundleError, DataFileError, load_bundle, parse_knowledge

from .builders import T0, at

END = at(600)
HEADER = "timestamp,service,metric,stat,value,unit\n"

RUNBOOK = """---
id: rb-db
type: runbook
services: orders-db, orders-api
updated: 2026-02-01
---
# Orders database throttling
Applies to the orders tables.
## Symptoms
Throttled reads on orders-db; latency of orders-api rises.
```
## not a heading
```
## Fix
Raise the read capacity.
"""


def _write(root: Path, name: str, content: Any) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, list):
        content = "".join(json.dumps(row) + "\n" for row in content)
    elif not isinstance(content, str):
        content = json.dumps(content)
    path.write_text(content, encoding="utf-8")


def _bundle(root: Path, **files: Any) -> Path:
    manifest = {"format": "opx-bundle/v1", "name": "demo", "metric_directions": {"Latency": "up"}}
    _write(root, "manifest.json", files.pop("manifest", manifest))
    for name, content in files.items():
        _write(root, name.replace("__", "/").replace("_dot_", "."), content)
    return root


def _error(result: ToolResult) -> str:
    assert result.status is ToolStatus.FAILED and result.error is not None
    assert result.error.code is ErrorCode.DATA_SOURCE_UNAVAILABLE
    return result.error.message


def _full(root: Path) -> Path:
    return _bundle(
        root,
        metrics_dot_csv=HEADER + "2026-03-01T12:00:00Z,api,Latency,p99,120,Milliseconds\n"
        "2026-03-01T13:01:00+01:00,api,Latency,p99,,Milliseconds\n"
        "2026-03-01T12:02:00Z,api,Latency,p99,130.5,Milliseconds\n"
        "2026-03-01T12:00:00Z,db,Errors,Sum,,\n",
        logs_dot_jsonl=[
            {
                "timestamp": "2026-03-01T12:01:00Z",
                "service": "api",
                "level": "error",
                "message": "upstream timeout",
                "trace_id": "t1",
            },
            {
                "timestamp": "2026-03-01T12:00:00Z",
                "service": "db",
                "level": "Warning",
                "message": "throttled",
                "id": "db-1",
            },
        ],
        traces_dot_jsonl=[
            {
                "trace_id": "t1",
                "span_id": "a",
                "parent_id": None,
                "service": "api",
                "operation": "GET",
                "start": "2026-03-01T12:01:00Z",
                "duration_ms": 950,
                "error": False,
                "fault": True,
                "status_code": 503,
            }
        ],
        graph_dot_json={
            "nodes": [{"name": "api", "type": "service"}, {"name": "db"}],
            "edges": [{"source": "api", "target": "db"}],
        },
        changes_dot_jsonl=[
            {
                "change_id": "c1",
                "timestamp": "2026-03-01T11:55:00Z",
                "kind": "DEPLOYMENT",
                "event_source": "lambda.amazonaws.com",
                "event_name": "UpdateFunctionCode",
                "resource": "fn",
                "service": "api",
                "actor": "ci",
                "description": "v2",
            },
            {
                "change_id": "c2",
                "timestamp": "2026-03-01T11:50:00Z",
                "kind": "config",
                "service": None,
            },
        ],
        incidents_dot_jsonl=[
            {
                "incident_id": "i1",
                "service": "api",
                "severity": "SEV2",
                "opened_at": "2026-01-10T08:00:00Z",
                "title": "db throttling",
                "symptoms": ["latency"],
                "root_cause": {"service": "db", "category": "CAPACITY"},
                "resolution": {
                    "type": "MITIGATION",
                    "summary": "scaled",
                    "actions": ["raise capacity"],
                    "time_to_resolve_minutes": 30,
                },
            },
            {
                "incident_id": "i2",
                "service": "api",
                "severity": "SEV3",
                "opened_at": "2026-01-11T08:00:00Z",
                "title": "other",
                "root_cause": {"service": "api"},
            },
        ],
        knowledge__rb_dot_md=RUNBOOK,
    )


def test_a_full_bundle_loads(tmp_path: Path) -> None:
    tools = load_bundle(_full(tmp_path))
    assert tools.source_name == "bundle:demo"
    assert tools.unavailable_sources == {}
    assert tools.metric_directions == {"Latency": "up"}
    metrics = tools.list_metrics().data["metrics"]
    assert [m["id"] for m in metrics] == ["api|Latency|p99", "db|Errors|Sum"]
    latency = tools.get_metrics(T0, END, metric="Latency").data["series"][0]
    assert latency["values"] == [120.0, 130.5]  # the empty value is a missing point
    assert latency["unit"] == "Milliseconds"
    events = tools.search_logs(T0, END).data["events"]
    assert [(e["id"], e["level"]) for e in events] == [("db-1", "WARN"), ("log-1", "ERROR")]
    assert tools.get_traces(T0, END, errors_only=True).data["spans"][0]["status_code"] == 503
    assert tools.get_service_graph().data["edges"] == [{"source": "api", "target": "db"}]
    assert [c["change_id"] for c in tools.list_deployments(at(-60), END).data["changes"]] == ["c1"]
    assert [c["change_id"] for c in tools.list_config_changes(at(-60), END).data["changes"]] == [
        "c2"
    ]
    assert tools.get_resolution("i1").data["found"] is True
    assert tools.get_resolution("i2").data["found"] is False
    best = tools.retrieve_knowledge("orders-db throttled reads").data["documents"][0]
    assert (best["document_id"], best["section"], best["doc_type"]) == (
        "rb-db",
        "Symptoms",
        "RUNBOOK",
    )


def test_missing_data_files_mean_empty_answers(tmp_path: Path) -> None:
    tools = load_bundle(_bundle(tmp_path))
    for result in (
        tools.get_metrics(T0, END),
        tools.search_logs(T0, END),
        tools.get_traces(T0, END),
        tools.get_service_graph(),
        tools.list_deployments(T0, END),
        tools.search_incidents(),
        tools.retrieve_knowledge("x"),
    ):
        assert result.status is ToolStatus.SUCCESS
        assert all(v == [] for v in result.data.values())


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="bundle directory not found"):
        load_bundle(tmp_path / "nope")


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (None, "manifest.json is missing"),
        ('{"format": "opx-bundle/v1",\n "name": }', r"manifest.json:2: invalid JSON"),
        ("[]", "must be a JSON object"),
        ({"format": "opx-bundle/v2", "name": "x"}, "expected 'opx-bundle/v1'"),
        ({"format": "opx-bundle/v1"}, "name must be a non-empty string"),
        (
            {"format": "opx-bundle/v1", "name": "x", "metric_directions": {"m": "left"}},
            "metric_directions",
        ),
    ],
)
def test_bad_manifests(tmp_path: Path, manifest: Any, message: str) -> None:
    if manifest is not None:
        _write(tmp_path, "manifest.json", manifest)
    with pytest.raises(BundleError, match=message) as caught:
        load_bundle(tmp_path)
    assert "\n" not in str(caught.value)


def test_bad_metrics_header_fails_only_metrics(tmp_path: Path) -> None:
    tools = load_bundle(
        _bundle(
            tmp_path,
            metrics_dot_csv="time,svc\n1,2\n",
            logs_dot_jsonl=[
                {
                    "timestamp": "2026-03-01T12:00:00Z",
                    "service": "a",
                    "level": "INFO",
                    "message": "m",
                }
            ],
        )
    )
    message = _error(tools.get_metrics(T0, END))
    assert "metrics.csv:1: header must be" in message
    assert _error(tools.list_metrics()) == message
    assert tools.search_logs(T0, END).status is ToolStatus.SUCCESS
    assert set(tools.unavailable_sources) == {"metrics"}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("2026-03-01T12:00:00Z,a,M,Sum,abc,", r"metrics.csv:3: value 'abc' is not a number"),
        ("2026-03-01T12:00:00Z,a,M,Sum,nan,", r"metrics.csv:3: value 'nan' is not a finite"),
        ("yesterday,a,M,Sum,1,", r"metrics.csv:3: 'yesterday' is not an ISO-8601 time"),
        ("2026-03-01T12:00:00,a,M,Sum,1,", r"metrics.csv:3: time .* has no time zone"),
        ("2026-03-01T12:00:00Z,a,M,Sum,1", r"metrics.csv:3: expected 6 columns"),
        ("2026-03-01T12:00:00Z,,M,Sum,1,", r"metrics.csv:3: service, metric and stat"),
        ("2026-03-01T12:01:00Z,a,M,Sum,1,", r"metrics.csv:3: duplicate point"),
        ("2026-03-01T12:05:00Z,a,M,Sum,1,Bytes", r"metrics.csv:3: unit 'Bytes' differs"),
    ],
)
def test_bad_metric_rows_name_the_line(tmp_path: Path, row: str, message: str) -> None:
    csv_text = HEADER + "2026-03-01T12:01:00Z,a,M,Sum,2,Count\n" + row + "\n"
    tools = load_bundle(_bundle(tmp_path, metrics_dot_csv=csv_text))
    assert re.search(message, _error(tools.get_metrics(T0, END)))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", r"logs.jsonl:2: invalid JSON"),
        ("[1, 2]", r"logs.jsonl:2: each line must be a JSON object"),
        (
            '{"timestamp": "2026-03-01T12:00:00", "service": "a", "level": "INFO", "message": "m"}',
            r"logs.jsonl:2: 'timestamp': time .* has no time zone",
        ),
        (
            '{"timestamp": "2026-03-01T12:00:00Z", "service": "a", "level": "LOUD"}',
            r"logs.jsonl:2: level 'LOUD'",
        ),
        (
            '{"timestamp": "2026-03-01T12:00:00Z", "level": "INFO", "message": "m"}',
            r"logs.jsonl:2: 'service' must be a non-empty string",
        ),
        (
            '{"timestamp": "2026-03-01T12:00:00Z", "service": "a", "level": "INFO", "id": "log-1"}',
            r"logs.jsonl:2: duplicate log id 'log-1'",
        ),
    ],
)
def test_bad_log_lines_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    good = '{"timestamp": "2026-03-01T12:00:00Z", "service": "a", "level": "INFO", "message": "m"}'
    tools = load_bundle(_bundle(tmp_path, logs_dot_jsonl=good + "\n" + line + "\n"))
    assert re.search(message, _error(tools.search_logs(T0, END)))


def test_other_malformed_files(tmp_path: Path) -> None:
    tools = load_bundle(
        _bundle(
            tmp_path,
            graph_dot_json='{"nodes": [{"name": ""}]}',
            traces_dot_jsonl='{"trace_id": "t", "span_id": "s", "service": "a", "start": '
            '"2026-03-01T12:00:00Z", "duration_ms": "fast"}\n',
            changes_dot_jsonl='{"change_id": "c", "timestamp": "2026-03-01T12:00:00Z", '
            '"kind": "REBOOT"}\n',
            incidents_dot_jsonl='{"incident_id": "i", "service": "a", "severity": "SEV1", '
            '"opened_at": "2026-03-01T12:00:00Z", "title": "t"}\n',
            knowledge__a_dot_md="# no header\n",
        )
    )
    assert "graph.json: nodes[0]: 'name'" in _error(tools.get_service_graph())
    assert "traces.jsonl:1: 'duration_ms' must be a finite number" in _error(
        tools.get_traces(T0, END)
    )
    assert "changes.jsonl:1: kind 'REBOOT'" in _error(tools.list_deployments(T0, END))
    assert "incidents.jsonl:1: 'root_cause' must be an object" in _error(tools.search_incidents())
    assert _error(tools.get_resolution("i"))
    assert "a.md:1: a document must start with a '---' header" in _error(
        tools.retrieve_knowledge("x")
    )


def test_knowledge_document_parsing() -> None:
    doc = parse_knowledge(RUNBOOK, "rb.md")
    assert doc.id == "rb-db" and doc.type.value == "RUNBOOK"
    assert doc.services == ("orders-db", "orders-api")
    assert doc.updated.isoformat() == "2026-02-01T00:00:00+00:00"
    assert doc.title == "Orders database throttling"
    assert [s.heading for s in doc.sections] == ["Orders database throttling", "Symptoms", "Fix"]
    assert "## not a heading" in doc.sections[1].text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("---\nid: x\ntype: RUNBOOK\n", "not closed"),
        ("---\nid: x\ntype: RUNBOOK\n---\n# T\n", "no 'updated'"),
        ("---\nid: x\ntype: MEMO\nupdated: 2026-01-01\n---\n", "type 'MEMO'"),
        ("---\nid x\n---\n", r"doc.md:2: expected 'key: value'"),
        ("---\nid: x\ntype: RUNBOOK\nupdated: 2026-01-01T00:00:00\n---\n", "no time zone"),
    ],
)
def test_bad_knowledge_headers(text: str, message: str) -> None:
    with pytest.raises(DataFileError, match=message):
        parse_knowledge(text, "doc.md")


def test_sources_a_snapshot_missed_stay_unavailable(tmp_path: Path) -> None:
    manifest = {
        "format": "opx-bundle/v1",
        "name": "snap",
        "missing_sources": {"logs": "AccessDenied on FilterLogEvents"},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    tools = load_bundle(tmp_path)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    result = tools.search_logs(start, start + timedelta(hours=1))
    assert result.status == "FAILED"
    assert result.error is not None and "AccessDenied" in result.error.message
    assert tools.get_metrics(start, start + timedelta(hours=1)).status == "SUCCESS"


def test_unknown_missing_source_is_rejected(tmp_path: Path) -> None:
    manifest = {"format": "opx-bundle/v1", "name": "snap", "missing_sources": {"dns": "x"}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="unknown source"):
        load_bundle(tmp_path)
