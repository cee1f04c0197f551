"""Settings from the environment: defaults, overrides and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from opx.config import ConfigError, load_settings


def test_defaults(tmp_path: Path) -> None:
    s = load_settings({}, data_dir=tmp_path)
    assert s.data_dir == tmp_path and s.store_backend == "sqlite"
    assert s.deadline_for("signal-intelligence") == 30.0
    assert s.deadline_for("knowledge-rag") == 15.0
    assert s.checkpoint_table == "opx-langgraph-checkpoints"


def test_overrides() -> None:
    s = load_settings(
        {
            "OPX_DATA_DIR": "/tmp/x",
            "OPX_CONFIDENCE_THRESHOLD": "0.6",
            "OPX_DEADLINE_SIGNAL_INTELLIGENCE_S": "5",
            "OPX_RETRY_MAX_ATTEMPTS": "2",
        }
    )
    assert str(s.data_dir) == "/tmp/x" and s.confidence_threshold == 0.6
    assert s.deadline_for("signal-intelligence") == 5.0 and s.retry_max_attempts == 2


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"OPX_CONFIDENCE_THRESHOLD": "high"}, "not a number"),
        ({"OPX_CONFIDENCE_THRESHOLD": "1.5"}, "between"),
        ({"OPX_RETRY_MAX_ATTEMPTS": "2.5"}, "whole number"),
        ({"OPX_STORE": "postgres"}, "one of"),
        ({"OPX_DEADLINE_RISK_BLAST_RADIUS_S": "0"}, "OPX_DEADLINE_RISK_BLAST_RADIUS_S"),
        ({"OPX_LEASE_SECONDS": "nan"}, "OPX_LEASE_SECONDS"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_settings(env)
