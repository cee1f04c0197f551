"""Crash tests: a real execution in a subprocess is killed with SIGKILL at every node boundary and
while parallel agents are half done; delivering the event again after the lease expired finishes
with the result of an uninterrupted run, and no agent that had finished runs again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from opx.agents.roster import ALL_AGENTS, CORE_AGENTS, KNOWLEDGE
from tests.durability.crash_driver import HELD

ROOT = Path(__file__).resolve().parents[2]
EVENT = ROOT / "examples" / "bad-deployment" / "event.json"
LEASE_S = 900
# Graph steps as checkpointed: -1 input, 0 entry, 1 budget check, 2 the core agents, 3 the core
# gate, 4 knowledge, 5 response, 6 consensus, 7 cost guardian, 8 finalize, 9 the end.
STEPS = [f"step:{n}" for n in range(-1, 10)]
# The agents done before the checkpoint of each step was saved.
DONE_BY_STEP: dict[int, tuple[str, ...]] = {
    **dict.fromkeys(range(-1, 3), ()),
    3: CORE_AGENTS,
    4: CORE_AGENTS,
    5: (*CORE_AGENTS, KNOWLEDGE),
    **dict.fromkeys(range(6, 10), ALL_AGENTS),
}


def drive(
    data_dir: Path, calls: Path, *, kill: str | None = None, later: float = 0.0
) -> subprocess.CompletedProcess[str]:
    args = [
        sys.executable,
        "-m",
        "tests.durability.crash_driver",
        str(EVENT),
        "--data-dir",
        str(data_dir),
        "--calls",
        str(calls),
        "--later",
        str(later),
    ]
    if kill:
        args += ["--kill", kill]
    env = {**os.environ, "OPX_LEASE_SECONDS": str(LEASE_S), "AWS_EC2_METADATA_DISABLED": "true"}
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def outcome(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "timings"}


def calls_by_pid(calls: Path) -> list[tuple[str, str, str]]:
    lines = calls.read_text().splitlines() if calls.exists() else []
    return [(pid, what, agent) for pid, what, agent in (line.split() for line in lines)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("uninterrupted")
    run = outcome(drive(base / "data", base / "calls.txt"))
    assert run["result"]["status"] == "COMPLETED" and not run["resumed"]
    finished = Counter(a for _, what, a in calls_by_pid(base / "calls.txt") if what == "finish")
    assert finished == dict.fromkeys(ALL_AGENTS, 1)
    return dict(run["result"])


def crash_then_redeliver(tmp_path: Path, kill: str) -> tuple[dict[str, Any], Path]:
    data, calls = tmp_path / "data", tmp_path / "calls.txt"
    killed = drive(data, calls, kill=kill)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert killed.stdout == ""
    return outcome(drive(data, calls, later=LEASE_S + 1)), calls


@pytest.mark.parametrize("kill", ["before-first", *STEPS])
def test_a_kill_at_a_node_boundary_resumes_to_the_same_result(
    kill: str, tmp_path: Path, uninterrupted: dict[str, Any]
) -> None:
    redelivered, calls = crash_then_redeliver(tmp_path, kill)
    assert comparable(redelivered["result"]) == comparable(uninterrupted)
    assert redelivered["attempt"] == 1 and not redelivered["reused"]
    assert redelivered["resumed"] == (kill != "before-first")
    log = calls_by_pid(calls)
    finished = Counter(agent for _, what, agent in log if what == "finish")
    assert finished == dict.fromkeys(ALL_AGENTS, 1), log  # no agent finished twice
    done_before = set() if kill == "before-first" else set(DONE_BY_STEP[int(kill[5:])])
    resumed_pid = str(redelivered["pid"])
    for agent in ALL_AGENTS:
        runs = [pid for pid, what, a in log if a == agent and what == "start"]
        assert len(runs) == 1, (agent, log)  # each agent started once, killed run or resumed
        assert (runs[0] != resumed_pid) == (agent in done_before), (agent, log)


def test_a_kill_while_parallel_agents_are_half_done_reruns_only_the_unfinished(
    tmp_path: Path, uninterrupted: dict[str, Any]
) -> None:
    data, calls = tmp_path / "data", tmp_path / "calls.txt"
    killed = drive(data, calls, kill="half")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # Before the dead holder's lease expires, a delivery is told the execution is in progress.
    early = outcome(drive(data, calls))
    assert (early["result"]["status"], early["result"]["reason"]) == ("IN_PROGRESS", "LEASE_HELD")
    redelivered = outcome(drive(data, calls, later=LEASE_S + 1))
    assert redelivered["resumed"] and redelivered["attempt"] == 1
    assert comparable(redelivered["result"]) == comparable(uninterrupted)
    log = calls_by_pid(calls)
    resumed_pid = str(redelivered["pid"])
    finished = Counter(agent for _, what, agent in log if what == "finish")
    assert finished == dict.fromkeys(ALL_AGENTS, 1), log
    finished_before = {a for pid, what, a in log if pid != resumed_pid and what == "finish"}
    assert finished_before == set(CORE_AGENTS) - set(HELD)
    rerun = {a for pid, what, a in log if pid == resumed_pid and what == "start"}
    assert rerun == set(ALL_AGENTS) - finished_before
    # And the execution is stored: one more delivery returns it unchanged, running nothing.
    again = outcome(drive(data, calls))
    assert again["reused"] and again["result"] == redelivered["result"]
    assert len(calls_by_pid(calls)) == len(log)
