"""Every OPX setting, read from environment variables with sensible defaults.

The README lists each variable. Settings are read once per command or invocation and passed down
explicitly; nothing reads the environment elsewhere.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from opx.agents.roster import ROSTER


class ConfigError(ValueError):
    """A setting has a value OPX cannot use; the message names the variable."""


def _env_name(agent_id: str) -> str:
    return agent_id.upper().replace("-", "_")


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build it with :func:`load_settings`."""

    data_dir: Path
    store_backend: str = "sqlite"
    telemetry_backend: str = "bundle"
    agent_backend: str = "local"
    checkpoint_table: str = "opx-langgraph-checkpoints"
    results_table: str = "opx-executions"
    event_bus: str = "opx-analysis"
    summary_topic_arn: str | None = None
    confidence_threshold: float = 0.45
    retry_max_attempts: int = 3
    retry_base_delay_s: float = 1.0
    agent_deadlines_s: Mapping[str, float] = field(default_factory=dict)
    lease_seconds: float = 900.0
    baseline_lookback_hours: float = 24.0
    incidents_per_day: float = 10.0
    budget_warn_ratio: float = 0.8

    def deadline_for(self, agent_id: str) -> float:
        return self.agent_deadlines_s.get(agent_id, ROSTER[agent_id].deadline_s)

    @property
    def checkpoint_db(self) -> Path:
        return self.data_dir / "checkpoints.sqlite"

    @property
    def executions_db(self) -> Path:
        return self.data_dir / "executions.sqlite"


def _float(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    low: float = 0.0,
    high: float | None = None,
) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if math.isnan(value) or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name}={raw!r} must be {bound}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name) or default
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} must be one of {', '.join(allowed)}")
    return value


def _deadlines(env: Mapping[str, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for agent_id in ROSTER:
        name = f"OPX_DEADLINE_{_env_name(agent_id)}_S"
        if env.get(name):
            out[agent_id] = _float(env, name, ROSTER[agent_id].deadline_s, low=0.001)
    return out


def load_settings(env: Mapping[str, str] | None = None, data_dir: Path | None = None) -> Settings:
    """Read settings from ``env`` (default: the process environment); ``data_dir`` wins if given."""
    env = os.environ if env is None else env
    resolved_dir = data_dir or Path(env.get("OPX_DATA_DIR") or Path.home() / ".opx")
    attempts = _float(env, "OPX_RETRY_MAX_ATTEMPTS", 3, low=1, high=10)
    if attempts != int(attempts):
        raise ConfigError(f"OPX_RETRY_MAX_ATTEMPTS={attempts} must be a whole number")
    return Settings(
        data_dir=resolved_dir.expanduser(),
        store_backend=_choice(env, "OPX_STORE", "sqlite", ("sqlite", "dynamodb")),
        telemetry_backend=_choice(env, "OPX_TELEMETRY", "bundle", ("bundle", "aws")),
        agent_backend=_choice(env, "OPX_AGENT_BACKEND", "local", ("local", "bedrock")),
        checkpoint_table=env.get("OPX_CHECKPOINT_TABLE") or "opx-langgraph-checkpoints",
        results_table=env.get("OPX_RESULTS_TABLE") or "opx-executions",
        event_bus=env.get("OPX_EVENT_BUS") or "opx-analysis",
        summary_topic_arn=env.get("OPX_SUMMARY_TOPIC_ARN") or None,
        confidence_threshold=_float(env, "OPX_CONFIDENCE_THRESHOLD", 0.45, high=1.0),
        retry_max_attempts=int(attempts),
        retry_base_delay_s=_float(env, "OPX_RETRY_BASE_DELAY_S", 1.0, high=60.0),
        agent_deadlines_s=_deadlines(env),
        lease_seconds=_float(env, "OPX_LEASE_SECONDS", 900.0, low=1.0),
        baseline_lookback_hours=_float(env, "OPX_BASELINE_LOOKBACK_HOURS", 24.0, low=0.1),
        incidents_per_day=_float(env, "OPX_INCIDENTS_PER_DAY", 10.0),
        budget_warn_ratio=_float(env, "OPX_BUDGET_WARN_RATIO", 0.8, high=1.0),
    )
