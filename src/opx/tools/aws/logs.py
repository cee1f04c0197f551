"""CloudWatch Logs events of a service: ``FilterLogEvents`` per log group, or one Logs Insights
query (``StartQuery``/``GetQueryResults``, with ``StopQuery`` when the deadline passes). Log group
names are validated (never a wildcard) and the caller's pattern is escaped, so it can only ever be
a literal piece of text; messages are redacted."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from opx.domain.errors import ErrorCode
from opx.security.redaction import Redactor
from opx.tools.aws.calls import Gatherer
from opx.tools.aws.mapping import LOG_GROUP_NAME
from opx.tools.records import LogEvent, LogLevel

MAX_FILTER_LIMIT = 10_000
MAX_INSIGHTS_GROUPS = 50
MAX_INSIGHTS_ROWS = 10_000
INSIGHTS_DONE = frozenset({"Complete", "Failed", "Cancelled", "Timeout", "Unknown"})
_INSIGHTS_TIME = "%Y-%m-%d %H:%M:%S.%f"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LEVEL_FIELD = re.compile(r"(?i)\b(?:level|severity|lvl|loglevel)\s*[=:]\s*\"?([A-Za-z]+)")
_LEVEL_WORD = re.compile(r"\b(FATAL|CRITICAL|ERROR|WARN|WARNING|INFO|DEBUG|TRACE)\b")
_LEVEL_ALIASES = {"CRITICAL": "FATAL", "WARNING": "WARN", "ERR": "ERROR", "TRACE": "DEBUG"}
_TRACE_ID = re.compile(r"\b1-[0-9a-f]{8}-[0-9a-f]{24}\b")
_PARENT_ID = re.compile(r"\bParent=([0-9a-f]{16})\b")
_JSON_LEVEL_KEYS = ("level", "severity", "levelname", "log.level", "lvl")
_JSON_SPAN_KEYS = ("span_id", "spanId")
# How much of a message is searched for a level word: the level is near the start.
_LEVEL_SCAN_CHARS = 200
MAX_MESSAGE_CHARS = 4000
# Seconds kept at the end of the budget to stop a running Insights query.
INSIGHTS_STOP_RESERVE_S = 0.5


def valid_group(name: str) -> bool:
    return bool(LOG_GROUP_NAME.fullmatch(name))


def filter_term(pattern: str) -> str:
    """A CloudWatch Logs filter pattern matching ``pattern`` as literal text: one quoted term
    with backslashes and quotes escaped and control characters removed."""
    text = _CONTROL.sub("", pattern).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def insights_string(value: str) -> str:
    """A Logs Insights string literal holding ``value`` (escaped, control characters removed)."""
    text = _CONTROL.sub("", value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def insights_query(pattern: str | None, limit: int) -> str:
    """The Insights query: events in time order, optionally those whose message contains
    ``pattern`` ignoring case (a plain substring, never a regular expression)."""
    parts = ["fields @timestamp, @message, @log, @logStream, @ptr"]
    if pattern:
        needle = insights_string(pattern.lower())
        parts.append(f"filter strcontains(tolower(@message), {needle})")
    parts += ["sort @timestamp asc", f"limit {limit}"]
    return " | ".join(parts)


@dataclass(frozen=True)
class RawEvent:
    event_id: str
    timestamp: datetime
    group: str
    message: str


def to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def filter_events(
    client: Any,
    gatherer: Gatherer,
    group: str,
    window: tuple[datetime, datetime],
    pattern: str | None,
    *,
    max_events: int,
    max_pages: int,
    explicit: bool,
) -> list[RawEvent]:
    """Events of one group in ``[start, end)``; a missing group that came from a default rule
    is simply empty, a missing configured group is an error."""
    found: list[RawEvent] = []
    token: str | None = None
    for _ in range(max_pages):
        params: dict[str, Any] = {
            "logGroupName": group,
            "startTime": to_ms(window[0]),
            # FilterLogEvents includes its end time; the window does not.
            "endTime": max(to_ms(window[0]), to_ms(window[1]) - 1),
            "limit": min(MAX_FILTER_LIMIT, max_events - len(found)),
        }
        if pattern:
            params["filterPattern"] = filter_term(pattern)
        if token:
            params["nextToken"] = token
        absent = () if explicit else ("ResourceNotFoundException",)
        page = gatherer.call(
            partial(client.filter_log_events, **params),
            f"FilterLogEvents {group}",
            absent=absent,
        )
        if page is None:
            return found
        found += [_raw_filtered(group, e) for e in page.get("events", [])]
        token = page.get("nextToken")
        if not token:
            return found
        if len(found) >= max_events:
            break
    gatherer.dropped = True
    return found


def _raw_filtered(group: str, event: dict[str, Any]) -> RawEvent:
    stamp = datetime.fromtimestamp(int(event.get("timestamp", 0)) / 1000, UTC)
    return RawEvent(str(event.get("eventId", "")), stamp, group, str(event.get("message", "")))


def existing_groups(client: Any, gatherer: Gatherer, groups: Sequence[str]) -> list[str]:
    """Those of ``groups`` that exist (``DescribeLogGroups`` by prefix, exact name kept)."""
    found = []
    for group in groups:
        page = gatherer.call(
            partial(client.describe_log_groups, logGroupNamePrefix=group, limit=5),
            f"DescribeLogGroups {group}",
        )
        names = {g.get("logGroupName") for g in (page or {}).get("logGroups", [])}
        if group in names:
            found.append(group)
    return found


def insights_events(
    client: Any,
    gatherer: Gatherer,
    groups: Sequence[str],
    window: tuple[datetime, datetime],
    pattern: str | None,
    *,
    limit: int,
    poll_s: float = 0.25,
    sleep: Callable[[float], None] = time.sleep,
) -> list[RawEvent]:
    """Events from one Insights query over ``groups``. When the deadline nears, the query is
    stopped and the rows read so far are kept (TIMEOUT)."""
    if len(groups) > MAX_INSIGHTS_GROUPS:
        gatherer.dropped = True
        groups = groups[:MAX_INSIGHTS_GROUPS]
    started = gatherer.call(
        lambda: client.start_query(
            logGroupNames=list(groups),
            startTime=int(window[0].timestamp()),
            endTime=int(window[1].timestamp()),
            queryString=insights_query(pattern, min(limit, MAX_INSIGHTS_ROWS)),
            limit=min(limit, MAX_INSIGHTS_ROWS),
        ),
        "StartQuery",
    )
    if started is None:
        return []
    rows = _poll(client, gatherer, str(started["queryId"]), poll_s, sleep)
    events = [_raw_insights(row) for row in rows]
    if len(rows) >= min(limit, MAX_INSIGHTS_ROWS):
        gatherer.dropped = True
    return [e for e in events if e is not None and window[0] <= e.timestamp < window[1]]


def _poll(
    client: Any,
    gatherer: Gatherer,
    query_id: str,
    poll_s: float,
    sleep: Callable[[float], None],
) -> list[list[dict[str, str]]]:
    rows: list[list[dict[str, str]]] = []
    reserve = min(INSIGHTS_STOP_RESERVE_S, gatherer.budget.total_s / 4)
    while True:
        answer = gatherer.call(
            lambda: client.get_query_results(queryId=query_id), "GetQueryResults"
        )
        if answer is None:
            _stop(client, gatherer, query_id)
            return rows
        rows = list(answer.get("results", []))
        status = str(answer.get("status", "Unknown"))
        if status in INSIGHTS_DONE:
            if status != "Complete":
                gatherer.fail(ErrorCode.DATA_SOURCE_UNAVAILABLE, f"Insights query {status}")
            return rows
        left = gatherer.budget.remaining() - reserve
        if left <= 0:
            _stop(client, gatherer, query_id)
            gatherer.fail(ErrorCode.TIMEOUT, "Insights query still running at the deadline")
            return rows
        sleep(min(poll_s, left))


def _stop(client: Any, gatherer: Gatherer, query_id: str) -> None:
    gatherer.call(lambda: client.stop_query(queryId=query_id), "StopQuery")


def _raw_insights(row: list[dict[str, str]]) -> RawEvent | None:
    fields = {f.get("field", ""): f.get("value", "") for f in row}
    try:
        stamp = datetime.strptime(fields.get("@timestamp", ""), _INSIGHTS_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None
    group = fields.get("@log", "").split(":", 1)[-1]
    return RawEvent(fields.get("@ptr", ""), stamp, group, fields.get("@message", ""))


def to_event(raw: RawEvent, service: str, redactor: Redactor) -> LogEvent:
    """A log event of the tool shape: level and trace ids read from the message, which is
    redacted and bounded."""
    message = raw.message.rstrip("\n")
    fields = _json_fields(message)
    trace_id, span_id = _trace_ids(message, fields)
    text = redactor.text(message)
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    return LogEvent(
        id=raw.event_id,
        timestamp=raw.timestamp,
        service=service,
        level=level_of(message, fields),
        message=text,
        trace_id=trace_id,
        span_id=span_id,
    )


def _json_fields(message: str) -> dict[str, Any]:
    if not message.lstrip().startswith("{"):
        return {}
    try:
        value = json.loads(message)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def level_of(message: str, fields: dict[str, Any] | None = None) -> LogLevel:
    """The level a message states: a JSON level field, a ``level=`` pair, or an upper-case
    level word near the start; INFO when it states none."""
    for key in _JSON_LEVEL_KEYS:
        value = (fields or {}).get(key)
        if isinstance(value, str) and _level(value) is not None:
            return _level(value) or LogLevel.INFO
    head = message[:_LEVEL_SCAN_CHARS]
    for pattern in (_LEVEL_FIELD, _LEVEL_WORD):
        match = pattern.search(head)
        if match is not None and _level(match.group(1)) is not None:
            return _level(match.group(1)) or LogLevel.INFO
    return LogLevel.INFO


def _level(word: str) -> LogLevel | None:
    upper = word.upper()
    upper = _LEVEL_ALIASES.get(upper, upper)
    return LogLevel(upper) if upper in LogLevel.__members__ else None


def _trace_ids(message: str, fields: dict[str, Any]) -> tuple[str | None, str | None]:
    trace = _TRACE_ID.search(message)
    span = next((str(fields[k]) for k in _JSON_SPAN_KEYS if isinstance(fields.get(k), str)), None)
    if span is None:
        parent = _PARENT_ID.search(message)
        span = parent.group(1) if parent else None
    return (trace.group(0) if trace else None), span
