"""The PetShop importer on a tiny hand-made dataset in the same format."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from opx.eval.petshop import METRIC_DIRECTIONS, healthy_cases, issue_case, issue_cases
from opx.eval.petshop_changes import (
    ACCOUNT_RESOURCES,
    changed_resource,
    decoy_changes,
    issue_changes,
)
from opx.eval.petshop_data import (
    PERIOD,
    Column,
    DatasetError,
    load_dataset,
    parse_graph,
    parse_metrics,
)
from opx.runtime.intake import Accepted, parse_event
from opx.tools.records import ChangeKind, GraphNode, ServiceGraph
from tests.eval import builders as b

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FAR = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return b.write_dataset(tmp_path / "petshop")


def lines(text: str) -> list[str]:
    return text.splitlines()


# -- metrics.csv -------------------------------------------------------------------------------

HEADER = [
    "microservice,a,a,b",
    "metric,latency,requests,latency",
    "statistic,Average,Sum,p99",
    "unix_timestamp,,,",
]


def test_header_rows_name_each_column_by_node_metric_and_statistic() -> None:
    table = parse_metrics([*HEADER, "600.0,1.5,10,2", "900.0,1.0,,3"], "m.csv")
    assert table.columns == (
        Column("a", "latency", "Average"),
        Column("a", "requests", "Sum"),
        Column("b", "latency", "p99"),
    )
    assert table.timestamps == (EPOCH + timedelta(seconds=600), EPOCH + timedelta(seconds=900))
    assert table.rows == ((1.5, 10.0, 2.0), (1.0, None, 3.0))


def test_empty_and_nan_cells_and_short_rows_are_missing_values() -> None:
    table = parse_metrics([*HEADER, "600,,nan,", "900,4"], "m.csv")
    assert table.rows == ((None, None, None), (4.0, None, None))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (["node,a", *HEADER[1:], "600,1,1,1"], "m.csv:1: the first cell should be 'microservice'"),
        ([*HEADER[:3], "time,,,", "600,1,1,1"], "m.csv:4: the first cell should be"),
        ([*HEADER, "600,x,1,1"], "m.csv:5: 'x' is not a number"),
        ([*HEADER, "soon,1,1,1"], "m.csv:5: 'soon' is not a unix timestamp"),
        ([*HEADER, "900,1,1,1", "600,1,1,1"], "m.csv:6: timestamps must increase"),
        ([*HEADER, "600,1,1,1,1"], "m.csv:5: 4 values for 3 columns"),
        (HEADER, "no data rows"),
        (HEADER[:2], "expected 4 header rows"),
        (
            [
                "microservice,a,a",
                "metric,latency,latency",
                "statistic,p50,p50",
                "unix_timestamp,,",
                "600,1,1",
            ],
            "appears twice",
        ),
    ],
)
def test_malformed_metrics_are_rejected_with_the_line(text: list[str], message: str) -> None:
    with pytest.raises(DatasetError, match=message.replace("(", r"\(")):
        parse_metrics(text, "m.csv")


def test_a_byte_order_mark_is_tolerated(tmp_path: Path, root: Path) -> None:
    folder = root / "low_traffic"
    graph = folder / "graph.csv"
    graph.write_bytes(b"\xef\xbb\xbf" + graph.read_bytes())
    scenario = load_dataset(folder)[0]
    assert b.FRONT in {n.name for n in scenario.graph.nodes}


# -- graph.csv ---------------------------------------------------------------------------------


def test_graph_edges_go_from_the_row_node_to_the_column_node() -> None:
    graph = parse_graph([",a,b,c", "a,0,1.0,0", "b,0,1,1", "c,0,0,0.0"], "g.csv")
    assert [(e.source, e.target) for e in graph.edges] == [("a", "b"), ("b", "c")]
    assert [n.name for n in graph.nodes] == ["a", "b", "c"]


def test_graph_of_the_dataset_keeps_the_caller_callee_direction(root: Path) -> None:
    scenario = load_dataset(root / "low_traffic")[0]
    edges = {(e.source, e.target) for e in scenario.graph.edges}
    assert edges == set(b.EDGES)
    case = issue_case(scenario, scenario.issues[0])
    data = case.tools.get_service_graph().data
    assert {"source": b.FRONT, "target": b.SEARCH} in data["edges"]
    assert {"source": b.SEARCH, "target": b.FRONT} not in data["edges"]


# -- the two --data forms, scenarios and splits ------------------------------------------------


def test_dataset_root_gives_every_scenario_and_split(root: Path) -> None:
    scenarios = load_dataset(root)
    assert [s.name for s in scenarios] == ["high_traffic", "low_traffic"]
    assert [(i.split, i.name) for i in scenarios[0].issues] == [
        ("train", "issue_0"),
        ("train", "issue_1"),
        ("dev", "issue_2"),
        ("dev", "issue_10"),
    ]


def test_scenario_folder_gives_that_scenario_only(root: Path) -> None:
    scenarios = load_dataset(root / "low_traffic")
    assert [s.name for s in scenarios] == ["low_traffic"]
    assert len(scenarios[0].issues) == 4


def test_scenario_split_and_limit_narrow_the_issues(root: Path) -> None:
    scenarios = load_dataset(root, scenario="high_traffic", split="dev", limit=1)
    assert [(s.name, [i.name for i in s.issues]) for s in scenarios] == [
        ("high_traffic", ["issue_2"])
    ]
    # Alarms come from every issue, whatever was chosen, for the specificity windows.
    assert {a.metric for a in scenarios[0].alarms} == {"latency", "availability"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"scenario": "nowhere"}, "no scenario 'nowhere'"), ({"split": "test"}, "no split 'test'")],
)
def test_unknown_scenario_or_split_is_an_error(
    root: Path, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(DatasetError, match=message):
        load_dataset(root, **kwargs)  # type: ignore[arg-type]


def test_a_folder_without_scenarios_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="neither a scenario folder"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "missing")


def test_a_missing_file_is_named(root: Path) -> None:
    (root / "low_traffic" / "noissue" / "metrics.csv").unlink()
    with pytest.raises(DatasetError, match=r"missing file .*noissue"):
        load_dataset(root / "low_traffic")


# -- events and telemetry ----------------------------------------------------------------------


def test_event_names_the_alarm_node_and_covers_every_issue_row(root: Path) -> None:
    scenario = load_dataset(root / "low_traffic")[0]
    issue = scenario.issues[0]
    accepted = parse_event(issue_case(scenario, issue).event)
    assert isinstance(accepted, Accepted)
    incident = accepted.incident
    assert incident.service == b.FRONT
    assert incident.window_start == issue.metrics.timestamps[0]
    assert incident.window_end == issue.metrics.timestamps[-1] + PERIOD
    assert incident.window_end > issue.target.alarm_at + PERIOD
    assert "latency" in (incident.title or "")
    # The label stays out of what OPX reads.
    assert b.SEARCH not in str(issue_case(scenario, issue).event)


def test_baseline_is_shifted_to_end_one_period_before_the_issue(root: Path) -> None:
    scenario = load_dataset(root / "low_traffic")[0]
    issue = scenario.issues[0]
    case = issue_case(scenario, issue)
    data = case.tools.get_metrics(*FAR, service=b.SEARCH, metric="latency", stat="Average").data
    (series,) = data["series"]
    stamps = [datetime.fromisoformat(t) for t in series["timestamps"]]
    first = issue.metrics.timestamps[0]
    assert len(stamps) == b.BASELINE_ROWS + b.ISSUE_ROWS
    assert stamps[b.BASELINE_ROWS - 1] == first - PERIOD
    assert stamps[b.BASELINE_ROWS] == first
    assert all(later - earlier == PERIOD for earlier, later in pairwise(stamps))
    assert series["unit"] == "Seconds"


def test_every_column_becomes_a_series_and_missing_cells_are_skipped(root: Path) -> None:
    scenario = load_dataset(root / "low_traffic")[0]
    case = issue_case(scenario, scenario.issues[0])
    listed = case.tools.list_metrics().data["metrics"]
    ids = {m["id"] for m in listed}
    assert len(ids) == len(b.COLUMNS) + 1
    assert "invalid_AWS::DynamoDB::Table|latency|Average" in ids
    (extra,) = case.tools.get_metrics(*FAR, service=b.EXTRA[0]).data["series"]
    assert len(extra["values"]) == b.ISSUE_ROWS  # only the issue has this column
    assert case.tools.metric_directions == METRIC_DIRECTIONS


def test_issue_cases_carry_truth_and_graph_size(root: Path) -> None:
    scenarios = load_dataset(root)
    cases = issue_cases(scenarios)
    assert len(cases) == 8
    assert cases[0].truth == b.SEARCH
    assert cases[0].graph_nodes == len(b.NODES)
    assert all(not c.key.changes and not c.key.healthy for c in cases)


# -- specificity windows -----------------------------------------------------------------------


def test_healthy_windows_are_seeded_and_end_where_the_alarm_fires(root: Path) -> None:
    scenario = load_dataset(root / "low_traffic")[0]
    history = timedelta(hours=2)
    cases = healthy_cases(scenario, windows=3, history=history, seed=0)
    assert len(cases) == 3 * 2  # three windows, each with a latency and an availability alarm
    again = healthy_cases(scenario, windows=3, history=history, seed=0)
    assert [c.event for c in cases] == [c.event for c in again]
    other = healthy_cases(scenario, windows=3, history=history, seed=1)
    assert [c.key.name for c in cases] != [c.key.name for c in other]
    for case in cases:
        accepted = parse_event(case.event)
        assert isinstance(accepted, Accepted)
        incident = accepted.incident
        assert incident.window_end - incident.window_start == b.ISSUE_ROWS * PERIOD
        assert incident.service == b.FRONT
        assert case.truth is None and case.key.healthy
        (series,) = case.tools.get_metrics(
            *FAR, service=b.FRONT, metric="latency", stat="Average"
        ).data["series"]
        stamps = [datetime.fromisoformat(t) for t in series["timestamps"]]
        assert stamps[-1] == incident.window_end - PERIOD  # nothing after the window
        assert incident.window_start - stamps[0] >= history


def test_more_windows_than_positions_gives_every_position(root: Path) -> None:
    scenario = load_dataset(root / "low_traffic")[0]
    cases = healthy_cases(scenario, windows=500, history=timedelta(hours=4))
    positions = b.BASELINE_ROWS - b.ISSUE_ROWS + 1 - 48
    assert len(cases) == positions * 2


# -- the change feed ---------------------------------------------------------------------------


def test_ssm_put_parameter_changes_that_parameter() -> None:
    resource = changed_resource(b.SSM_SEARCH)
    assert resource is not None
    assert resource.event_name == "PutParameter" and resource.name == "/petstore/searchdelay"
    assert resource.kind is ChangeKind.CONFIG


def test_sed_and_cdk_deploy_of_a_function_source_updates_that_function() -> None:
    resource = changed_resource(b.SED_DEPLOY)
    assert resource is not None
    assert resource.event_name.startswith("UpdateFunctionCode")
    assert resource.name == "lambdastatusupdater"
    assert resource.kind is ChangeKind.DEPLOYMENT


def test_other_cdk_deploys_update_the_stack_and_load_generators_change_nothing() -> None:
    resource = changed_resource("cdk deploy --require-approval never Services")
    assert resource is not None
    assert (resource.event_name, resource.name, resource.service) == (
        "UpdateStack",
        "Services",
        None,
    )
    assert changed_resource(b.LOAD) is None
    assert changed_resource("aws ssm put-parameter --name '/unknown' --value 1") is None
    assert changed_resource("echo 'unbalanced") is None


def test_the_service_comes_from_the_resource_tag_not_from_the_label(root: Path) -> None:
    scenario = load_dataset(root / "low_traffic")[0]
    issue = scenario.issues[0]
    relabelled = replace(issue, target=replace(issue.target, root_cause=b.PAY))
    real = [
        c
        for c in issue_changes(relabelled, scenario.graph, random.Random(0))
        if c.resource.endswith("/petstore/searchdelay")
    ]
    assert [c.service for c in real] == [b.SEARCH]


def test_issue_changes_place_the_real_change_before_onset_and_decoys_elsewhere(
    root: Path,
) -> None:
    scenario = load_dataset(root / "low_traffic")[0]
    for issue in scenario.issues:
        for seed in range(5):
            feed = issue_changes(issue, scenario.graph, random.Random(seed))
            resource = changed_resource(issue.target.command)
            real = [c for c in feed if resource is not None and c.resource == resource.arn]
            decoys = [c for c in feed if c not in real]
            assert len(real) == (0 if resource is None else 1)
            onset = issue.target.alarm_at
            for change in real:
                assert timedelta(minutes=5) <= onset - change.timestamp <= timedelta(minutes=20)
            available = {r.service for r in ACCOUNT_RESOURCES} & {
                n.name for n in scenario.graph.nodes
            }
            others = available - {issue.target.root_cause, resource and resource.service}
            assert min(3, len(others)) <= len(decoys) <= 5
            for change in decoys:
                assert change.service not in (issue.target.root_cause, None)
                assert change.service in others
                assert timedelta(0) < issue.target.alarm_at - change.timestamp <= timedelta(hours=2)
            assert [c.change_id for c in feed] == [f"ct-{i:03d}" for i in range(1, len(feed) + 1)]
            assert [c.timestamp for c in feed] == sorted(c.timestamp for c in feed)


def test_change_feed_is_seeded_and_reaches_the_tools(root: Path) -> None:
    scenario = load_dataset(root / "low_traffic")[0]
    issue = scenario.issues[0]
    one = issue_case(scenario, issue, changes=True, seed=3)
    again = issue_case(scenario, issue, changes=True, seed=3)
    other = issue_case(scenario, issue, changes=True, seed=4)

    def feed(case: object) -> list[dict[str, object]]:
        tools = case.tools  # type: ignore[attr-defined]
        return [
            *tools.list_deployments(*FAR).data["changes"],
            *tools.list_config_changes(*FAR).data["changes"],
        ]

    assert feed(one) == feed(again)
    assert feed(one) != feed(other)
    assert one.key.changes and not issue_case(scenario, issue).key.changes
    assert feed(issue_case(scenario, issue)) == []


def test_decoys_only_use_tagged_resources_of_services_in_the_graph() -> None:
    graph = ServiceGraph((GraphNode(b.SEARCH), GraphNode(b.PAY)))
    for seed in range(10):
        decoys = decoy_changes(graph, {b.SEARCH}, FAR[1], random.Random(seed))
        assert decoys and {c.service for c in decoys} == {b.PAY}
    assert decoy_changes(graph, {b.SEARCH, b.PAY}, FAR[1], random.Random(0)) == []
