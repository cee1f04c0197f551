"""Turns raw event input into an incident to analyse, an alarm to skip, or a clear rejection."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import ValidationError

from opx.domain.errors import ErrorCode, InputRejected
from opx.domain.identity import execution_id, short_digest
from opx.domain.incident import (
    AlarmStateChangeEnvelope,
    EvidenceBundle,
    Incident,
    IncidentCreatedEnvelope,
    Severity,
)

MAX_EVENT_BYTES = 256 * 1024
MAX_DEPTH = 64
ALARM_WINDOW = timedelta(minutes=30)
# Dimensions that name the service behind an alarm's metric, most specific first.
SERVICE_DIMENSIONS = (
    "ServiceName",
    "Service",
    "service",
    "FunctionName",
    "TableName",
    "LoadBalancer",
)

INCIDENT_CREATED = ("opx.incident", "IncidentCreated")
ALARM_STATE_CHANGE = ("aws.cloudwatch", "CloudWatch Alarm State Change")


@dataclass(frozen=True)
class Accepted:
    """An incident to analyse."""

    incident: Incident

    @property
    def execution_id(self) -> str:
        i = self.incident
        return execution_id(i.incident_id, i.evidence_id, i.idempotency_key)


@dataclass(frozen=True)
class AlarmNotFiring:
    """A CloudWatch alarm that changed to OK or INSUFFICIENT_DATA: nothing to analyse."""

    incident_id: str
    execution_id: str
    state: str


def parse_event(raw: bytes | str | Mapping[str, Any]) -> Accepted | AlarmNotFiring:
    """Validate one event. Raises :class:`InputRejected` with a one-line reason on bad input."""
    document = raw if isinstance(raw, Mapping) else _decode(raw)
    _check_depth(document)
    if not isinstance(document, Mapping):
        raise InputRejected(f"the event must be a JSON object, not {_json_type(document)}")
    envelope = (document.get("source"), document.get("detail-type"))
    if envelope == INCIDENT_CREATED:
        return Accepted(_validated(IncidentCreatedEnvelope, document).detail)
    if envelope == ALARM_STATE_CHANGE:
        return _from_alarm(_validated(AlarmStateChangeEnvelope, document))
    raise InputRejected(_unknown_envelope_message(document), ErrorCode.SCHEMA_VALIDATION_FAILED)


def _decode(raw: bytes | str) -> Any:
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    if len(data) > MAX_EVENT_BYTES:
        raise InputRejected(
            f"the event is {len(data)} bytes; at most {MAX_EVENT_BYTES} are accepted"
        )
    if not data.strip():
        raise InputRejected("the event is empty")
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputRejected("the event is not UTF-8 text") from None
    except RecursionError:
        raise InputRejected(f"the event is nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise InputRejected(
            f"the event is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def _check_depth(document: Any) -> None:
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputRejected(f"the event is nested deeper than {MAX_DEPTH} levels")
        children = (
            node.values() if isinstance(node, Mapping) else node if isinstance(node, list) else ()
        )
        stack.extend((child, depth + 1) for child in children if isinstance(child, Mapping | list))


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _unknown_envelope_message(document: Mapping[str, Any]) -> str:
    if "detail" not in document and ("incident_id" in document or "service" in document):
        return (
            "the event looks like a bare detail: wrap it in an EventBridge envelope "
            '{"source": "opx.incident", "detail-type": "IncidentCreated", "detail": {...}}'
        )
    found = f"source={document.get('source')!r}, detail-type={document.get('detail-type')!r}"
    return (
        f"unsupported event ({found}); expected source=opx.incident with "
        "detail-type=IncidentCreated, or source=aws.cloudwatch with "
        "detail-type='CloudWatch Alarm State Change'"
    )


_Envelope = TypeVar("_Envelope", IncidentCreatedEnvelope, AlarmStateChangeEnvelope)


def _validated(model: type[_Envelope], document: Mapping[str, Any]) -> _Envelope:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise _rejection(exc) from None


def _rejection(exc: ValidationError) -> InputRejected:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "event"
    if first["type"] == "missing":
        return InputRejected(f"missing required field {where}", ErrorCode.MISSING_REQUIRED_FIELD)
    message = first["msg"].removeprefix("Value error, ")
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return InputRejected(f"invalid {where}: {message}{suffix}", ErrorCode.SCHEMA_VALIDATION_FAILED)


def _alarm_service(envelope: AlarmStateChangeEnvelope) -> str:
    metrics = [q.metric_stat.metric for q in envelope.detail.configuration.metrics if q.metric_stat]
    for dimension in SERVICE_DIMENSIONS:
        for metric in metrics:
            value = metric.dimensions.get(dimension)
            if value:
                return value
    return envelope.detail.alarm_name


def _alarm_metric(envelope: AlarmStateChangeEnvelope) -> dict[str, Any]:
    """The alarm's own metric (the first one with a metric stat), so analysts can anchor on it."""
    for query in envelope.detail.configuration.metrics:
        if query.metric_stat is not None:
            stat = query.metric_stat
            found = {
                "metric": stat.metric.name,
                "namespace": stat.metric.namespace,
                "stat": stat.stat,
                "dimensions": dict(sorted(stat.metric.dimensions.items())),
            }
            return {key: value for key, value in found.items() if value}
    return {}


def _from_alarm(envelope: AlarmStateChangeEnvelope) -> Accepted | AlarmNotFiring:
    state = envelope.detail.state
    changed_at = state.timestamp
    stamp = changed_at.strftime("%Y%m%dT%H%M%SZ")
    digest = short_digest(envelope.alarm_arn, changed_at.isoformat())
    incident_id = f"cw-alarm-{digest}-{stamp}"
    evidence_id = f"cw-alarm-evidence-{digest}"
    if state.value != "ALARM":
        return AlarmNotFiring(incident_id, execution_id(incident_id, evidence_id), state.value)
    detection: dict[str, Any] = {
        "detection_id": evidence_id,
        "rule_id": envelope.detail.alarm_name,
        "alarm_arn": envelope.alarm_arn,
        "reason": state.reason,
        "detected_at": changed_at.isoformat(),
    }
    detection.update(_alarm_metric(envelope))
    incident = Incident(
        incident_id=incident_id,
        service=_alarm_service(envelope),
        severity=Severity.SEV2,
        window_start=changed_at - ALARM_WINDOW,
        window_end=changed_at,
        evidence_bundle=EvidenceBundle(evidence_id=evidence_id, detections=[detection]),
        title=envelope.detail.configuration.description or envelope.detail.alarm_name,
        source="aws.cloudwatch",
    )
    return Accepted(incident)
