"""The Nezha importer on a tiny hand-made sample in the dataset's layout."""

from __future__ import annotations

import csv
import json
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opx.eval.nezha import fault_cases, list_faults, window_of
from opx.eval.nezha_data import (
    NezhaDataError,
    open_dataset,
    parse_docker_line,
    read_faults,
    read_logs,
    read_spans,
    service_of,
)
from opx.tools.records import LogLevel

DAY = "2023-01-29"
GATEWAY = "ts-gateway-service-6f6cfc45b-h5m2n"
BASIC = "ts-basic-service-5dc8d4f9fd-46997"
T0 = datetime(2023, 1, 29, 9, 0, tzinfo=UTC)


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _docker(clock: datetime, level: str, text: str) -> str:
    # The application writes its own clock in the pods' zone, UTC+8.
    local = (clock + timedelta(hours=8)).strftime("%H:%M:%S.%f")[:-3]
    return json.dumps({"log": f"{local} {level}  {text}\n", "stream": "stdout"})


def _log_rows(moments: list[tuple[datetime, str, str, str]]) -> list[list[object]]:
    return [
        [
            at.isoformat().replace("+00:00", "Z"),
            _ns(at),
            "10.0.0.1",
            pod,
            "server",
            "trace1",
            span,
            _docker(at, "ERROR" if "fail" in text else "INFO", text),
        ]
        for at, pod, span, text in moments
    ]


LOG_HEADER = [
    "Timestamp",
    "TimeUnixNano",
    "Node",
    "PodName",
    "Container",
    "TraceID",
    "SpanID",
    "Log",
]
TRACE_HEADER = [
    "TraceID",
    "SpanID",
    "ParentID",
    "PodName",
    "OperationName",
    "StartTimeUnixNano",
    "EndTimeUnixNano",
    "Duration",
]
METRIC_HEADER = [
    "Time",
    "TimeStamp",
    "PodName",
    "CpuUsageRate(%)",
    "PodServerLatencyP90(s)",
    "NodeCpuUsageRate(%)",
]


def _trace_rows(trace: str, start: datetime) -> list[list[object]]:
    """gateway (root) -> gateway client span -> basic server span."""
    ns = _ns(start)
    return [
        [trace, "a1", "root", GATEWAY, "/*", ns, ns + 30_000_000, 30_000],
        [trace, "a2", "a1", GATEWAY, "HTTP GET", ns + 1_000_000, ns + 29_000_000, 28_000],
        [trace, "b1", "a2", BASIC, "/api/v1/basic", ns + 2_000_000, ns + 27_000_000, 25_000],
    ]


def build_sample(root: Path) -> Path:
    """Two faults of one day: 08:50 (listed, earlier) and 09:00, each in BASIC."""
    base = root / "nezha-trainticket"
    rca, construct = base / "rca_data" / DAY, base / "construct_data" / DAY
    faults = {
        "08": [
            {
                "inject_time": "2023-01-29 08:50:00",
                "inject_timestamp": "1674953400",
                "inject_pod": BASIC,
                "inject_type": "exception",
            }
        ],
        "09": [
            {
                "inject_time": "2023-01-29 09:00:00",
                "inject_timestamp": "1",
                "inject_pod": BASIC,
                "inject_type": "network_delay",
            }
        ],
    }
    rca.mkdir(parents=True)
    (rca / f"{DAY}-fault_list.json").write_text(json.dumps(faults), encoding="utf-8")
    minutes = [T0 - timedelta(minutes=30) + timedelta(minutes=i, seconds=9) for i in range(36)]
    for pod in (GATEWAY, BASIC):
        _write_csv(
            rca / "metric" / f"{pod}_metric.csv",
            METRIC_HEADER,
            [
                [f"{m} +0000 UTC", int(m.timestamp()), pod, 1.0 + i % 3, 0.1, 50.0]
                for i, m in enumerate(minutes)
            ],
        )
    _write_csv(
        rca / "metric" / "front_service.csv",
        ["Time", "TimeStamp", "ServiceName", "SuccessRate(%)", "LatencyP90(s)"],
        [[f"{m}", int(m.timestamp()), "Frontend", 100.0, 0.2] for m in minutes],
    )
    in_window = T0 + timedelta(seconds=30)
    log_rows = _log_rows(
        [
            (in_window, BASIC, "b1", "b.s.BasicServiceImpl#100 query failed"),
            (T0 - timedelta(minutes=3), BASIC, "b1", "b.s.BasicServiceImpl#90 before the window"),
        ]
    )
    # The same records appear in two overlapping minute files.
    _write_csv(rca / "log" / "09_00_log.csv", LOG_HEADER, log_rows)
    _write_csv(rca / "log" / "09_01_log.csv", LOG_HEADER, log_rows[:1])
    _write_csv(rca / "trace" / "09_00_trace.csv", TRACE_HEADER, _trace_rows("t9", in_window))
    _write_csv(rca / "trace" / "09_01_trace.csv", TRACE_HEADER, _trace_rows("t9", in_window))
    earlier = datetime(2023, 1, 29, 8, 50, 20, tzinfo=UTC)
    _write_csv(rca / "trace" / "08_50_trace.csv", TRACE_HEADER, _trace_rows("t8", earlier))
    quiet = datetime(2023, 1, 29, 8, 0, 10, tzinfo=UTC)
    _write_csv(
        construct / "log" / "08_00_log.csv",
        LOG_HEADER,
        _log_rows([(quiet, BASIC, "b0", "b.s.BasicServiceImpl#50 all fine")]),
    )
    _write_csv(construct / "trace" / "08_00_trace.csv", TRACE_HEADER, _trace_rows("t0", quiet))
    (base / "LICENSE").write_text("MIT", encoding="utf-8")
    return base


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return build_sample(tmp_path / "data")


def test_service_is_the_pod_name_without_its_hashes() -> None:
    assert service_of(BASIC) == "ts-basic-service"
    assert service_of("ts-ui-dashboard-5477b965f-2chkr") == "ts-ui-dashboard"
    assert service_of("standalone") == "standalone"


def test_faults_use_inject_time_as_utc_and_ignore_inject_timestamp(sample: Path) -> None:
    faults = read_faults(sample, DAY)
    assert [f.inject_time for f in faults] == [T0 - timedelta(minutes=10), T0]
    assert faults[1].service == "ts-basic-service"
    assert faults[1].fault_type == "network_delay"
    assert window_of(faults[1]) == (T0 - timedelta(minutes=1), T0 + timedelta(minutes=3))


def test_docker_line_gives_level_and_message_without_the_local_clock() -> None:
    level, message = parse_docker_line(_docker(T0, "ERROR", "x.Y#1 TraceID: t [op][failed]"))
    assert level is LogLevel.ERROR
    assert message == "ERROR x.Y#1 TraceID: t [op][failed]"
    assert parse_docker_line("not json at all") == (LogLevel.INFO, "not json at all")


def test_logs_take_the_collector_time_keep_ids_and_drop_duplicates(sample: Path) -> None:
    folder = sample / "rca_data" / DAY / "log"
    events = read_logs(sorted(folder.glob("*.csv")))
    assert len(events) == 2
    failing = next(e for e in events if "failed" in e.message)
    # The UTC collector time, not the UTC+8 clock written in the line.
    assert failing.timestamp == T0 + timedelta(seconds=30)
    assert failing.service == "ts-basic-service"
    assert (failing.trace_id, failing.span_id) == ("trace1", "b1")
    assert failing.level is LogLevel.ERROR


def test_spans_link_to_parents_and_convert_microseconds(sample: Path) -> None:
    folder = sample / "rca_data" / DAY / "trace"
    spans = read_spans([folder / "09_00_trace.csv", folder / "09_01_trace.csv"])
    by_id = {s.span_id: s for s in spans}
    assert len(spans) == 3
    assert by_id["a1"].parent_id is None
    assert by_id["b1"].parent_id == "a2"
    assert by_id["b1"].service == "ts-basic-service"
    assert by_id["b1"].duration_ms == pytest.approx(25.0)
    assert by_id["a1"].start == T0 + timedelta(seconds=30)


def test_case_has_entry_service_window_graph_and_clean_baselines(sample: Path) -> None:
    faults = list_faults(sample)
    case = list(fault_cases(sample, faults))[1]
    detail = case.event["detail"]
    assert detail["service"] == "ts-gateway-service"
    assert detail["window_start"] == "2023-01-29T08:59:00Z"
    assert detail["window_end"] == "2023-01-29T09:03:00Z"
    assert detail["evidence_bundle"]["detections"][0]["metric"] == "LatencyP90(s)"
    assert case.truth == "ts-basic-service"
    assert case.key.fault_type == "network_delay"
    graph = case.tools.get_service_graph().data
    assert {"source": "ts-gateway-service", "target": "ts-basic-service"} in graph["edges"]
    start = T0 - timedelta(minutes=1)
    series = case.tools.get_metrics(start - timedelta(hours=2), start + timedelta(minutes=4))
    by_id = {s["id"]: s for s in series.data["series"]}
    cpu = by_id["ts-basic-service|CpuUsageRate(%)|Value"]
    # The earlier listed fault's minutes (08:49 to 08:53) are not part of the baseline.
    assert not any("T08:49" <= t[:16].replace(" ", "T") < "T08:53" for t in cpu["timestamps"])
    assert any("T08:48" in t for t in cpu["timestamps"])
    assert not any(t >= "2023-01-29T09:03" for t in cpu["timestamps"])
    assert "ts-gateway-service|LatencyP90(s)|Value" in by_id
    assert not any("NodeCpu" in key for key in by_id)


def test_baseline_logs_and_spans_end_just_before_the_window(sample: Path) -> None:
    case = list(fault_cases(sample, list_faults(sample)))[1]
    start = T0 - timedelta(minutes=1)
    before = case.tools.search_logs(start - timedelta(hours=1), start).data["events"]
    assert [e["message"] for e in before] == ["INFO b.s.BasicServiceImpl#50 all fine"]
    inside = case.tools.search_logs(start, start + timedelta(minutes=4)).data["events"]
    # Only the window's own record: the one before the window and the duplicate are gone.
    assert [e["span_id"] for e in inside] == ["b1"]
    spans = case.tools.get_traces(start - timedelta(hours=1), start).data["spans"]
    assert {s["trace_id"] for s in spans} == {"t0"}


@pytest.mark.parametrize("form", ["root", "parent", "archive"])
def test_dataset_opens_from_each_form(sample: Path, tmp_path: Path, form: str) -> None:
    if form == "archive":
        path = tmp_path / "nezha.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            tar.add(sample, arcname="nezha-trainticket")
    else:
        path = sample if form == "root" else sample.parent
    with open_dataset(path) as root:
        assert (root / "rca_data").is_dir()
        assert [f.fault_id for f in list_faults(root)] == [f"{DAY}/08:50:00", f"{DAY}/09:00:00"]


def test_missing_or_unreadable_dataset_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NezhaDataError, match="not found"), open_dataset(tmp_path / "nope"):
        pass
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    with pytest.raises(NezhaDataError, match="not a readable tar"), open_dataset(junk):
        pass
    with pytest.raises(NezhaDataError, match="rca_data"), open_dataset(tmp_path):
        pass
