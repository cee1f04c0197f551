"""Event intake: the two accepted envelopes and every way bad input is rejected."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opx.domain.errors import ErrorCode, InputRejected
from opx.domain.identity import execution_id
from opx.domain.incident import Severity
from opx.runtime.intake import Accepted, AlarmNotFiring, parse_event


def incident_event(**detail: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "incident_id": "INC-1",
        "service": "checkout",
        "severity": "SEV2",
        "window_start": "2026-10-01T10:00:00Z",
        "window_end": "2026-10-01T10:30:00Z",
        "evidence_bundle": {"evidence_id": "ev-1", "detections": [{"rule_id": "r"}]},
    }
    base.update(detail)
    return {"source": "opx.incident", "detail-type": "IncidentCreated", "detail": base}


def alarm_event(state: str = "ALARM", dimensions: dict[str, str] | None = None) -> dict[str, Any]:
    metric = {
        "namespace": "AWS/DynamoDB",
        "name": "ThrottledRequests",
        "dimensions": dimensions if dimensions is not None else {"TableName": "orders"},
    }
    return {
        "version": "0",
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "account": "111122223333",
        "region": "us-east-1",
        "resources": ["arn:aws:cloudwatch:us-east-1:111122223333:alarm:orders-throttles"],
        "detail": {
            "alarmName": "orders-throttles",
            "state": {
                "value": state,
                "reason": "Threshold crossed",
                "timestamp": "2026-10-14T09:41:00.000+0000",
            },
            "previousState": {"value": "OK", "timestamp": "2026-10-14T09:00:00.000+0000"},
            "configuration": {
                "metrics": [
                    {"id": "m1", "metricStat": {"metric": metric, "period": 60, "stat": "Sum"}}
                ]
            },
        },
    }


def rejected(raw: bytes | str | dict[str, Any]) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        parse_event(raw)
    message = str(caught.value)
    assert "\n" not in message and message
    return caught.value


def test_incident_created_is_accepted_and_normalised() -> None:
    parsed = parse_event(json.dumps(incident_event(severity="HIGH", budget_usd=2)))
    assert isinstance(parsed, Accepted)
    assert parsed.incident.severity is Severity.SEV2
    assert parsed.incident.budget_usd == 2.0
    assert parsed.execution_id == execution_id("INC-1", "ev-1")
    assert len(parsed.execution_id) == 32


def test_idempotency_key_replaces_evidence_in_the_execution_id() -> None:
    a = parse_event(incident_event(idempotency_key="k"))
    b = parse_event(incident_event(idempotency_key="k", evidence_bundle={"evidence_id": "other"}))
    c = parse_event(incident_event())
    assert isinstance(a, Accepted) and isinstance(b, Accepted) and isinstance(c, Accepted)
    assert a.execution_id == b.execution_id != c.execution_id


def test_window_offsets_are_converted_to_utc() -> None:
    parsed = parse_event(incident_event(window_start="2026-10-01T12:00:00+02:00"))
    assert isinstance(parsed, Accepted)
    assert parsed.incident.window_start.utcoffset() is not None
    assert parsed.incident.window_start.hour == 10


def test_alarm_in_alarm_state_becomes_an_incident() -> None:
    parsed = parse_event(alarm_event())
    assert isinstance(parsed, Accepted)
    incident = parsed.incident
    assert incident.service == "orders"
    assert incident.severity is Severity.SEV2
    assert (incident.window_end - incident.window_start).total_seconds() == 1800
    assert incident.window_end.isoformat().startswith("2026-10-14T09:41:00")
    again = parse_event(alarm_event())
    assert isinstance(again, Accepted) and again.execution_id == parsed.execution_id


def test_alarm_service_prefers_service_dimensions_then_alarm_name() -> None:
    dims = {"TableName": "orders", "ServiceName": "orders-api"}
    parsed = parse_event(alarm_event(dimensions=dims))
    assert isinstance(parsed, Accepted) and parsed.incident.service == "orders-api"
    parsed = parse_event(alarm_event(dimensions={"InstanceId": "i-1"}))
    assert isinstance(parsed, Accepted) and parsed.incident.service == "orders-throttles"


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_alarm_not_firing_is_skipped(state: str) -> None:
    parsed = parse_event(alarm_event(state))
    assert isinstance(parsed, AlarmNotFiring) and parsed.state == state


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("{not json", "not valid JSON"),
        (b"\xff\xfe", "UTF-8"),
        ("[1, 2]", "JSON object"),
        ('"text"', "JSON object"),
        ("[" * 70 + "]" * 70, "nested deeper"),
        ("[" * 5000 + "]" * 5000, "nested deeper"),
        (json.dumps({"incident_id": "x", "service": "y"}), "bare detail"),
        (json.dumps({"source": "other", "detail-type": "X", "detail": {}}), "unsupported event"),
    ],
)
def test_malformed_input_is_rejected_with_one_line(raw: str | bytes, fragment: str) -> None:
    assert fragment in str(rejected(raw))


def test_oversized_input_is_rejected() -> None:
    event = incident_event(title="x" * (300 * 1024))
    assert "bytes" in str(rejected(json.dumps(event)))


def test_deep_nesting_inside_a_valid_envelope_is_rejected() -> None:
    deep: Any = "leaf"
    for _ in range(70):
        deep = {"k": deep}
    assert "nested deeper" in str(rejected(incident_event(extra=deep)))


@pytest.mark.parametrize(
    ("changes", "fragment", "code"),
    [
        ({"incident_id": None}, "incident_id", ErrorCode.SCHEMA_VALIDATION_FAILED),
        ({"incident_id": 42}, "incident_id", ErrorCode.SCHEMA_VALIDATION_FAILED),
        ({"incident_id": "a\x00b"}, "printable", ErrorCode.SCHEMA_VALIDATION_FAILED),
        ({"incident_id": "x" * 257}, "256", ErrorCode.SCHEMA_VALIDATION_FAILED),
        ({"severity": "SEV9"}, "severity", ErrorCode.SCHEMA_VALIDATION_FAILED),
        ({"window_start": "yesterday"}, "window_start", ErrorCode.SCHEMA_VALIDATION_FAILED),
        ({"window_start": "2026-10-01T10:00:00"}, "timezone", ErrorCode.SCHEMA_VALIDATION_FAILED),
        ({"window_end": "2026-10-01T09:00:00Z"}, "before", ErrorCode.SCHEMA_VALIDATION_FAILED),
        ({"window_end": "2026-10-03T10:00:00Z"}, "24 hours", ErrorCode.SCHEMA_VALIDATION_FAILED),
        ({"budget_usd": -1}, "budget_usd", ErrorCode.SCHEMA_VALIDATION_FAILED),
        ({"budget_usd": "5"}, "budget_usd", ErrorCode.SCHEMA_VALIDATION_FAILED),
        ({"evidence_bundle": {}}, "evidence_id", ErrorCode.MISSING_REQUIRED_FIELD),
        ({"evidence_bundle": "ev"}, "evidence_bundle", ErrorCode.SCHEMA_VALIDATION_FAILED),
    ],
)
def test_bad_fields_are_named(changes: dict[str, Any], fragment: str, code: ErrorCode) -> None:
    error = rejected(incident_event(**changes))
    assert fragment in str(error)
    assert error.code is code


def test_missing_incident_id_is_a_missing_field() -> None:
    event = incident_event()
    del event["detail"]["incident_id"]
    error = rejected(event)
    assert error.code is ErrorCode.MISSING_REQUIRED_FIELD
    assert "detail.incident_id" in str(error)


def test_unknown_fields_are_ignored() -> None:
    parsed = parse_event(incident_event(unexpected={"a": 1}))
    assert isinstance(parsed, Accepted)


def test_alarm_metric_is_carried_into_the_detection() -> None:
    parsed = parse_event(alarm_event())
    assert isinstance(parsed, Accepted)
    detection = parsed.incident.evidence_bundle.detections[0]
    assert detection["metric"] == "ThrottledRequests"
    assert detection["stat"] == "Sum" and detection["namespace"] == "AWS/DynamoDB"
