"""opx replay, opx checkpoints and opx analyze --force as a user runs them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import EXAMPLE, opx
from tests.observability.test_emf import emf_lines

REPLAY_KEYS = {"execution_id", "identical", "differences", "external_calls"}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A data directory holding one analysed example, and its result."""
    data_dir = tmp_path_factory.mktemp("analysed") / "data"
    done = opx("analyze", str(EXAMPLE / "event.json"), "--json", data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    return data_dir, json.loads(done.stdout)


def copy_of(analysed: tuple[Path, dict[str, Any]], tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(analysed[0], target)
    return target


def test_replay_json_is_identical_with_zero_external_calls(
    analysed: tuple[Path, dict[str, Any]],
) -> None:
    data_dir, result = analysed
    done = opx("replay", result["execution_id"], "--json", data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == REPLAY_KEYS
    assert report == {
        "execution_id": result["execution_id"],
        "identical": True,
        "differences": [],
        "external_calls": 0,
    }
    # stderr carries one line only: the Replay/Count metric in Embedded Metric Format.
    (metric,) = emf_lines(done.stderr)
    assert done.stderr == json.dumps(metric, separators=(",", ":"), sort_keys=True) + "\n"
    assert metric["Replay/Count"] == 1 and metric["identical"] is True
    (directive,) = metric["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Phase6"
    assert directive["Metrics"] == [{"Name": "Replay/Count", "Unit": "Count"}]
    assert directive["Dimensions"] == [[]]
    human = opx("replay", result["execution_id"], data_dir=data_dir)
    assert human.returncode == 0 and "IDENTICAL" in human.stdout
    assert len(emf_lines(human.stderr)) == 1 and len(human.stderr.splitlines()) == 1


def test_replay_under_other_settings_exits_1_with_the_differences(
    analysed: tuple[Path, dict[str, Any]],
) -> None:
    data_dir, result = analysed
    done = opx(
        "replay",
        result["execution_id"],
        "--json",
        data_dir=data_dir,
        env={"OPX_CONFIDENCE_THRESHOLD": "0.99"},
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["identical"] is False and report["external_calls"] == 0
    threshold = next(d for d in report["differences"] if d["path"] == "consensus.threshold")
    assert (threshold["original"], threshold["replayed"]) == (0.45, 0.99)
    human = opx(
        "replay",
        result["execution_id"],
        data_dir=data_dir,
        env={"OPX_CONFIDENCE_THRESHOLD": "0.99"},
    )
    assert human.returncode == 1 and "DIFFERENT" in human.stdout
    (metric,) = emf_lines(human.stderr)
    assert metric["Replay/Count"] == 1 and metric["identical"] is False


@pytest.mark.parametrize(
    "args",
    [
        ("replay", "0" * 32),
        ("replay", "{id}", "--attempt", "2"),
        ("checkpoints", "0" * 32),
        ("checkpoints", "{id}", "--attempt", "9"),
        ("replay", "{id}", "--rerun", "--bundle", "/nonexistent/bundle"),
    ],
)
def test_unknown_ids_attempts_and_bundles_exit_2(
    args: tuple[str, ...], analysed: tuple[Path, dict[str, Any]]
) -> None:
    data_dir, result = analysed
    argv = [a.format(id=result["execution_id"]) for a in args]
    done = opx(*argv, "--json", data_dir=data_dir)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("opx: "), done.stderr


def test_rerun_calls_the_agents_on_the_recorded_bundle(
    analysed: tuple[Path, dict[str, Any]],
) -> None:
    data_dir, result = analysed
    done = opx("replay", result["execution_id"], "--rerun", "--json", data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["identical"] is True and report["external_calls"] > 6


def test_checkpoints_list_the_steps_of_the_latest_attempt(
    analysed: tuple[Path, dict[str, Any]],
) -> None:
    data_dir, result = analysed
    done = opx("checkpoints", result["execution_id"], "--json", data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert (listing["attempt"], listing["thread_id"]) == (1, result["execution_id"])
    steps = [c["step"] for c in listing["checkpoints"]]
    assert steps == list(range(-1, 10))
    assert listing["checkpoints"][-1]["next"] == []
    assert len(listing["checkpoints"][-1]["agents_done"]) == 6
    human = opx("checkpoints", result["execution_id"], data_dir=data_dir)
    assert human.returncode == 0 and "core_gate" in human.stdout


def test_force_runs_a_new_attempt_that_replay_and_checkpoints_pick(
    analysed: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    data_dir = copy_of(analysed, tmp_path)
    execution_id = analysed[1]["execution_id"]
    repeat = opx("analyze", str(EXAMPLE / "event.json"), "--json", data_dir=data_dir)
    assert "already finished" in repeat.stderr
    assert json.loads(repeat.stdout) == analysed[1]
    forced = opx("analyze", str(EXAMPLE / "event.json"), "--force", "--json", data_dir=data_dir)
    assert forced.returncode == 0 and "already finished" not in forced.stderr
    result = json.loads(forced.stdout)
    strip = ("timings",)
    assert {k: v for k, v in result.items() if k not in strip} == {
        k: v for k, v in analysed[1].items() if k not in strip
    }
    listing = json.loads(opx("checkpoints", execution_id, "--json", data_dir=data_dir).stdout)
    assert (listing["attempt"], listing["thread_id"]) == (2, f"{execution_id}#2")
    first = json.loads(
        opx("checkpoints", execution_id, "--attempt", "1", "--json", data_dir=data_dir).stdout
    )
    assert first["thread_id"] == execution_id
    for attempt in ("1", "2"):
        replayed = opx("replay", execution_id, "--attempt", attempt, "--json", data_dir=data_dir)
        assert replayed.returncode == 0 and json.loads(replayed.stdout)["identical"] is True
    listed = json.loads(opx("executions", "list", "--json", data_dir=data_dir).stdout)
    assert [e["attempt"] for e in listed] == [2]


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("replay", ["--attempt", "--rerun", "--bundle", "--json", "identical"]),
        ("checkpoints", ["--attempt", "--json"]),
        ("analyze", ["--force"]),
    ],
)
def test_help_teaches_the_new_options(command: str, words: list[str], tmp_path: Path) -> None:
    done = opx(command, "--help", data_dir=tmp_path)
    assert done.returncode == 0
    for word in words:
        assert word in done.stdout, word
