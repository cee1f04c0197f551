"""A tiny hand-made dataset in the PetShop layout, written under a temporary folder."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path

FRONT = "PetSite"
SEARCH = "PetSearch_AWS::ECS::Fargate"
TABLE = "petInfo_AWS::DynamoDB::Table"
PAY = "payforadoption_AWS::ECS::Container"
UPDATER = "lambdastatusupdater_AWS::Lambda::Function"
LIST = "petlistadoptions_AWS::ECS::Fargate"
NODES = (FRONT, SEARCH, TABLE, PAY, UPDATER, LIST)
# (caller, callee)
EDGES = (
    (FRONT, SEARCH),
    (FRONT, PAY),
    (FRONT, LIST),
    (SEARCH, TABLE),
    (PAY, UPDATER),
    (UPDATER, TABLE),
    (LIST, SEARCH),
)
STATS = (
    ("latency", "Average"),
    ("latency", "p99"),
    ("requests", "Sum"),
    ("availability", "Average"),
)
COLUMNS = tuple((node, metric, stat) for node in NODES for metric, stat in STATS)
# A column only the issues have, as in the real data.
EXTRA = ("invalid_AWS::DynamoDB::Table", "latency", "Average")
PERIOD = 300
BASELINE_START = 1_692_608_400
BASELINE_ROWS = 60
ISSUE_ROWS = 5
SSM_SEARCH = "aws ssm put-parameter --name '/petstore/searchdelay' --value '1000' --overwrite"
SED_DEPLOY = (
    "sed -E -i 's/sleep\\(([0-9]+)/sleep(500/g' ../../petstatusupdater/index.js && "
    "cdk deploy --context admin_role=arn:aws:iam::XXX:role/admin Services "
    "--context dashboard_role_arn= --require-approval never"
)
LOAD = "python -m issue_dynamo_db_requests -num_iterations=800"
Cell = Callable[[int, tuple[str, str, str]], float | None]


def healthy(rng: random.Random) -> Cell:
    def cell(row: int, column: tuple[str, str, str]) -> float | None:
        _node, metric, _stat = column
        if metric == "latency":
            return round(0.05 + rng.random() * 0.01, 5)
        if metric == "requests":
            return float(100 + rng.randint(-5, 5))
        return 100.0

    return cell


def metrics_text(
    columns: Sequence[tuple[str, str, str]], stamps: Sequence[float], cell: Cell
) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["microservice", *(c[0] for c in columns)])
    writer.writerow(["metric", *(c[1] for c in columns)])
    writer.writerow(["statistic", *(c[2] for c in columns)])
    writer.writerow(["unix_timestamp", *([""] * len(columns))])
    for row, stamp in enumerate(stamps):
        values = [cell(row, c) for c in columns]
        writer.writerow([f"{stamp:.1f}", *("" if v is None else repr(v) for v in values)])
    return buffer.getvalue()


def graph_text(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["", *nodes])
    for source in nodes:
        writer.writerow([source, *("1.0" if (source, t) in edges else "0.0" for t in nodes)])
    return buffer.getvalue()


def faulty(root_cause: str, metric: str, rng: random.Random) -> Cell:
    """Healthy values, except that the root cause and its callers degrade from row 1 on."""
    base = healthy(rng)
    callers = {root_cause} | {a for a, b in EDGES if b == root_cause}
    callers |= {a for a, b in EDGES if b in callers}

    def cell(row: int, column: tuple[str, str, str]) -> float | None:
        node, name, _stat = column
        value = base(row, column)
        if row >= 1 and node in callers and name == metric and value is not None:
            return value * 20 if metric == "latency" else value - 30.0
        return value

    return cell


def write_issue(
    folder: Path,
    *,
    alarm_metric: str,
    root_cause: str,
    command: str,
    start: float,
    rng: random.Random,
) -> None:
    folder.mkdir(parents=True)
    stamps = [start + PERIOD * i for i in range(ISSUE_ROWS)]
    columns = [*COLUMNS, EXTRA]
    (folder / "metrics.csv").write_text(
        metrics_text(columns, stamps, faulty(root_cause, alarm_metric, rng))
    )
    target = {
        "target": {
            "node": FRONT,
            "metric": alarm_metric,
            "agg": "Average",
            "timestamp": int(start + 2 * PERIOD + 37),
        },
        "root_cause": {"node": root_cause, "metric": None},
        "metadata": {"reproducibility": {"command": command}},
    }
    (folder / "target.json").write_text(json.dumps(target))


ISSUES = (
    ("train", "issue_0", "latency", SEARCH, SSM_SEARCH),
    ("train", "issue_1", "availability", SEARCH, SSM_SEARCH),
    ("dev", "issue_2", "latency", UPDATER, SED_DEPLOY),
    ("dev", "issue_10", "latency", TABLE, LOAD),
)


def write_scenario(folder: Path, *, seed: int = 0) -> Path:
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    (folder / "graph.csv").write_text(graph_text(NODES, EDGES))
    (folder / "noissue").mkdir()
    stamps = [BASELINE_START + PERIOD * i for i in range(BASELINE_ROWS)]
    (folder / "noissue" / "metrics.csv").write_text(metrics_text(COLUMNS, stamps, healthy(rng)))
    for index, (split, name, metric, cause, command) in enumerate(ISSUES):
        start = 1_681_849_920 + 86_400 * index
        write_issue(
            folder / split / name,
            alarm_metric=metric,
            root_cause=cause,
            command=command,
            start=start,
            rng=rng,
        )
    return folder


def write_dataset(root: Path) -> Path:
    """Two scenarios, each with train and dev issues, a baseline and a graph."""
    for index, name in enumerate(("high_traffic", "low_traffic")):
        write_scenario(root / name, seed=index)
    (root / "README.md").write_text("tiny PetShop-format dataset\n")
    return root
