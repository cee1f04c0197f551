"""Reads the PetShop root-cause dataset: scenarios, their splits and issues, the healthy
baseline and the service graph.

Dataset layout (per scenario folder, recognised by its ``graph.csv``): ``graph.csv`` is an
adjacency matrix where a 1 in row *r*, column *c* means node *r* calls node *c*;
``noissue/metrics.csv`` is the healthy baseline; every other sub-folder is a split (``train``,
``dev``, ``test``, …) of ``issue_N/`` folders, each with ``metrics.csv`` and ``target.json``.
A ``metrics.csv`` has three header rows (``microservice``, ``metric``, ``statistic``), a fourth
row whose first cell is ``unix_timestamp``, then one row per 5-minute period; empty cells are
missing values.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opx.eval.scoring import split_rank
from opx.tools.records import GraphEdge, GraphNode, ServiceGraph

PERIOD = timedelta(minutes=5)
HEADER_KEYS = ("microservice", "metric", "statistic")
TIMESTAMP_KEY = "unix_timestamp"
BASELINE_FOLDER = "noissue"


class DatasetError(ValueError):
    """The dataset is missing a file or a file is not in the expected form; says which."""


# -- tables ------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Column:
    node: str
    metric: str
    stat: str


@dataclass(frozen=True)
class MetricTable:
    """A wide metrics table: one row of optional values per timestamp, in time order."""

    columns: tuple[Column, ...]
    timestamps: tuple[datetime, ...]
    rows: tuple[tuple[float | None, ...], ...]

    def shifted(self, delta: timedelta) -> MetricTable:
        return replace(self, timestamps=tuple(t + delta for t in self.timestamps))

    def head(self, count: int) -> MetricTable:
        """The first ``count`` rows."""
        return replace(self, timestamps=self.timestamps[:count], rows=self.rows[:count])

    def cut(self, start: int, stop: int) -> MetricTable:
        return replace(self, timestamps=self.timestamps[start:stop], rows=self.rows[start:stop])

    @property
    def span(self) -> tuple[datetime, datetime]:
        """From the first row to the end of the last row's period."""
        return self.timestamps[0], self.timestamps[-1] + PERIOD


def _records(lines: Iterable[str]) -> list[tuple[int, list[str]]]:
    """The CSV records with their line numbers, blank ones left out."""
    return [
        (n, r) for n, r in enumerate(csv.reader(lines), start=1) if any(cell.strip() for cell in r)
    ]


def parse_metrics(lines: Iterable[str], where: str) -> MetricTable:
    """A ``metrics.csv`` read from its text lines; ``where`` names it in error messages."""
    records = _records(lines)
    if len(records) < 4:
        raise DatasetError(f"{where}: expected 4 header rows, found {len(records)} rows")
    for (line, record), key in zip(records[:4], (*HEADER_KEYS, TIMESTAMP_KEY), strict=True):
        if record[0].strip().lower() != key:
            raise DatasetError(
                f"{where}:{line}: the first cell should be {key!r}, not {record[0]!r}"
            )
    names, metrics, stats = (r[1:] for _, r in records[:3])
    if not len(names) == len(metrics) == len(stats):
        raise DatasetError(f"{where}: the three header rows have different lengths")
    columns = tuple(
        Column(n.strip(), m.strip(), s.strip())
        for n, m, s in zip(names, metrics, stats, strict=True)
    )
    if len(set(columns)) != len(columns):
        raise DatasetError(f"{where}: a node x metric x statistic column appears twice")
    stamps: list[datetime] = []
    rows: list[tuple[float | None, ...]] = []
    for line, record in records[4:]:
        stamp = _timestamp(record[0], f"{where}:{line}")
        if stamps and stamp <= stamps[-1]:
            raise DatasetError(f"{where}:{line}: timestamps must increase")
        if len(record) > len(columns) + 1:
            raise DatasetError(
                f"{where}:{line}: {len(record) - 1} values for {len(columns)} columns"
            )
        stamps.append(stamp)
        # A short row (trailing empty cells cut off) has missing values at its end.
        cells = record[1:] + [""] * (len(columns) + 1 - len(record))
        rows.append(tuple(_value(c, f"{where}:{line}") for c in cells))
    if not stamps:
        raise DatasetError(f"{where}: no data rows after the header")
    return MetricTable(columns, tuple(stamps), tuple(rows))


def _timestamp(text: str, where: str) -> datetime:
    try:
        seconds = float(text)
    except ValueError:
        raise DatasetError(f"{where}: {text!r} is not a unix timestamp") from None
    if not math.isfinite(seconds):
        raise DatasetError(f"{where}: {text!r} is not a unix timestamp")
    return datetime.fromtimestamp(round(seconds), UTC)


def _value(text: str, where: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(f"{where}: {text!r} is not a number") from None
    # A NaN cell is a missing value written another way.
    return value if math.isfinite(value) else None


def parse_graph(lines: Iterable[str], where: str) -> ServiceGraph:
    """The service graph of a ``graph.csv``: a non-zero cell means the row's node calls the
    column's node. A node calling itself adds nothing and is dropped."""
    records = _records(lines)
    if not records:
        raise DatasetError(f"{where}: empty")
    header = [name.strip() for name in records[0][1][1:]]
    nodes = {name for name in header if name}
    edges: list[GraphEdge] = []
    for line, record in records[1:]:
        source = record[0].strip()
        if len(record) - 1 > len(header):
            raise DatasetError(f"{where}:{line}: more cells than the header has nodes")
        nodes.add(source)
        for target, cell in zip(header, record[1:], strict=False):
            weight = _value(cell, f"{where}:{line}")
            if weight and source != target:
                edges.append(GraphEdge(source, target))
    return ServiceGraph(tuple(GraphNode(n) for n in sorted(nodes)), tuple(edges))


# -- the dataset -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """An issue's ``target.json``: the alarm, the true root cause and the reproducing command."""

    node: str
    metric: str
    stat: str
    alarm_at: datetime
    root_cause: str
    command: str


@dataclass(frozen=True)
class Issue:
    split: str
    name: str
    target: Target
    metrics: MetricTable


@dataclass(frozen=True)
class Alarm:
    """Where and on what an alarm fires."""

    node: str
    metric: str
    stat: str


@dataclass(frozen=True)
class Scenario:
    """A scenario's graph, baseline and chosen issues; ``alarms`` are the distinct alarms of
    all its issues (whatever was chosen), which the specificity windows reuse."""

    name: str
    graph: ServiceGraph
    baseline: MetricTable
    issues: tuple[Issue, ...]
    alarms: tuple[Alarm, ...] = ()


def parse_target(document: Mapping[str, Any], where: str) -> Target:
    try:
        target, cause = document["target"], document["root_cause"]
        command = ((document.get("metadata") or {}).get("reproducibility") or {}).get("command")
        return Target(
            node=str(target["node"]),
            metric=str(target["metric"]),
            stat=str(target.get("agg") or "Average"),
            alarm_at=_timestamp(str(target["timestamp"]), where),
            root_cause=str(cause["node"]),
            command=str(command or ""),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise DatasetError(f"{where}: missing or malformed field {exc}") from None


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"missing file {path}")
    # A byte-order mark is tolerated, as spreadsheet exports often write one.
    return path.read_text(encoding="utf-8-sig").splitlines()


def read_metrics(path: Path) -> MetricTable:
    return parse_metrics(_read_lines(path), str(path))


def read_graph(path: Path) -> ServiceGraph:
    return parse_graph(_read_lines(path), str(path))


def read_target(path: Path) -> Target:
    try:
        document = json.loads("\n".join(_read_lines(path)))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc.msg})") from None
    if not isinstance(document, dict):
        raise DatasetError(f"{path}: expected a JSON object")
    return parse_target(document, str(path))


def _issue_number(folder: Path) -> tuple[int, str]:
    digits = re.findall(r"\d+", folder.name)
    return (int(digits[-1]) if digits else -1, folder.name)


def _issue_folders(split_dir: Path) -> list[Path]:
    found = [d for d in split_dir.iterdir() if d.is_dir() and (d / "target.json").is_file()]
    return sorted(found, key=_issue_number)


def split_names(folder: Path) -> list[str]:
    """The scenario's split folders (any folder of issues except the baseline), train first."""
    names = [
        d.name
        for d in folder.iterdir()
        if d.is_dir() and d.name != BASELINE_FOLDER and _issue_folders(d)
    ]
    return sorted(names, key=split_rank)


def load_scenario(folder: Path, split: str | None = None, limit: int | None = None) -> Scenario:
    """One scenario folder, with every split (or only ``split``), ``limit`` issues per split."""
    splits = split_names(folder)
    if split is not None:
        if split not in splits:
            raise DatasetError(
                f"{folder} has no split {split!r} (it has: {', '.join(splits) or 'none'})"
            )
        splits = [split]
    issues = []
    for name in splits:
        for issue_dir in _issue_folders(folder / name)[:limit]:
            target = read_target(issue_dir / "target.json")
            table = read_metrics(issue_dir / "metrics.csv")
            issues.append(Issue(name, issue_dir.name, target, table))
    targets = [
        read_target(d / "target.json")
        for name in split_names(folder)
        for d in _issue_folders(folder / name)
    ]
    alarms = {Alarm(t.node, t.metric, t.stat) for t in targets}
    return Scenario(
        name=folder.name,
        graph=read_graph(folder / "graph.csv"),
        baseline=read_metrics(folder / BASELINE_FOLDER / "metrics.csv"),
        issues=tuple(issues),
        alarms=tuple(sorted(alarms, key=lambda a: (a.node, a.metric, a.stat))),
    )


def scenario_folders(data: Path) -> list[Path]:
    """``data`` itself when it is a scenario folder (it has ``graph.csv``), else its scenario
    sub-folders in name order."""
    if not data.is_dir():
        raise DatasetError(f"dataset folder not found: {data}")
    if (data / "graph.csv").is_file():
        return [data]
    found = sorted(d for d in data.iterdir() if d.is_dir() and (d / "graph.csv").is_file())
    if not found:
        raise DatasetError(
            f"{data} is neither a scenario folder (with graph.csv) nor a dataset "
            "root with scenario folders"
        )
    return found


def load_dataset(
    data: Path, scenario: str | None = None, split: str | None = None, limit: int | None = None
) -> list[Scenario]:
    """The scenarios under ``data`` (or the one it is), optionally one scenario and one split."""
    folders = scenario_folders(data)
    if scenario is not None:
        chosen = [f for f in folders if f.name == scenario]
        if not chosen:
            raise DatasetError(
                f"no scenario {scenario!r} in {data} (found: {', '.join(f.name for f in folders)})"
            )
        folders = chosen
    return [load_scenario(folder, split, limit) for folder in folders]


# -- telemetry ---------------------------------------------------------------------------------
