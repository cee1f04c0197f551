"""Incident history through the AWS source, on dynalite: Query on the configured indexes and
GetItem for resolutions; writes through the telemetry client are refused."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from opx.domain.errors import ErrorCode
from opx.domain.tool_result import ToolStatus
from opx.security.readonly import WriteRefused, guard, telemetry_policy
from opx.tools.aws.settings import AwsSettings, HistoryTables
from tests.tools.aws.conftest import make_source, raw_client

_tables = itertools.count(1)


def incident(
    n: int, service: str, cause: str, title: str, day: int, **extra: Any
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "incident_id": {"S": f"INC-{n:03d}"},
        "record_type": {"S": "INCIDENT"},
        "service": {"S": service},
        "root_cause_service": {"S": cause},
        "severity": {"S": "SEV2"},
        "opened_at": {"S": f"2026-04-{day:02d}T10:00:00Z"},
        "title": {"S": title},
        "symptoms": {"L": [{"S": "latency up"}, {"S": "errors for ops@example.com"}]},
        "root_cause": {"M": {"service": {"S": cause}, "category": {"S": "DEPLOYMENT"}}},
    }
    item.update(extra)
    return item


def create(client: Any, name: str) -> None:
    index = lambda attr: {  # noqa: E731
        "IndexName": f"{attr}-opened_at",
        "KeySchema": [
            {"AttributeName": attr, "KeyType": "HASH"},
            {"AttributeName": "opened_at", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "incident_id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"}
            for a in ("incident_id", "service", "root_cause_service", "record_type", "opened_at")
        ],
        GlobalSecondaryIndexes=[
            index("service"),
            index("root_cause_service"),
            index("record_type"),
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.05})


@pytest.fixture
def history(dynalite_endpoint: str) -> tuple[str, Any]:
    client = raw_client("dynamodb", dynalite_endpoint)
    name = f"opx-history-{next(_tables):03d}"
    create(client, name)
    resolution = {
        "M": {
            "type": {"S": "ROLLBACK"},
            "summary": {"S": "rolled back; paged a@b.com"},
            "actions": {"L": [{"S": "rollback"}]},
            "time_to_resolve_minutes": {"N": "42"},
        }
    }
    for item in (
        incident(
            1, "checkout", "checkout", "Checkout errors after deploy", 1, resolution=resolution
        ),
        incident(2, "checkout", "payments", "Checkout latency from payments", 3),
        incident(3, "frontend", "checkout", "Frontend 5xx from checkout", 2),
        incident(4, "search", "search", "Search slow", 4),
    ):
        client.put_item(TableName=name, Item=item)
    telemetry = guard(raw_client("dynamodb", dynalite_endpoint), telemetry_policy([name]))
    return name, telemetry


def settings(table: str, **extra: Any) -> AwsSettings:
    tables = HistoryTables(
        incidents_table=table,
        service_index="service-opened_at",
        root_cause_index="root_cause_service-opened_at",
        recent_index="record_type-opened_at",
        **extra,
    )
    return AwsSettings(history=tables)


def test_search_by_service_and_root_cause(history: tuple[str, Any]) -> None:
    name, client = history
    source = make_source(lambda _: client, settings(name))
    result = source.search_incidents(service="checkout")
    assert result.status is ToolStatus.SUCCESS
    assert [i["incident_id"] for i in result.data["incidents"]] == ["INC-002", "INC-003", "INC-001"]
    first = result.data["incidents"][0]
    assert first["root_cause"] == {
        "service": "payments",
        "component": None,
        "category": "DEPLOYMENT",
    }
    assert "ops@example.com" not in str(first["symptoms"])
    assert [
        i["incident_id"] for i in source.search_incidents("checkout", "deploy").data["incidents"]
    ] == ["INC-001"]
    assert [i["incident_id"] for i in source.search_incidents(limit=2).data["incidents"]] == [
        "INC-004",
        "INC-002",
    ]


def test_resolution_found_and_missing(history: tuple[str, Any]) -> None:
    name, client = history
    source = make_source(lambda _: client, settings(name))
    found = source.get_resolution("INC-001")
    assert found.status is ToolStatus.SUCCESS
    assert found.data["found"] is True
    resolution = found.data["resolution"]
    assert resolution["type"] == "ROLLBACK" and resolution["time_to_resolve_minutes"] == 42.0
    assert "a@b.com" not in resolution["summary"]
    missing = source.get_resolution("INC-404")
    assert missing.data == {"incident_id": "INC-404", "found": False, "resolution": None}


def test_missing_table_or_configuration_fails_softly(
    history: tuple[str, Any], dynalite_endpoint: str
) -> None:
    _, client = history
    outside = make_source(lambda _: client, settings("opx-history-other"))
    refused = outside.search_incidents(service="checkout")
    assert refused.status is ToolStatus.FAILED
    assert refused.error is not None and refused.error.code is ErrorCode.WRITE_REFUSED
    allowed = guard(
        raw_client("dynamodb", dynalite_endpoint), telemetry_policy(["opx-history-missing"])
    )
    missing = make_source(lambda _: allowed, settings("opx-history-missing"))
    absent = missing.search_incidents(service="checkout")
    assert absent.error is not None
    assert absent.error.code is ErrorCode.DATA_SOURCE_UNAVAILABLE
    unset = make_source(lambda _: client, AwsSettings()).search_incidents()
    assert unset.error is not None and unset.error.code is ErrorCode.DATA_SOURCE_UNAVAILABLE
    bad = make_source(lambda _: client, settings("x")).search_incidents(limit=0)
    assert bad.error is not None and bad.error.code is ErrorCode.INVALID_INPUT


def test_telemetry_client_cannot_write_history(history: tuple[str, Any]) -> None:
    name, client = history
    with pytest.raises(WriteRefused):
        client.put_item(TableName=name, Item={"incident_id": {"S": "INC-999"}})
    assert "Item" not in client.get_item(TableName=name, Key={"incident_id": {"S": "INC-999"}})
