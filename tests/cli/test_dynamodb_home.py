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

ROOT = Path(__file__).resolve().parents[2]
EVENT = ROOT / "examples" / "slow-dependency" / "event.json"


def opx(endpoint: str, tables: tuple[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "OPX_STORE": "dynamodb",
        "OPX_CHECKPOINT_TABLE": tables[0],
        "OPX_RESULTS_TABLE": tables[1],
    }
    return subprocess.run([sys.executable, "-m", "opx.cli", *args], capture_output=True,
                          text=True, env=env, timeout=180, check=False)


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
    listed = opx(dynalite_endpoint, tables, "checkpoints", result["execution_id"], "--json")
    assert listed.returncode == 0, listed.stderr


def test_a_missing_table_is_an_infrastructure_failure(dynalite_endpoint: str) -> None:
    done = opx(dynalite_endpoint, ("opx-nope-cp", "opx-nope-ex"), "analyze", str(EVENT))
    assert done.returncode == 3
    assert "opx-nope-ex does not exist" in done.stderr and "Traceback" not in done.stderr
