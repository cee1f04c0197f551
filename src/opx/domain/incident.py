"""The incident an analysis is about, and the two EventBridge envelopes that announce one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_WINDOW = timedelta(hours=24)
DEFAULT_BUDGET_USD = 5.0


class Severity(StrEnum):
    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"


# The detection pipeline grades by words; incidents grade by number.
_SEVERITY_WORDS = {"CRITICAL": "SEV1", "HIGH": "SEV2", "MEDIUM": "SEV3", "LOW": "SEV4"}


def _printable_id(value: str, field: str) -> str:
    if not value or not value.strip():
        raise ValueError(f"{field} must not be empty")
    if len(value) > 256:
        raise ValueError(f"{field} is {len(value)} characters long; at most 256 are allowed")
    if not value.isprintable():
        raise ValueError(f"{field} must contain printable characters only")
    return value


class EvidenceBundle(BaseModel):
    """What the detection pipeline gathered; only its id is required (not the telemetry bundle)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    evidence_id: str
    detections: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("evidence_id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        return _printable_id(value, "evidence_id")


class Incident(BaseModel):
    """A normalised incident: what every part of OPX after the entry point works from."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    incident_id: str
    service: str = Field(min_length=1, max_length=512)
    severity: Severity
    window_start: AwareDatetime
    window_end: AwareDatetime
    evidence_bundle: EvidenceBundle
    budget_usd: float = Field(default=DEFAULT_BUDGET_USD, ge=0, allow_inf_nan=False, strict=True)
    idempotency_key: str | None = None
    title: str | None = None
    source: Literal["opx.incident", "aws.cloudwatch"] = "opx.incident"

    @field_validator("incident_id")
    @classmethod
    def _check_incident_id(cls, value: str) -> str:
        return _printable_id(value, "incident_id")

    @field_validator("idempotency_key")
    @classmethod
    def _check_key(cls, value: str | None) -> str | None:
        return None if value is None else _printable_id(value, "idempotency_key")

    @field_validator("severity", mode="before")
    @classmethod
    def _map_severity(cls, value: object) -> object:
        if isinstance(value, str):
            return _SEVERITY_WORDS.get(value.upper(), value.upper())
        return value

    @field_validator("window_start", "window_end")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _check_window(self) -> Incident:
        if self.window_start >= self.window_end:
            raise ValueError("window_start must be before window_end")
        if self.window_end - self.window_start > MAX_WINDOW:
            raise ValueError("the analysis window is longer than 24 hours")
        return self

    @property
    def evidence_id(self) -> str:
        return self.evidence_bundle.evidence_id


class IncidentCreatedEnvelope(BaseModel):
    """The control plane's event: ``source=opx.incident``, ``detail-type=IncidentCreated``."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    source: Literal["opx.incident"]
    detail_type: Literal["IncidentCreated"] = Field(alias="detail-type")
    detail: Incident


class AlarmState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    value: Literal["ALARM", "OK", "INSUFFICIENT_DATA"]
    timestamp: AwareDatetime
    reason: str = ""


class AlarmMetric(BaseModel):
    model_config = ConfigDict(extra="ignore")

    dimensions: dict[str, str] = Field(default_factory=dict)
    name: str | None = None
    namespace: str | None = None


class AlarmMetricStat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metric: AlarmMetric
    stat: str | None = None
    period: int | None = None


class AlarmMetricQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    metric_stat: AlarmMetricStat | None = Field(default=None, alias="metricStat")


class AlarmConfiguration(BaseModel):
    model_config = ConfigDict(extra="ignore")

    description: str | None = None
    metrics: list[AlarmMetricQuery] = Field(default_factory=list)


class AlarmDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    alarm_name: str = Field(alias="alarmName", min_length=1)
    state: AlarmState
    configuration: AlarmConfiguration = Field(default_factory=AlarmConfiguration)


class AlarmStateChangeEnvelope(BaseModel):
    """AWS's native ``CloudWatch Alarm State Change`` event."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    source: Literal["aws.cloudwatch"]
    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    resources: list[str] = Field(default_factory=list)
    account: str | None = None
    region: str | None = None
    detail: AlarmDetail

    @property
    def alarm_arn(self) -> str:
        for resource in self.resources:
            if ":alarm:" in resource:
                return resource
        account, region = self.account or "unknown", self.region or "unknown"
        return f"arn:aws:cloudwatch:{region}:{account}:alarm:{self.detail.alarm_name}"
