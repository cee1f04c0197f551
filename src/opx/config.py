"""Every OPX setting, read from environment variables with sensible defaults.

The README lists each variable. Settings are read once per command or invocation and passed down
explicitly; nothing reads the environment elsewhere.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from opx.agents.roster import ROSTER


class ConfigError(ValueError):
    """A setting has a value OPX cannot use; the message names the variable."""


def env_name(agent_id: str) -> str:
    """An agent id as it stands in a variable name: ``knowledge-rag`` → ``KNOWLEDGE_RAG``."""
    return agent_id.upper().replace("-", "_")


@dataclass(frozen=True)
class BedrockAgentRef:
    """A deployed Bedrock agent and the alias to invoke (``<agentId>/<aliasId>``)."""

    agent_id: str
    alias_id: str


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build it with :func:`load_settings`."""

    data_dir: Path
    store_backend: str = "sqlite"
    telemetry_backend: str = "bundle"
    # The tools Lambda (name or ARN) that ``OPX_TELEMETRY=lambda`` reads telemetry through.
    tools_function: str | None = None
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
    # Reasoning: a backend per agent (``local`` or ``bedrock``) and, for Bedrock, which agent.
    agent_backends: Mapping[str, str] = field(default_factory=dict)
    bedrock_agents: Mapping[str, BedrockAgentRef] = field(default_factory=dict)
    bedrock_deadline_s: float = 90.0
    # The model the Bedrock agents were deployed with: prices the budget check before any call.
    bedrock_model: str | None = None
    # Kill switch: SSM parameter names (Lambda) and the local variable's agent set.
    kill_switch_source: str = "env"
    kill_switch_parameter: str = "/opx/kill-switch"
    kill_switch_agent_path: str = "/opx/kill-switch/"
    kill_switch_local: frozenset[str] = frozenset()
    # Lambda: time kept back from the invocation's remaining time to store and publish.
    deadline_margin_s: float = 20.0
    metrics_namespace: str = "Phase6"

    def backend_for(self, agent_id: str) -> str:
        """``local`` or ``bedrock``: the per-agent override, else ``OPX_AGENT_BACKEND``."""
        return self.agent_backends.get(agent_id, self.agent_backend)

    def deadline_for(self, agent_id: str) -> float:
        """``OPX_DEADLINE_<AGENT>_S`` if set; else the Bedrock deadline for an agent on Bedrock
        (a model round trip takes far longer than a local analyst), else the roster's."""
        if agent_id in self.agent_deadlines_s:
            return self.agent_deadlines_s[agent_id]
        if self.backend_for(agent_id) == "bedrock":
            return self.bedrock_deadline_s
        return ROSTER[agent_id].deadline_s

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
        name = f"OPX_DEADLINE_{env_name(agent_id)}_S"
        if env.get(name):
            out[agent_id] = _float(env, name, ROSTER[agent_id].deadline_s, low=0.001)
    return out


_BEDROCK_ID = re.compile(r"^[0-9A-Za-z]{10}$")
KILL_ALL = "all"


def _agent_backends(env: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for agent_id in ROSTER:
        name = f"OPX_AGENT_BACKEND_{env_name(agent_id)}"
        if env.get(name):
            out[agent_id] = _choice(env, name, "local", ("local", "bedrock"))
    return out


def _bedrock_agents(env: Mapping[str, str]) -> dict[str, BedrockAgentRef]:
    out: dict[str, BedrockAgentRef] = {}
    for agent_id in ROSTER:
        name = f"OPX_BEDROCK_AGENT_{env_name(agent_id)}"
        raw = env.get(name)
        if not raw:
            continue
        agent, _, alias = raw.partition("/")
        if not (_BEDROCK_ID.match(agent) and _BEDROCK_ID.match(alias)):
            raise ConfigError(
                f"{name}={raw!r} must be <agentId>/<aliasId>, each 10 letters or digits"
            )
        out[agent_id] = BedrockAgentRef(agent, alias)
    return out


def _kill_switch(env: Mapping[str, str]) -> frozenset[str]:
    raw = (env.get("OPX_KILL_SWITCH") or "").strip()
    if not raw:
        return frozenset()
    names = {part.strip() for part in raw.split(",") if part.strip()}
    if KILL_ALL in names:
        return frozenset({KILL_ALL})
    unknown = sorted(names - set(ROSTER))
    if unknown:
        raise ConfigError(
            f"OPX_KILL_SWITCH names unknown agents {', '.join(unknown)}; use 'all' or some of "
            + ", ".join(sorted(ROSTER))
        )
    return frozenset(names)


def _parameter_name(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name) or default
    if not value.startswith("/") or " " in value:
        raise ConfigError(f"{name}={value!r} must be an SSM parameter path starting with '/'")
    return value


# Lambda's own FunctionName forms: a name, a partial ARN (account:function:name) or a full ARN;
# an optional version or alias qualifier follows the name.
_FUNCTION = re.compile(
    r"^(arn:aws[a-zA-Z-]*:lambda:[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d:)?(\d{12}:)?(function:)?"
    r"[a-zA-Z0-9_.-]{1,64}(:(\$LATEST|[a-zA-Z0-9_-]+))?$"
)


def _telemetry(env: Mapping[str, str]) -> tuple[str, str | None]:
    """``OPX_TELEMETRY`` and, for ``lambda``, the ``OPX_TOOLS_FUNCTION`` it needs."""
    backend = _choice(env, "OPX_TELEMETRY", "bundle", ("bundle", "aws", "lambda"))
    function = (env.get("OPX_TOOLS_FUNCTION") or "").strip() or None
    if function is not None and (len(function) > 256 or not _FUNCTION.match(function)):
        raise ConfigError(f"OPX_TOOLS_FUNCTION={function!r} must be a Lambda function name or ARN")
    if backend == "lambda" and function is None:
        raise ConfigError(
            "OPX_TELEMETRY=lambda needs OPX_TOOLS_FUNCTION (the tools Lambda's name or ARN)"
        )
    return backend, function


def load_settings(env: Mapping[str, str] | None = None, data_dir: Path | None = None) -> Settings:
    """Read settings from ``env`` (default: the process environment); ``data_dir`` wins if given."""
    env = os.environ if env is None else env
    resolved_dir = data_dir or Path(env.get("OPX_DATA_DIR") or Path.home() / ".opx")
    attempts = _float(env, "OPX_RETRY_MAX_ATTEMPTS", 3, low=1, high=10)
    if attempts != int(attempts):
        raise ConfigError(f"OPX_RETRY_MAX_ATTEMPTS={attempts} must be a whole number")
    telemetry_backend, tools_function = _telemetry(env)
    return Settings(
        data_dir=resolved_dir.expanduser(),
        store_backend=_choice(env, "OPX_STORE", "sqlite", ("sqlite", "dynamodb")),
        telemetry_backend=telemetry_backend,
        tools_function=tools_function,
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
        agent_backends=_agent_backends(env),
        bedrock_agents=_bedrock_agents(env),
        bedrock_deadline_s=_float(env, "OPX_BEDROCK_DEADLINE_S", 90.0, low=0.001),
        bedrock_model=env.get("OPX_BEDROCK_MODEL") or None,
        kill_switch_source=_choice(env, "OPX_KILL_SWITCH_SOURCE", "env", ("env", "ssm")),
        kill_switch_parameter=_parameter_name(env, "OPX_KILL_SWITCH_PARAMETER", "/opx/kill-switch"),
        kill_switch_agent_path=_parameter_name(
            env, "OPX_KILL_SWITCH_AGENT_PATH", "/opx/kill-switch/"
        ),
        kill_switch_local=_kill_switch(env),
        deadline_margin_s=_float(env, "OPX_DEADLINE_MARGIN_S", 20.0, high=600.0),
        metrics_namespace=_metrics_namespace(env),
    )


def _metrics_namespace(env: Mapping[str, str]) -> str:
    value = env.get("OPX_METRICS_NAMESPACE") or "Phase6"
    # CloudWatch: 1-255 characters, no leading colon, printable ASCII.
    if len(value) > 255 or value.startswith(":") or not value.isprintable() or not value.isascii():
        raise ConfigError(f"OPX_METRICS_NAMESPACE={value!r} is not a valid CloudWatch namespace")
    return value
