"""Past incidents and their resolutions from DynamoDB: ``Query`` on configurable indexes (by
service, by root-cause service, or all recent incidents) newest first, and ``GetItem`` for a
resolution. The caller's values only ever travel as expression attribute values."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from opx.tools.aws.calls import Gatherer, as_dict
from opx.tools.aws.settings import HistoryTables
from opx.tools.records import IncidentRootCause, PastIncident, Resolution
from opx.tools.text_search import tokenize

PAGE_SIZE = 50
KEY = "incident_id"
_DESERIALIZER = TypeDeserializer()


def plain(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain Python values (numbers as floats)."""
    return {k: _numbers(_DESERIALIZER.deserialize(v)) for k, v in item.items()}


def _numbers(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list | set | frozenset):
        items = [_numbers(v) for v in value]
        return sorted(items) if isinstance(value, set | frozenset) else items
    return value


def queries(tables: HistoryTables, service: str | None) -> list[tuple[str, str, str]]:
    """``(index, key attribute, value)`` of each query a search needs."""
    if service is None:
        if tables.recent_index is None:
            return []
        return [(tables.recent_index, *tables.recent_key)]
    found = []
    if tables.service_index:
        found.append((tables.service_index, "service", service))
    if tables.root_cause_index:
        found.append((tables.root_cause_index, "root_cause_service", service))
    return found


def search(
    client: Any,
    gatherer: Gatherer,
    tables: HistoryTables,
    service: str | None,
    text: str | None,
    *,
    limit: int,
    max_pages: int,
) -> list[PastIncident]:
    """Up to ``limit`` incidents of ``service`` (its own or as root cause; every incident when
    None) sharing a word with ``text`` when given, newest first (ties by id)."""
    terms = set(tokenize(text or ""))
    found: dict[str, PastIncident] = {}
    for index, attribute, value in queries(tables, service):
        matched = 0
        for item in _pages(client, gatherer, tables, index, attribute, value, max_pages):
            incident = to_incident(item)
            if incident is not None and _matches(incident, terms):
                found.setdefault(incident.incident_id, incident)
                matched += 1
                if matched >= limit:
                    break
    ordered = sorted(found.values(), key=lambda i: i.incident_id)
    ordered.sort(key=lambda i: i.opened_at, reverse=True)
    return ordered[:limit]


def _pages(
    client: Any,
    gatherer: Gatherer,
    tables: HistoryTables,
    index: str,
    attribute: str,
    value: str,
    max_pages: int,
) -> Iterator[dict[str, Any]]:
    start: dict[str, Any] | None = None
    for _ in range(max_pages):
        params: dict[str, Any] = {
            "TableName": tables.incidents_table,
            "IndexName": index,
            "KeyConditionExpression": "#k = :v",
            "ExpressionAttributeNames": {"#k": attribute},
            "ExpressionAttributeValues": {":v": {"S": value}},
            "ScanIndexForward": False,
            "Limit": PAGE_SIZE,
        }
        if start:
            params["ExclusiveStartKey"] = start
        page = gatherer.call(partial(client.query, **params), f"Query {index}")
        if page is None:
            return
        for item in page.get("Items", []):
            yield plain(item)
        start = page.get("LastEvaluatedKey")
        if not start:
            return
    gatherer.dropped = True


def _matches(incident: PastIncident, terms: set[str]) -> bool:
    if not terms:
        return True
    words = set(tokenize(" ".join((incident.title, *incident.symptoms))))
    return not terms.isdisjoint(words)


def to_incident(item: Mapping[str, Any]) -> PastIncident | None:
    """An incident from a plain item; None when a required field is missing or malformed."""
    try:
        cause = as_dict(item.get("root_cause"))
        return PastIncident(
            incident_id=str(item[KEY]),
            service=str(item["service"]),
            severity=str(item.get("severity", "")),
            opened_at=_time(item["opened_at"]),
            title=str(item.get("title", "")),
            symptoms=tuple(str(s) for s in item.get("symptoms") or ()),
            root_cause=IncidentRootCause(
                service=str(cause.get("service") or item.get("root_cause_service") or ""),
                category=str(cause.get("category") or "UNKNOWN"),
                component=str(cause["component"]) if cause.get("component") else None,
            ),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _time(value: object) -> datetime:
    parsed = datetime.fromisoformat(str(value).strip())
    if parsed.tzinfo is None:
        raise ValueError("opened_at has no time zone")
    return parsed.astimezone(UTC)


def resolution(
    client: Any, gatherer: Gatherer, tables: HistoryTables, incident_id: str
) -> Resolution | None:
    """The resolution of an incident: a ``resolution`` map on its item, or the item of the
    resolutions table when one is configured; None when there is none."""
    table = tables.resolutions_table or tables.incidents_table
    answer = gatherer.call(
        partial(client.get_item, TableName=table, Key={KEY: {"S": incident_id}}),
        f"GetItem {table}",
    )
    item = plain(as_dict(answer).get("Item") or {})
    found = item if tables.resolutions_table else as_dict(item.get("resolution"))
    if not found.get("summary") and not found.get("type"):
        return None
    minutes = found.get("time_to_resolve_minutes")
    return Resolution(
        type=str(found.get("type") or "UNKNOWN"),
        summary=str(found.get("summary") or ""),
        actions=tuple(str(a) for a in found.get("actions") or ()),
        time_to_resolve_minutes=float(minutes) if isinstance(minutes, int | float) else None,
    )
