"""Imports the PetShop root-cause dataset: each issue, and each window cut from the healthy
baseline, becomes an ``IncidentCreated`` event and an in-memory telemetry bundle.

Dataset layout (per scenario folder, recognised by its ``graph.csv``): ``graph.csv`` is an
adjacency matrix where a 1 in row *r*, column *c* means node *r* calls node *c*;
``noissue/metrics.csv`` is the healthy baseline; every other sub-folder is a split (``train``,
``dev``, ``test``, …) of ``issue_N/`` folders, each with ``metrics.csv`` and ``target.json``.
A ``metrics.csv`` has three header rows (``microservice``, ``metric``, ``statistic``), a fourth
row whose first cell is ``unix_timestamp``, then one row per 5-minute period; empty cells are
missing values.

An issue's telemetry holds every column as the series ``(node, metric, statistic)``: the healthy
baseline shifted in time so that it ends one period before the issue's first row, then the
issue's rows. The analysis window runs from the first issue row to the last row plus one period:
the dataset's alarm time often falls before the largest deviation, so a window ending at the
alarm would cut the fault off.

Change feed (``with_changes``). The account's resources carry a ``service`` tag naming the graph
node they belong to; :data:`ACCOUNT_RESOURCES` is that tag inventory, one entry per resource (an
SSM parameter belongs to the service that reads it, a Lambda function or an ECS service to its
own node). A change event takes its service from the tag of the resource it changed, never from
an issue's label. An issue's reproducing command decides only *which* resource changed:

- ``aws ssm put-parameter --name P`` is an SSM ``PutParameter`` on parameter ``P``;
- ``sed … DIR/FILE && cdk deploy …`` that edits the source of a Lambda function (its code folder
  is in the inventory) is a Lambda ``UpdateFunctionCode`` on that function;
- any other ``cdk deploy … STACK`` is a CloudFormation ``UpdateStack`` on ``STACK``;
- anything else, such as a load generator (``python -m issue_dynamo_db_requests``), makes no
  change event.

The change happens at a seeded time 5 to 20 minutes before the fault onset, taken as the
dataset's alarm time (the issues' rows show the deviation starting within a period of it, 5 to
10 minutes after the window start), so it falls shortly before or early in the window. Three to
five decoy changes on resources tagged with *other* services (neither the changed resource's nor
the true root cause's) are added at seeded times in the two hours before the alarm. Change ids
number the changes in time order, so they tell nothing about which is real. Healthy windows get
decoys only.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opx.eval.scoring import CaseKey, split_rank
from opx.tools.memory import InMemoryTools
from opx.tools.records import (
    Change,
    ChangeKind,
    GraphEdge,
    GraphNode,
    MetricSeries,
    ServiceGraph,
    iso_z,
)

PERIOD = timedelta(minutes=5)
HEADER_KEYS = ("microservice", "metric", "statistic")
TIMESTAMP_KEY = "unix_timestamp"
BASELINE_FOLDER = "noissue"
METRIC_DIRECTIONS = {"latency": "up", "availability": "down", "requests": "both"}
UNITS = {"latency": "Seconds", "availability": "Percent", "requests": "Count"}
SEVERITY = "SEV2"
ACCOUNT = "123456789012"
REGION = "us-west-2"
ACTOR = f"arn:aws:sts::{ACCOUNT}:assumed-role/observabilityworkshop-admin/operator"
CHANGE_LEAD = (timedelta(minutes=5), timedelta(minutes=20))
DECOY_SPAN = timedelta(hours=2)
DECOY_COUNT = (3, 5)


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


def metric_series(tables: Sequence[MetricTable]) -> list[MetricSeries]:
    """One series per column found in any table, points in table order; missing cells are
    skipped. The tables must follow each other in time."""
    points: dict[Column, tuple[list[datetime], list[float]]] = {}
    for table in tables:
        for column in table.columns:
            points.setdefault(column, ([], []))
        for index, column in enumerate(table.columns):
            stamps, values = points[column]
            for stamp, row in zip(table.timestamps, table.rows, strict=True):
                value = row[index]
                if value is not None:
                    stamps.append(stamp)
                    values.append(value)
    return [
        MetricSeries(c.node, c.metric, c.stat, UNITS.get(c.metric, ""), tuple(s), tuple(v))
        for c, (s, v) in sorted(points.items())
    ]


def before(baseline: MetricTable, start: datetime) -> MetricTable:
    """The baseline shifted so that its last row is the period just before ``start``."""
    return baseline.shifted(start - PERIOD - baseline.timestamps[-1])


def make_tools(
    name: str, tables: Sequence[MetricTable], graph: ServiceGraph, changes: Sequence[Change] = ()
) -> InMemoryTools:
    return InMemoryTools(
        name,
        series=metric_series(tables),
        graph=graph,
        changes=changes,
        metric_directions=METRIC_DIRECTIONS,
    )


def incident_event(
    incident_id: str,
    service: str,
    metric: str,
    stat: str,
    alarm_at: datetime,
    window: tuple[datetime, datetime],
) -> dict[str, Any]:
    """The ``IncidentCreated`` event of an alarm on ``service``'s ``metric``."""
    title = f"{service} {metric} ({stat}) alarm"
    detection = {
        "detection_id": f"{incident_id}/alarm",
        "service": service,
        "metric": metric,
        "stat": stat,
        "detected_at": iso_z(alarm_at),
        "description": title,
    }
    return {
        "source": "opx.incident",
        "detail-type": "IncidentCreated",
        "detail": {
            "incident_id": incident_id,
            "service": service,
            "severity": SEVERITY,
            "window_start": iso_z(window[0]),
            "window_end": iso_z(window[1]),
            "evidence_bundle": {
                "evidence_id": f"{incident_id}/evidence",
                "detections": [detection],
            },
            "title": title,
        },
    }


@dataclass(frozen=True)
class Case:
    """One run to make: the event, its telemetry and the answer (None for a healthy window)."""

    key: CaseKey
    event: dict[str, Any]
    tools: InMemoryTools
    truth: str | None
    graph_nodes: int


def issue_case(scenario: Scenario, issue: Issue, *, changes: bool = False, seed: int = 0) -> Case:
    target = issue.target
    window = issue.metrics.span
    incident_id = f"petshop/{scenario.name}/{issue.split}/{issue.name}"
    feed: list[Change] = []
    if changes:
        rng = random.Random(f"{seed}|changes|{incident_id}")
        feed = issue_changes(issue, scenario.graph, rng)
    return Case(
        key=CaseKey(issue.split, scenario.name, issue.name, target.metric, changes),
        event=incident_event(
            incident_id, target.node, target.metric, target.stat, target.alarm_at, window
        ),
        tools=make_tools(
            incident_id, [before(scenario.baseline, window[0]), issue.metrics], scenario.graph, feed
        ),
        truth=target.root_cause,
        graph_nodes=len(scenario.graph.nodes),
    )


def window_starts(
    rows: int, length: int, history: int, count: int, rng: random.Random
) -> list[int]:
    """``count`` distinct start rows of windows of ``length`` rows with at least ``history``
    rows before each, in increasing order (all possible ones if there are fewer)."""
    possible = range(history, rows - length + 1)
    return sorted(rng.sample(possible, min(count, len(possible))))


def healthy_cases(
    scenario: Scenario,
    *,
    windows: int,
    history: timedelta,
    changes: bool = False,
    seed: int = 0,
) -> list[Case]:
    """Specificity cases: ``windows`` windows of an issue window's length cut from the healthy
    baseline at seeded positions, each with every alarm of the scenario firing at its end."""
    alarms = scenario.alarms
    if not alarms or not scenario.issues or windows <= 0:
        return []
    length = max(len(i.metrics.timestamps) for i in scenario.issues)
    base = scenario.baseline
    need = math.ceil(history / PERIOD)
    starts = window_starts(
        len(base.timestamps),
        length,
        need,
        windows,
        random.Random(f"{seed}|specificity|{scenario.name}"),
    )
    cases = []
    for start in starts:
        shown = base.head(start + length)
        window = base.cut(start, start + length).span
        for alarm in alarms:
            name = f"window_{start}"
            incident_id = f"petshop/{scenario.name}/healthy/{name}/{alarm.metric}"
            feed: list[Change] = []
            if changes:
                rng = random.Random(f"{seed}|changes|{incident_id}")
                feed = decoy_changes(scenario.graph, set(), window[1], rng)
            cases.append(
                Case(
                    key=CaseKey(
                        "healthy", scenario.name, name, alarm.metric, changes, healthy=True
                    ),
                    event=incident_event(
                        incident_id, alarm.node, alarm.metric, alarm.stat, window[1], window
                    ),
                    tools=make_tools(incident_id, [shown], scenario.graph, _numbered(feed, "ct")),
                    truth=None,
                    graph_nodes=len(scenario.graph.nodes),
                )
            )
    return cases


def issue_cases(
    scenarios: Sequence[Scenario], *, changes: bool = False, seed: int = 0
) -> list[Case]:
    return [issue_case(s, i, changes=changes, seed=seed) for s in scenarios for i in s.issues]


# -- the change feed ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TaggedResource:
    """A resource of the account with its ``service`` tag (a graph node, or None when the
    resource serves several services) and the CloudTrail event that changes it."""

    arn: str
    name: str
    event_source: str
    event_name: str
    kind: ChangeKind
    service: str | None
    code_dir: str | None = None


def _ssm(name: str, service: str) -> TaggedResource:
    return TaggedResource(
        f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}",
        name,
        "ssm.amazonaws.com",
        "PutParameter",
        ChangeKind.CONFIG,
        service,
    )


def _function(name: str, service: str, code_dir: str | None = None) -> TaggedResource:
    return TaggedResource(
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        name,
        "lambda.amazonaws.com",
        "UpdateFunctionCode20150331v2",
        ChangeKind.DEPLOYMENT,
        service,
        code_dir,
    )


def _ecs(name: str, service: str) -> TaggedResource:
    return TaggedResource(
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/PetSite/{name}",
        name,
        "ecs.amazonaws.com",
        "UpdateService",
        ChangeKind.DEPLOYMENT,
        service,
    )


def _stack(name: str) -> TaggedResource:
    return TaggedResource(
        f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}",
        name,
        "cloudformation.amazonaws.com",
        "UpdateStack",
        ChangeKind.INFRASTRUCTURE,
        None,
    )


# The PetShop account's tag inventory, as the PetAdoptions workshop deploys it.
ACCOUNT_RESOURCES: tuple[TaggedResource, ...] = (
    _ssm("/petstore/searchdelay", "PetSearch_AWS::ECS::Fargate"),
    _ssm("/petstore/searcherrorpercent", "PetSearch_AWS::ECS::Fargate"),
    _ssm("/petstore/petlisterrorpercent", "petlistadoptions_AWS::ECS::Fargate"),
    _ssm("/petstore/errormode1", "payforadoption_AWS::ECS::Container"),
    _ssm("/petstore/delaymode1", "payforadoption_AWS::ECS::Container"),
    _function(
        "lambdastatusupdater", "lambdastatusupdater_AWS::Lambda::Function", "petstatusupdater"
    ),
    _function("lambda_step_readDDB", "lambda_step_readDDB_AWS::Lambda::Function"),
    _function(
        "lambda_step_priceGreaterThan55", "lambda_step_priceGreaterThan55_AWS::Lambda::Function"
    ),
    _function("lambda_step_priceLessThan55", "lambda_step_priceLessThan55_AWS::Lambda::Function"),
    _ecs("PetSearch-service", "PetSearch_AWS::ECS::Fargate"),
    _ecs("petlistadoptions-service", "petlistadoptions_AWS::ECS::Fargate"),
    _ecs("payforadoption-service", "payforadoption_AWS::ECS::Container"),
    TaggedResource(
        f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/petInfo",
        "petInfo",
        "dynamodb.amazonaws.com",
        "UpdateTable",
        ChangeKind.INFRASTRUCTURE,
        "petInfo_AWS::DynamoDB::Table",
    ),
    TaggedResource(
        f"arn:aws:sqs:{REGION}:{ACCOUNT}:Services-sqspetadoption",
        "Services-sqspetadoption",
        "sqs.amazonaws.com",
        "SetQueueAttributes",
        ChangeKind.CONFIG,
        "https://sqs.us-west-2.amazonaws.com/Services-sqspetadoption_AWS::SQS::Queue",
    ),
    TaggedResource(
        f"arn:aws:rds:{REGION}:{ACCOUNT}:db:services-database",
        "services-database",
        "rds.amazonaws.com",
        "ModifyDBInstance",
        ChangeKind.INFRASTRUCTURE,
        "adoptions@services-database.us-west-2.rds.amazonaws.com_Database::SQL",
    ),
    TaggedResource(
        f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:StepFnStateMachine76D362E8-T67Tg48ke8oK",
        "StepFnStateMachine76D362E8-T67Tg48ke8oK",
        "states.amazonaws.com",
        "UpdateStateMachine",
        ChangeKind.DEPLOYMENT,
        "AWS::StepFunctions::StateMachine",
    ),
    _stack("Services"),
)


def changed_resource(
    command: str, resources: Sequence[TaggedResource] = ACCOUNT_RESOURCES
) -> TaggedResource | None:
    """The resource an issue's reproducing command changes, or None when it changes none."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if words[:3] == ["aws", "ssm", "put-parameter"]:
        name = _option(words, "--name")
        return next(
            (r for r in resources if r.event_name == "PutParameter" and r.name == name), None
        )
    if "cdk" in words and "deploy" in words:
        return _deployed(words, resources)
    return None


def _option(words: Sequence[str], flag: str) -> str | None:
    for index, word in enumerate(words):
        if word == flag and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    return None


def _deployed(words: Sequence[str], resources: Sequence[TaggedResource]) -> TaggedResource | None:
    """A function whose code folder a ``sed`` before the deploy edited, else the stack."""
    deploy = words.index("deploy")
    edited = {part for w in words[:deploy] if "/" in w for part in Path(w).parts}
    for resource in resources:
        if resource.code_dir is not None and resource.code_dir in edited:
            return resource
    stacks = [w for w in words[deploy + 1 :] if not w.startswith("-")]
    # A word after an option is that option's value; the stack is the first word that is not.
    values = {
        words[i + 1]
        for i in range(deploy + 1, len(words) - 1)
        if words[i].startswith("--") and "=" not in words[i]
    }
    stack = next((w for w in stacks if w not in values), None)
    if stack is None:
        return None
    tagged = next((r for r in resources if r.event_name == "UpdateStack" and r.name == stack), None)
    return tagged or _stack(stack)


# CloudTrail suffixes some event names with an API version (UpdateFunctionCode20150331v2).
_VERSION_SUFFIX = re.compile(r"\d{8}v\d+$")


def _change(resource: TaggedResource, stamp: datetime) -> Change:
    return Change(
        change_id="",
        timestamp=stamp,
        kind=resource.kind,
        event_source=resource.event_source,
        event_name=resource.event_name,
        resource=resource.arn,
        service=resource.service,
        actor=ACTOR,
        description=f"{_VERSION_SUFFIX.sub('', resource.event_name)} {resource.name}",
    )


def _seconds(rng: random.Random, low: timedelta, high: timedelta) -> timedelta:
    return timedelta(seconds=rng.randint(int(low.total_seconds()), int(high.total_seconds())))


def decoy_changes(
    graph: ServiceGraph,
    excluded: set[str | None],
    alarm_at: datetime,
    rng: random.Random,
    resources: Sequence[TaggedResource] = ACCOUNT_RESOURCES,
) -> list[Change]:
    """Three to five changes on tagged resources of services in the graph and not in
    ``excluded``, at seeded times in the two hours before the alarm."""
    nodes = {n.name for n in graph.nodes}
    pool = sorted(
        (
            r
            for r in resources
            if r.service is not None and r.service in nodes and r.service not in excluded
        ),
        key=lambda r: r.arn,
    )
    count = min(rng.randint(*DECOY_COUNT), len(pool))
    return [
        _change(r, alarm_at - _seconds(rng, timedelta(seconds=1), DECOY_SPAN))
        for r in rng.sample(pool, count)
    ]


def issue_changes(issue: Issue, graph: ServiceGraph, rng: random.Random) -> list[Change]:
    """The issue's change event (if its command makes one) and the decoys, numbered in time
    order."""
    resource = changed_resource(issue.target.command)
    feed = []
    if resource is not None:
        feed.append(_change(resource, issue.target.alarm_at - _seconds(rng, *CHANGE_LEAD)))
    excluded = {issue.target.root_cause, None if resource is None else resource.service}
    feed.extend(decoy_changes(graph, excluded, issue.target.alarm_at, rng))
    return _numbered(feed, "ct")


def _numbered(changes: Sequence[Change], prefix: str) -> list[Change]:
    ordered = sorted(changes, key=lambda c: (c.timestamp, c.resource))
    return [replace(c, change_id=f"{prefix}-{i:03d}") for i, c in enumerate(ordered, start=1)]
