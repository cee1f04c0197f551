"""The opx command on the DynamoDB home (OPX_STORE=dynamodb) against dynalite: analyze, the
stored result on a repeat, replay, and a clear failure when a table is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from opx.durability.dynamodb import create_table
from opx.durability.dynamodb_executions import create_results_table
from opx.durability.dynamodb_local import local_client
from tests.observability.test_emf import emf_lines

ROOT = Path(__file__).resolve().parents[2]
EVENT = ROOT / "examples" / "slow-dependency" / "event.json"


def opx(
    endpoint: str,
    tables: tuple[str, str],
    *args: str,
    endpoint_variable: str = "AWS_ENDPOINT_URL_DYNAMODB",
) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")},
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        endpoint_variable: endpoint,
        "OPX_STORE": "dynamodb",
        "OPX_CHECKPOINT_TABLE": tables[0],
        "OPX_RESULTS_TABLE": tables[1],
    }
    return subprocess.run(
        [sys.executable, "-m", "opx.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )


def test_analyze_repeat_and_replay_on_dynamodb(dynalite_endpoint: str, tmp_path: Path) -> None:
    client = local_client(dynalite_endpoint)
    tables = ("opx-cli-checkpoints", "opx-cli-executions")
    create_table(client, tables[0])
    create_results_table(client, tables[1])
    first = opx(dynalite_endpoint, tables, "analyze", str(EVENT), "--json")
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["status"] == "COMPLETED"
    again = opx(dynalite_endpoint, tables, "analyze", str(EVENT), "--json")
    assert again.stdout == first.stdout and "stored result" in again.stderr
    replayed = opx(dynalite_endpoint, tables, "replay", result["execution_id"], "--json")
    assert replayed.returncode == 0, replayed.stderr
    verdict = json.loads(replayed.stdout)
    assert verdict["identical"] is True and verdict["external_calls"] == 0
    (metric,) = emf_lines(replayed.stderr)
    assert metric["Replay/Count"] == 1 and metric["identical"] is True
    listed = opx(dynalite_endpoint, tables, "checkpoints", result["execution_id"], "--json")
    assert listed.returncode == 0, listed.stderr
    steps = json.loads(listed.stdout)["checkpoints"]
    assert steps[-1]["next"] == [] and len(steps[-1]["agents_done"]) == 6
    shown = opx(dynalite_endpoint, tables, "executions", "show", result["execution_id"], "--json")
    assert json.loads(shown.stdout) == result
    executions = json.loads(opx(dynalite_endpoint, tables, "executions", "list", "--json").stdout)
    assert [e["execution_id"] for e in executions] == [result["execution_id"]]


def test_a_missing_table_is_an_infrastructure_failure(dynalite_endpoint: str) -> None:
    done = opx(dynalite_endpoint, ("opx-nope-cp", "opx-nope-ex"), "analyze", str(EVENT))
    assert done.returncode == 3
    assert "opx-nope-ex does not exist" in done.stderr and "Traceback" not in done.stderr


def test_a_missing_checkpoint_table_is_named_too(dynalite_endpoint: str) -> None:
    # The generic AWS_ENDPOINT_URL reaches DynamoDB as well as the service-specific variable.
    tables = ("opx-nope-cp2", "opx-cli-executions-2")
    create_results_table(local_client(dynalite_endpoint), tables[1])
    done = opx(
        dynalite_endpoint, tables, "checkpoints", "0" * 32, endpoint_variable="AWS_ENDPOINT_URL"
    )
    assert done.returncode == 3 and done.stdout == ""
    assert "opx-nope-cp2 does not exist" in done.stderr and "Traceback" not in done.stderr
