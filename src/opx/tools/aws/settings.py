"""Settings of the AWS telemetry source, read from a TOML file (docs/aws-mapping.md): the service
mapping, deadlines, bounds, the incident-history tables and the knowledge base."""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from opx.security.redaction import DEFAULT_KEY
from opx.tools.aws.clients import region_from
from opx.tools.aws.deadline import Deadlines
from opx.tools.aws.mapping import (
    DEFAULT_LOG_GROUPS,
    DEFAULT_METRICS,
    DEFAULT_NAMING,
    DEFAULT_TAG_KEYS,
    LOG_GROUP_NAME,
    MappingError,
    MetricStat,
    MetricTemplate,
    ServiceEntry,
    ServiceMapping,
)

CONFIG_ENV = "OPX_AWS_CONFIG"
REDACTION_KEY_ENV = "OPX_REDACTION_KEY"
LOG_MODES = ("filter", "insights")
DIRECTIONS = ("up", "down", "both")
KNOWLEDGE_BASE_ID = re.compile(r"[0-9A-Za-z]{10}")


@dataclass(frozen=True)
class Limits:
    """How much one tool call reads from AWS at most; more is dropped and marked truncated."""

    max_pages: int = 10
    max_log_events: int = 1000
    max_traces: int = 25
    max_changes: int = 500
    max_services: int = 50
    metric_period_s: int = 60


@dataclass(frozen=True)
class HistoryTables:
    """Where past incidents live (DynamoDB). ``service_index`` has the service as partition key
    and ``opened_at`` as sort key; ``recent_index`` has ``recent_key`` (an attribute holding a
    constant) as partition key and ``opened_at`` as sort key."""

    incidents_table: str | None = None
    service_index: str | None = "service-opened_at"
    root_cause_index: str | None = None
    recent_index: str | None = None
    recent_key: tuple[str, str] = ("record_type", "INCIDENT")
    resolutions_table: str | None = None

    @property
    def tables(self) -> tuple[str, ...]:
        names = (self.incidents_table, self.resolutions_table)
        return tuple(sorted({n for n in names if n}))


@dataclass(frozen=True)
class KnowledgeBase:
    knowledge_base_id: str | None = None
    min_score: float = 0.0
    max_results: int = 10


@dataclass(frozen=True)
class AwsSettings:
    name: str = "aws"
    mapping: ServiceMapping = field(default_factory=ServiceMapping)
    deadlines: Deadlines = field(default_factory=Deadlines)
    limits: Limits = field(default_factory=Limits)
    history: HistoryTables = field(default_factory=HistoryTables)
    knowledge: KnowledgeBase = field(default_factory=KnowledgeBase)
    logs_mode: str = "filter"
    cloudtrail_requests_per_s: float = 2.0
    graph_lookback_s: float = 3600.0
    redaction_key: bytes = DEFAULT_KEY
    # None leaves the region to the SDK's own configuration (profile, AWS_DEFAULT_REGION).
    region: str | None = None

    @property
    def source_name(self) -> str:
        return f"aws:{self.name}"


def load_aws_settings(env: Mapping[str, str], path: Path | None = None) -> AwsSettings:
    """Settings from ``path`` (or the file named by ``OPX_AWS_CONFIG``; defaults without one),
    with the redaction key from ``OPX_REDACTION_KEY`` and the region from ``AWS_REGION`` or
    ``AWS_DEFAULT_REGION``. :class:`MappingError` names a bad entry."""
    chosen = path or (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    raw: dict[str, Any] = {}
    if chosen is not None:
        try:
            raw = tomllib.loads(chosen.read_text(encoding="utf-8"))
        except (OSError, UnicodeError) as exc:
            raise MappingError(f"{chosen}: cannot be read ({exc})") from exc
        except tomllib.TOMLDecodeError as exc:
            raise MappingError(f"{chosen}: invalid TOML ({exc})") from exc
    settings = parse_settings(raw, str(chosen or "defaults"))
    key = env.get(REDACTION_KEY_ENV)
    if key:
        settings = replace(settings, redaction_key=key.encode("utf-8"))
    return replace(settings, region=region_from(env))


def parse_settings(raw: Mapping[str, Any], where: str = "settings") -> AwsSettings:
    """Settings from a parsed TOML document."""
    doc = _Table(raw, where)
    logs_mode = doc.table("logs").text("mode", "filter")
    if logs_mode not in LOG_MODES:
        raise MappingError(f"{where}: logs.mode must be one of {', '.join(LOG_MODES)}")
    cloudtrail = doc.table("cloudtrail")
    return AwsSettings(
        name=doc.text("name", "aws"),
        mapping=_mapping(doc),
        deadlines=_deadlines(doc.table("deadlines")),
        limits=_limits(doc.table("limits")),
        history=_history(doc.table("history")),
        knowledge=_knowledge(doc.table("knowledge")),
        logs_mode=logs_mode,
        cloudtrail_requests_per_s=cloudtrail.number("requests_per_s", 2.0, low=0.1, high=100),
        graph_lookback_s=doc.table("xray").number("graph_lookback_s", 3600.0, low=60, high=86400),
    )


@dataclass(frozen=True)
class _Table:
    """A TOML table with typed reads that name the key on error."""

    raw: Mapping[str, Any]
    where: str

    def _fail(self, key: str, expected: str) -> MappingError:
        return MappingError(f"{self.where}: {key} must be {expected}, got {self.raw.get(key)!r}")

    def table(self, key: str) -> _Table:
        value = self.raw.get(key, {})
        if not isinstance(value, dict):
            raise self._fail(key, "a table")
        return _Table(value, f"{self.where}: {key}")

    def tables(self, key: str) -> list[_Table]:
        value = self.raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._fail(key, "an array of tables")
        return [_Table(v, f"{self.where}: {key}[{i}]") for i, v in enumerate(value)]

    def text(self, key: str, default: str) -> str:
        value = self.raw.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self._fail(key, "a non-empty string")
        return value

    def opt_text(self, key: str, default: str | None = None) -> str | None:
        value = self.raw.get(key, default)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self._fail(key, "a string")
        return value

    def texts(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.raw.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self._fail(key, "a list of non-empty strings")
        return tuple(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value

    def number(self, key: str, default: float, *, low: float, high: float) -> float:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(key, "a number")
        if not math.isfinite(value) or not low <= value <= high:
            raise self._fail(key, f"between {low:g} and {high:g}")
        return float(value)

    def whole(self, key: str, default: int, *, low: int, high: int) -> int:
        value = self.number(key, default, low=low, high=high)
        if not value.is_integer():
            raise self._fail(key, "a whole number")
        return int(value)

    def strings(self, key: str) -> dict[str, str]:
        value = self.raw.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self._fail(key, "a table of strings")
        return {str(k): v for k, v in value.items()}


def _deadlines(doc: _Table) -> Deadlines:
    per_tool = doc.table("tools")
    tools = {k: per_tool.number(k, 0, low=0.001, high=900) for k in sorted(per_tool.raw)}
    merged = {**dict(Deadlines().per_tool), **tools}
    return Deadlines(
        request_s=doc.number("request_s", 2.0, low=0.001, high=900),
        total_s=doc.number("total_s", 5.0, low=0.001, high=900),
        per_tool=tuple(sorted(merged.items())),
    )


def _limits(doc: _Table) -> Limits:
    base = Limits()
    return Limits(
        max_pages=doc.whole("max_pages", base.max_pages, low=1, high=1000),
        max_log_events=doc.whole("max_log_events", base.max_log_events, low=1, high=100_000),
        max_traces=doc.whole("max_traces", base.max_traces, low=1, high=1000),
        max_changes=doc.whole("max_changes", base.max_changes, low=1, high=100_000),
        max_services=doc.whole("max_services", base.max_services, low=1, high=1000),
        metric_period_s=doc.whole("metric_period_s", base.metric_period_s, low=1, high=86400),
    )


def _history(doc: _Table) -> HistoryTables:
    key = doc.strings("recent_key") or {"record_type": "INCIDENT"}
    if len(key) != 1:
        raise MappingError(f"{doc.where}: recent_key must have exactly one attribute")
    return HistoryTables(
        incidents_table=doc.opt_text("incidents_table"),
        service_index=doc.opt_text("service_index", "service-opened_at"),
        root_cause_index=doc.opt_text("root_cause_index"),
        recent_index=doc.opt_text("recent_index"),
        recent_key=next(iter(sorted(key.items()))),
        resolutions_table=doc.opt_text("resolutions_table"),
    )


def _knowledge(doc: _Table) -> KnowledgeBase:
    base = doc.opt_text("knowledge_base_id")
    if base is not None and not KNOWLEDGE_BASE_ID.fullmatch(base):
        raise MappingError(f"{doc.where}: knowledge_base_id must be 10 letters or digits")
    return KnowledgeBase(
        knowledge_base_id=base,
        min_score=doc.number("min_score", 0.0, low=0.0, high=1.0),
        max_results=doc.whole("max_results", 10, low=1, high=100),
    )


def _mapping(doc: _Table) -> ServiceMapping:
    section = doc.table("mapping")
    defaults = section.flag("defaults", True)
    directions = section.strings("metric_directions")
    bad = sorted(k for k, v in directions.items() if v not in DIRECTIONS)
    if bad:
        raise MappingError(f"{section.where}: metric_directions must be up, down or both: {bad}")
    services = doc.table("services")
    entries = {name: _service(name, services.table(name)) for name in sorted(services.raw)}
    return ServiceMapping(
        services=entries,
        metrics=(DEFAULT_METRICS if defaults else ())
        + tuple(_template(t) for t in section.tables("metrics")),
        log_groups=(DEFAULT_LOG_GROUPS if defaults else ()) + section.texts("log_groups"),
        naming=section.texts("naming", DEFAULT_NAMING),
        tag_keys=section.texts("tag_keys", DEFAULT_TAG_KEYS),
        metric_directions=dict(sorted(directions.items())),
    )


def _service(name: str, doc: _Table) -> ServiceEntry:
    groups = doc.texts("log_groups")
    for group in groups:
        if not LOG_GROUP_NAME.fullmatch(group):
            raise MappingError(f"{doc.where}: log group {group!r} is not a valid name")
    return ServiceEntry(
        name=name,
        metrics=tuple(_template(t) for t in doc.tables("metrics")),
        log_groups=groups,
        xray_names=doc.texts("xray_names"),
        resources=doc.texts("resources"),
        use_defaults=doc.flag("defaults", True),
    )


def _template(doc: _Table) -> MetricTemplate:
    metrics = [
        MetricStat(
            name=m.text("name", ""),
            stat=m.text("stat", "Average"),
            unit=m.opt_text("unit") or "",
            label=m.opt_text("label") or "",
        )
        for m in doc.tables("metrics")
    ]
    if not metrics:
        raise MappingError(f"{doc.where}: metrics must list at least one metric")
    dimensions = doc.strings("dimensions")
    return MetricTemplate(
        namespace=doc.text("namespace", ""),
        dimensions=tuple(sorted(dimensions.items())),
        metrics=tuple(metrics),
    )
