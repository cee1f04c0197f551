"""Deployment settings, read from CDK context (``cdk deploy -c key=value`` or cdk.json), with
defaults that synthesise without an AWS account. Pure: no CDK imports."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from opx.config import load_settings

# Cross-region inference profiles are named by a geography prefix before the model id.
_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")


class SettingsError(ValueError):
    """A context value the app cannot use; the message names the key."""


@dataclass(frozen=True)
class InfraSettings:
    """What a deployment may choose. Table, bus, parameter and namespace names default to the
    runtime's own defaults (opx.config), so both sides agree without repeating them."""

    stage: str = "dev"
    checkpoint_table: str = "opx-langgraph-checkpoints"
    results_table: str = "opx-executions"
    event_bus: str = "opx-analysis"
    metrics_namespace: str = "Phase6"
    kill_switch_parameter: str = "/opx/kill-switch"
    kill_switch_agent_path: str = "/opx/kill-switch/"
    foundation_model: str = "anthropic.claude-3-5-sonnet-20241022-v2:0"
    # The plan's figure; Bedrock-backed runs take longer, so deployments may raise it.
    duration_alarm_s: float = 60.0
    failure_rate_percent: float = 10.0
    retries_per_execution: float = 5.0
    cost_per_hour_usd: float = 10.0
    alarm_email: str | None = None
    # The action groups' AWS telemetry settings (a TOML file, docs/aws-mapping.md): shipped with
    # the tools Lambda; its history tables and knowledge base scope the tools' read grants.
    aws_config: str | None = None
    alarm_trigger: bool = False
    executor_concurrency: int = 10
    # Each execution calls the tools a few hundred times, up to four agents at once, and the
    # Bedrock agents call them too: 10 executors need far more than 20 concurrent tools.
    tools_concurrency: int = 60

    @property
    def production(self) -> bool:
        return self.stage == "prod"

    @property
    def uses_inference_profile(self) -> bool:
        return self.foundation_model.startswith(_PROFILE_PREFIXES)

    @property
    def base_model(self) -> str:
        """The foundation model id without an inference-profile geography prefix."""
        if self.uses_inference_profile:
            return self.foundation_model.split(".", 1)[1]
        return self.foundation_model


Lookup = Callable[[str], object]


def from_context(lookup: Lookup) -> InfraSettings:
    """Settings from CDK context values (``lookup`` returns None for an unset key)."""
    runtime = load_settings(env={}, data_dir=None)
    base = InfraSettings(
        checkpoint_table=runtime.checkpoint_table,
        results_table=runtime.results_table,
        event_bus=runtime.event_bus,
        metrics_namespace=runtime.metrics_namespace,
        kill_switch_parameter=runtime.kill_switch_parameter,
        kill_switch_agent_path=runtime.kill_switch_agent_path,
    )
    text = _Reader(lookup)
    stage = text.choice("opx:stage", base.stage, ("dev", "prod"))
    return InfraSettings(
        stage=stage,
        checkpoint_table=base.checkpoint_table,
        results_table=base.results_table,
        event_bus=text.string("opx:event_bus", base.event_bus),
        metrics_namespace=text.string("opx:metrics_namespace", base.metrics_namespace),
        kill_switch_parameter=base.kill_switch_parameter,
        kill_switch_agent_path=base.kill_switch_agent_path,
        foundation_model=text.string("opx:foundation_model", base.foundation_model),
        duration_alarm_s=text.number("opx:duration_alarm_s", base.duration_alarm_s, 1, 900),
        failure_rate_percent=text.number(
            "opx:failure_rate_percent", base.failure_rate_percent, 0, 100
        ),
        retries_per_execution=text.number(
            "opx:retries_per_execution", base.retries_per_execution, 0, 1000
        ),
        cost_per_hour_usd=text.number("opx:cost_per_hour_usd", base.cost_per_hour_usd, 0, 1e6),
        alarm_email=text.optional("opx:alarm_email"),
        aws_config=text.optional("opx:aws_config"),
        alarm_trigger=text.flag("opx:alarm_trigger"),
        executor_concurrency=int(
            text.number("opx:executor_concurrency", base.executor_concurrency, 1, 1000)
        ),
        tools_concurrency=int(
            text.number("opx:tools_concurrency", base.tools_concurrency, 1, 1000)
        ),
    )


@dataclass(frozen=True)
class _Reader:
    lookup: Lookup

    def optional(self, key: str) -> str | None:
        value = self.lookup(key)
        if value is None or value == "":
            return None
        return str(value)

    def string(self, key: str, default: str) -> str:
        return self.optional(key) or default

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.string(key, default)
        if value not in allowed:
            raise SettingsError(f"{key}={value!r} must be one of {', '.join(allowed)}")
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        raw = self.optional(key)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{key}={raw!r} is not a number") from None
        if not low <= value <= high:
            raise SettingsError(f"{key}={raw!r} must be between {low:g} and {high:g}")
        return value

    def flag(self, key: str) -> bool:
        raw = self.lookup(key)
        if raw is None or raw == "" or raw is False:
            return False
        if raw is True or str(raw).lower() in ("true", "1", "yes"):
            return True
        if str(raw).lower() in ("false", "0", "no"):
            return False
        raise SettingsError(f"{key}={raw!r} must be true or false")


def context_lookup(values: Mapping[str, object]) -> Lookup:
    """A lookup over a plain mapping (tests and tools)."""
    return values.get
