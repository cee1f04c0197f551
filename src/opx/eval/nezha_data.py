"""Reads the Nezha TrainTicket fault dataset: fault lists, per-pod metrics, the entry service's
metrics, docker JSON logs with trace and span ids, and spans.

Layout (under a folder holding ``rca_data/`` and ``construct_data/``), for each day ``D``:
``rca_data/D/D-fault_list.json`` lists the injected faults by hour (``inject_time`` is a UTC wall
clock; ``inject_timestamp`` is eight hours off and is never read); ``metric/<pod>_metric.csv``
holds one row per minute for the whole day and ``metric/front_service.csv`` the entry service's
success rate and latency percentiles; ``log/HH_MM_log.csv`` and ``trace/HH_MM_trace.csv`` hold the
minutes around each fault (files overlap, so records are de-duplicated). ``construct_data/D/``
has the same ``log/`` and ``trace/`` folders for one fault-free stretch: the baseline of logs and
traces. A pod's service is its name without the ReplicaSet and pod hashes.
"""

from __future__ import annotations

import csv
import json
import math
import re
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from opx.tools.records import LogEvent, LogLevel, Span

RCA, CONSTRUCT = "rca_data", "construct_data"
FAULT_TYPES = ("exception", "return", "network_delay", "cpu_contention")
# Columns of a pod metrics file that are not measurements of the pod: when, which pod, and the
# node-wide figures every pod on the node shares (they cannot tell one service from another).
_NOT_POD_METRICS = frozenset({"Time", "TimeStamp", "PodName", "ServiceName"})
_NODE_PREFIX = "Node"
# ``name-<replicaset hash>-<pod hash>``: Kubernetes writes the ReplicaSet hash with 5 to 10
# characters and the pod suffix with 5.
_POD = re.compile(r"^(?P<service>.+?)-[a-z0-9]{5,10}-[a-z0-9]{5}$")
# An application line: its own clock (the pods' local time, UTC+8, not used), level, the rest.
_LINE = re.compile(
    r"^\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\s+(?P<level>[A-Z]+)\s+(?P<rest>.*)$", re.DOTALL
)
_LEVELS = {
    "TRACE": LogLevel.DEBUG,
    "DEBUG": LogLevel.DEBUG,
    "INFO": LogLevel.INFO,
    "WARN": LogLevel.WARN,
    "WARNING": LogLevel.WARN,
    "ERROR": LogLevel.ERROR,
    "FATAL": LogLevel.FATAL,
}
_MINUTE_FILE = re.compile(r"^(?P<hour>\d{2})_(?P<minute>\d{2})_(?P<kind>log|trace)\.csv$")


class NezhaDataError(ValueError):
    """The dataset is missing a file or a file is not in the expected form; says which."""


def service_of(pod: str) -> str:
    """The service a pod belongs to: its name without the ReplicaSet and pod hashes."""
    match = _POD.match(pod.strip())
    return match.group("service") if match else pod.strip()


# -- locating the data -------------------------------------------------------------------------


@contextmanager
def open_dataset(path: Path) -> Iterator[Path]:
    """The folder holding ``rca_data/``: ``path`` itself, its child, or (for a ``.tar.gz``) the
    one inside the archive, unpacked into a temporary folder removed on exit."""
    if path.is_file():
        with tempfile.TemporaryDirectory(prefix="opx-nezha-") as scratch:
            _unpack(path, Path(scratch))
            yield find_root(Path(scratch), shown=path)
        return
    yield find_root(path, shown=path)


def _unpack(archive: Path, into: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            # The "data" filter (3.11.4 and later) refuses links and paths outside ``into``.
            if hasattr(tarfile, "data_filter"):
                tar.extractall(into, filter="data")
            else:
                _check_members(tar.getmembers(), archive)
                tar.extractall(into)
    except (tarfile.TarError, EOFError) as exc:
        raise NezhaDataError(f"{archive}: not a readable tar archive ({exc})") from None


def _check_members(members: Iterable[tarfile.TarInfo], archive: Path) -> None:
    """Refuse members that would land outside the target folder or are not plain files."""
    for member in members:
        name = Path(member.name)
        if name.is_absolute() or ".." in name.parts:
            raise NezhaDataError(f"{archive}: member {member.name!r} leaves the archive folder")
        if not (member.isfile() or member.isdir()):
            raise NezhaDataError(f"{archive}: member {member.name!r} is not a file or folder")


def find_root(path: Path, shown: Path | None = None) -> Path:
    """``path`` when it holds ``rca_data/``, else its only child that does."""
    shown = shown or path
    if not path.is_dir():
        raise NezhaDataError(f"dataset not found: {shown}")
    if (path / RCA).is_dir():
        return path
    found = sorted(d for d in path.iterdir() if d.is_dir() and (d / RCA).is_dir())
    if len(found) != 1:
        what = "no" if not found else "more than one"
        raise NezhaDataError(
            f"{shown}: {what} folder holding {RCA}/ (give the archive, that folder or its parent)"
        )
    return found[0]


def day_names(root: Path) -> list[str]:
    """The days with a fault list, in order."""
    return sorted(
        d.name for d in (root / RCA).iterdir() if (d / f"{d.name}-fault_list.json").is_file()
    )


# -- faults ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One injected fault: when (UTC), into which pod, and of which type."""

    day: str
    inject_time: datetime
    pod: str
    fault_type: str

    @property
    def service(self) -> str:
        return service_of(self.pod)

    @property
    def fault_id(self) -> str:
        return f"{self.day}/{self.inject_time:%H:%M:%S}"


def parse_utc(text: str, where: str) -> datetime:
    """A ``YYYY-MM-DD HH:MM:SS`` wall clock read as UTC."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise NezhaDataError(f"{where}: {text!r} is not a YYYY-MM-DD HH:MM:SS time") from None


def read_faults(root: Path, day: str) -> list[Fault]:
    """The day's faults in time order."""
    path = root / RCA / day / f"{day}-fault_list.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise NezhaDataError(f"{path}: cannot read the fault list ({exc})") from None
    if not isinstance(document, dict):
        raise NezhaDataError(f"{path}: expected an object of hours")
    faults = []
    for hour, items in sorted(document.items()):
        for index, item in enumerate(items if isinstance(items, list) else []):
            where = f"{path} [{hour}][{index}]"
            try:
                when, pod, kind = item["inject_time"], item["inject_pod"], item["inject_type"]
            except (KeyError, TypeError):
                needs = "needs inject_time, inject_pod and inject_type"
                raise NezhaDataError(f"{where}: {needs}") from None
            faults.append(Fault(day, parse_utc(str(when), where), str(pod), str(kind)))
    return sorted(faults, key=lambda f: (f.inject_time, f.pod))


# -- metrics -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceMetrics:
    """One service's metric columns over the day: one row per minute, time order."""

    service: str
    timestamps: tuple[datetime, ...]
    columns: dict[str, tuple[float | None, ...]]


def read_metric_file(path: Path, service: str | None = None) -> ServiceMetrics:
    """A metrics CSV (pod or front service); the service is the pod's unless given."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise NezhaDataError(f"{path}: cannot read ({exc})") from None
    if not rows:
        raise NezhaDataError(f"{path}: no rows")
    names = [c for c in rows[0] if c not in _NOT_POD_METRICS and not c.startswith(_NODE_PREFIX)]
    by_time: dict[datetime, dict[str, str]] = {}
    for line, row in enumerate(rows, start=2):
        by_time[_metric_time(row.get("TimeStamp"), f"{path}:{line}")] = row
    stamps = tuple(sorted(by_time))
    columns = {n: tuple(_number(by_time[t].get(n)) for t in stamps) for n in names}
    owner = service or service_of(str(rows[0].get("PodName") or path.stem))
    return ServiceMetrics(owner, stamps, columns)


def _metric_time(text: str | None, where: str) -> datetime:
    try:
        return datetime.fromtimestamp(int(float(str(text))), UTC)
    except (TypeError, ValueError, OverflowError):
        raise NezhaDataError(f"{where}: TimeStamp {text!r} is not a unix time") from None


def _number(text: str | None) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_pod_metrics(root: Path, day: str) -> list[ServiceMetrics]:
    """Every pod's metrics of the day (one pod per service in this system)."""
    folder = root / RCA / day / "metric"
    files = sorted(folder.glob("*_metric.csv"))
    if not files:
        raise NezhaDataError(f"{folder}: no <pod>_metric.csv files")
    return [read_metric_file(f) for f in files]


def read_front_metrics(root: Path, day: str, service: str) -> ServiceMetrics:
    """The entry service's success rate and latency percentiles, under ``service``."""
    return read_metric_file(root / RCA / day / "metric" / "front_service.csv", service)


# -- logs and spans ----------------------------------------------------------------------------


def minute_files(folder: Path, kind: str, start: datetime, end: datetime) -> list[Path]:
    """The ``HH_MM_<kind>.csv`` files of ``folder`` named for a minute within a minute of
    ``[start, end]`` (files hold some of the minutes before the one they are named for)."""
    if not folder.is_dir():
        return []
    lo, hi = start - timedelta(minutes=2), end + timedelta(minutes=1)
    chosen = []
    for path in sorted(folder.iterdir()):
        match = _MINUTE_FILE.match(path.name)
        if match is None or match.group("kind") != kind:
            continue
        named = start.replace(
            hour=int(match.group("hour")),
            minute=int(match.group("minute")),
            second=0,
            microsecond=0,
        )
        if lo <= named <= hi:
            chosen.append(path)
    return chosen


def all_files(folder: Path, kind: str) -> list[Path]:
    return sorted(p for p in folder.glob(f"*_{kind}.csv") if _MINUTE_FILE.match(p.name))


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield from enumerate(csv.DictReader(handle), start=2)
    except OSError as exc:
        raise NezhaDataError(f"{path}: cannot read ({exc})") from None


def _nanos(text: str | None, where: str) -> int:
    try:
        return int(str(text))
    except ValueError:
        raise NezhaDataError(f"{where}: {text!r} is not a time in unix nanoseconds") from None


def _at(nanos: int) -> datetime:
    return datetime.fromtimestamp(nanos // 1_000_000_000, UTC) + timedelta(
        microseconds=(nanos % 1_000_000_000) // 1000
    )


def parse_docker_line(document: str) -> tuple[LogLevel, str]:
    """The level and message of a docker JSON log record's ``log`` field; the message drops
    the application's own clock (the pods' local time zone) and the trailing newline."""
    try:
        decoded = json.loads(document)
        line = str(decoded.get("log", "")) if isinstance(decoded, dict) else document
    except json.JSONDecodeError:
        line = document
    line = line.rstrip("\r\n")
    match = _LINE.match(line)
    if match is None:
        return LogLevel.INFO, line.strip()
    level = _LEVELS.get(match.group("level"))
    if level is None:
        return LogLevel.INFO, line.strip()
    return level, f"{match.group('level')} {match.group('rest').strip()}"


def read_logs(paths: Iterable[Path], keep: tuple[int, int] | None = None) -> list[LogEvent]:
    """Log events of the files (each record once), within ``keep`` (unix ns, [lo, hi)) if
    given. The time is the collector's ``TimeUnixNano`` (UTC), not the clock in the line."""
    seen: set[tuple[str, str, str, str]] = set()
    events: list[LogEvent] = []
    for path in paths:
        for line, row in _rows(path):
            nanos = _nanos(row.get("TimeUnixNano"), f"{path}:{line}")
            if keep is not None and not keep[0] <= nanos < keep[1]:
                continue
            pod, raw = str(row.get("PodName") or ""), str(row.get("Log") or "")
            key = (str(nanos), pod, str(row.get("SpanID") or ""), raw)
            if key in seen:
                continue
            seen.add(key)
            level, message = parse_docker_line(raw)
            events.append(
                LogEvent(
                    id=f"{path.parent.parent.name}/{path.stem}/{line}",
                    timestamp=_at(nanos),
                    service=service_of(pod),
                    level=level,
                    message=message,
                    trace_id=row.get("TraceID") or None,
                    span_id=row.get("SpanID") or None,
                )
            )
    return events


def read_spans(paths: Iterable[Path], keep: tuple[int, int] | None = None) -> list[Span]:
    """Spans of the files (each ``(trace, span)`` once), starting within ``keep`` if given; a
    ``root`` parent is no parent. Durations are in microseconds in the files."""
    seen: set[tuple[str, str]] = set()
    spans: list[Span] = []
    for path in paths:
        for line, row in _rows(path):
            where = f"{path}:{line}"
            start = _nanos(row.get("StartTimeUnixNano"), where)
            if keep is not None and not keep[0] <= start < keep[1]:
                continue
            key = (str(row.get("TraceID") or ""), str(row.get("SpanID") or ""))
            if not all(key) or key in seen:
                continue
            seen.add(key)
            spans.append(_span(row, key, start, where))
    return spans


def _span(row: dict[str, str], key: tuple[str, str], start: int, where: str) -> Span:
    parent = str(row.get("ParentID") or "").strip()
    duration = _number(row.get("Duration"))
    if duration is None or duration < 0:
        end = _nanos(row.get("EndTimeUnixNano"), where)
        duration = max(end - start, 0) / 1000.0
    return Span(
        trace_id=key[0],
        span_id=key[1],
        parent_id=None if parent in ("", "root") else parent,
        service=service_of(str(row.get("PodName") or "")),
        operation=str(row.get("OperationName") or ""),
        start=_at(start),
        duration_ms=duration / 1000.0,
    )


def nanos_of(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
