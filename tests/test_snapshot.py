"""``opx snapshot``: capture through the tool interface into a bundle that loads and answers as
the source did; missing sources are recorded; exit 3 only when every source failed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from opx.cli import app
from opx.domain.incident import Incident
from opx.runtime.intake import Accepted, parse_event
from opx.snapshot import SOURCES, capture, write_bundle
from opx.tools.bundle import load_bundle
from opx.tools.memory import InMemoryTools, Source
from opx.tools.paging import collect
from tests.tools.aws.conftest import raw_client

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "bad-deployment"
BASELINE = timedelta(hours=3)


def example_incident() -> Incident:
    parsed = parse_event((EXAMPLE / "event.json").read_bytes())
    assert isinstance(parsed, Accepted)
    return parsed.incident


def everything(tools: Any, call: str, *args: Any) -> Any:
    return collect(lambda t: getattr(tools, call)(*args, next_token=t)).data


def test_capture_round_trips_through_a_bundle(tmp_path: Path) -> None:
    original = load_bundle(EXAMPLE / "bundle")
    incident = example_incident()
    found = capture(original, incident, BASELINE)
    manifest = write_bundle(found, tmp_path / "snap")
    assert manifest["missing_sources"] == {}
    assert manifest["snapshot"]["baseline_start"] == "2026-10-07T11:00:00Z"
    copy = load_bundle(tmp_path / "snap")
    assert copy.unavailable_sources == {}
    assert copy.metric_directions == original.metric_directions
    window = (incident.window_start - BASELINE, incident.window_end)
    for call in (
        "get_metrics",
        "search_logs",
        "get_traces",
        "list_deployments",
        "list_config_changes",
    ):
        assert everything(copy, call, *window) == everything(original, call, *window), call
    assert everything(copy, "get_service_graph") == everything(original, "get_service_graph")
    service = incident.service
    incidents = copy.search_incidents(service, limit=50).data
    assert incidents == original.search_incidents(service, limit=50).data
    assert incidents["incidents"]
    for item in incidents["incidents"]:
        assert (
            copy.get_resolution(item["incident_id"]).data
            == original.get_resolution(item["incident_id"]).data
        )
    documents = copy.retrieve_knowledge(incident.title or "", limit=10).data["documents"]
    assert documents
    known = {
        d["document_id"]
        for d in original.retrieve_knowledge(incident.title or "", limit=10).data["documents"]
    }
    assert {d["document_id"] for d in documents} <= known
    again = tmp_path / "again"
    write_bundle(capture(original, incident, BASELINE), again)
    for path in sorted((tmp_path / "snap").rglob("*")):
        if path.is_file():
            assert path.read_bytes() == (again / path.relative_to(tmp_path / "snap")).read_bytes()


def test_a_source_that_cannot_be_read_is_recorded_missing(tmp_path: Path) -> None:
    original = load_bundle(EXAMPLE / "bundle")
    broken = InMemoryTools(
        "broken", graph=None, unavailable={Source.TRACES: "X-Ray is down", Source.GRAPH: "no"}
    )
    found = capture(broken, example_incident(), BASELINE)
    manifest = write_bundle(found, tmp_path / "snap")
    assert sorted(manifest["missing_sources"]) == ["graph", "traces"]
    assert "X-Ray is down" in manifest["missing_sources"]["traces"]
    assert not (tmp_path / "snap" / "traces.jsonl").exists()
    # Reads that succeed with no data count as read.
    assert (tmp_path / "snap" / "logs.jsonl").read_text() == ""
    assert original.source_name != broken.source_name


def run(args: list[str]) -> Any:
    return CliRunner().invoke(app, ["snapshot", *args])


def event_file(tmp_path: Path, service: str, start: str, end: str) -> Path:
    event = {
        "source": "opx.incident",
        "detail-type": "IncidentCreated",
        "detail": {
            "incident_id": f"INC-{service}",
            "service": service,
            "severity": "SEV2",
            "window_start": start,
            "window_end": end,
            "title": f"{service} errors",
            "evidence_bundle": {"evidence_id": "ev-1"},
        },
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    return path


def test_snapshot_command_against_moto(
    tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Logs must be recent for CloudWatch Logs (and moto) to accept them.
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    service = "snapshot-fn"
    logs = raw_client("logs", moto_endpoint)
    logs.create_log_group(logGroupName=f"/aws/lambda/{service}")
    logs.create_log_stream(logGroupName=f"/aws/lambda/{service}", logStreamName="s")
    logs.put_log_events(
        logGroupName=f"/aws/lambda/{service}",
        logStreamName="s",
        logEvents=[
            {
                "timestamp": int((start + timedelta(minutes=1)).timestamp() * 1000),
                "message": "ERROR failed for bob@example.com",
            }
        ],
    )
    raw_client("cloudwatch", moto_endpoint).put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Errors",
                "Value": 4.0,
                "Timestamp": start + timedelta(minutes=2),
                "Dimensions": [{"Name": "FunctionName", "Value": service}],
            }
        ],
    )
    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("OPX_AWS_CONFIG", raising=False)
    event = event_file(
        tmp_path,
        service,
        (start + timedelta(minutes=30)).isoformat(),
        (start + timedelta(minutes=40)).isoformat(),
    )
    out = tmp_path / "bundle"
    result = run([str(event), "--out", str(out), "--baseline-hours", "1"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    # No history table or knowledge base is configured, and moto's CloudTrail does not implement
    # LookupEvents: those three are recorded missing, the rest is captured.
    assert sorted(manifest["missing_sources"]) == ["changes", "incidents", "knowledge"]
    assert "warning: incidents could not be read" in result.output
    bundle = load_bundle(out)
    window = (start, start + timedelta(minutes=40))
    (event_row,) = bundle.search_logs(*window).data["events"]
    assert event_row["service"] == service and "bob@example.com" not in event_row["message"]
    (series,) = bundle.get_metrics(*window).data["series"]
    assert series["id"] == f"{service}|Errors|Sum" and series["values"] == [4.0]
    assert set(SOURCES) - set(manifest["missing_sources"]) == {"graph", "metrics", "logs", "traces"}
    assert not (out / "changes.jsonl").exists()


def test_every_source_failing_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "aws.toml"
    config.write_text(
        "[deadlines]\nrequest_s = 0.2\ntotal_s = 0.3\n[deadlines.tools]\nsearch_logs = 0.3\n",
        encoding="utf-8",
    )
    for name, value in {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }.items():
        monkeypatch.setenv(name, value)
    event = event_file(tmp_path, "down", "2026-05-01T12:00:00Z", "2026-05-01T12:30:00Z")
    out = tmp_path / "bundle"
    result = run([str(event), "--out", str(out), "--config", str(config), "--baseline-hours", "0"])
    assert result.exit_code == 3, result.output
    assert "every source failed" in result.output
    assert not (out / "manifest.json").exists()


def test_rejected_inputs_exit_2(tmp_path: Path) -> None:
    assert run([str(tmp_path / "none.json"), "--out", str(tmp_path / "o")]).exit_code == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    assert run([str(bad), "--out", str(tmp_path / "o")]).exit_code == 2
    alarm = tmp_path / "ok-alarm.json"
    alarm.write_text(
        json.dumps(
            {
                "source": "aws.cloudwatch",
                "detail-type": "CloudWatch Alarm State Change",
                "detail": {
                    "alarmName": "a",
                    "state": {"value": "OK", "timestamp": "2026-05-01T12:00:00Z"},
                },
            }
        )
    )
    result = run([str(alarm), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "not firing" in result.output
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    event = event_file(tmp_path, "svc", "2026-05-01T12:00:00Z", "2026-05-01T12:30:00Z")
    assert run([str(event), "--out", str(full)]).exit_code == 2
    config = tmp_path / "bad.toml"
    config.write_text("[logs]\nmode = 'tail'\n", encoding="utf-8")
    assert run([str(event), "--out", str(tmp_path / "o2"), "--config", str(config)]).exit_code == 2
