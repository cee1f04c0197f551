"""Error-log template clustering: mask the variable parts of error messages, count each
template per service in the baseline and the window, and flag templates that are new or surge."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opx.agents.local.robust import Z_THRESHOLD, strength, surge_z
from opx.domain.identity import short_digest

ERROR_LEVELS = frozenset({"ERROR", "FATAL", "CRITICAL", "SEVERE", "EMERG", "ALERT"})
_ERROR_WORDS = re.compile(
    r"\b(errors?|exceptions?|fail(?:s|ed|ure|ing)?|fatal|panic|traceback|timed?\s?out|"
    r"refused|unavailable|unreachable)\b",
    re.IGNORECASE,
)
# Exception class names glue the word onto others ("NullPointerException", "TimeoutError").
_ERROR_CLASS = re.compile(r"[a-z0-9](?:Exception|Error)\b")
# Most specific first: a UUID contains hex runs and numbers, an IP contains numbers.
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
        "<UUID>",
    ),
    (re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])"), "<IP>"),
    (re.compile(r"\b0[xX][0-9a-fA-F]+\b"), "<HEX>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<HEX>"),
    (re.compile(r'"[^"]*"'), "<STR>"),
    # Not after a letter, so an apostrophe inside a word ("can't") is not a quote.
    (re.compile(r"(?<!\w)'[^']*'(?!\w)"), "<STR>"),
    (re.compile(r"(?<![A-Za-z_<])[-+]?\d+(?:\.\d+)?"), "<NUM>"),
)
_SPACES = re.compile(r"\s+")
MAX_MESSAGE = 400
MAX_TEMPLATE = 200
MAX_EXAMPLES = 5


def template_of(message: str) -> str:
    """The message with ids, numbers, addresses and quoted strings replaced by placeholders."""
    text = message[:MAX_MESSAGE]
    for pattern, placeholder in _MASKS:
        text = pattern.sub(placeholder, text)
    return _SPACES.sub(" ", text).strip()[:MAX_TEMPLATE]


def template_id(template: str) -> str:
    """A stable short id for a template, the same in every service."""
    return f"tpl-{short_digest(template, length=12)}"


def reads_whole(data: Mapping[str, Any]) -> bool:
    """True when a truncated ``search_logs`` answer still holds all this module reads: a page
    shortens a message too long for it (ending it in "…"), but if what is left is longer than
    the MAX_MESSAGE characters the clustering reads, nothing it uses was lost."""
    for event in data.get("events") or []:
        message = str(event.get("message") or "")
        if message.endswith("…") and len(message) <= MAX_MESSAGE:
            return False
    return True


def is_error_event(event: Mapping[str, Any]) -> bool:
    """True for an ERROR/FATAL-level event or one whose message reads like an error."""
    level = str(event.get("level") or "").upper()
    if level in ERROR_LEVELS:
        return True
    message = str(event.get("message") or "")[:MAX_MESSAGE]
    return bool(_ERROR_WORDS.search(message) or _ERROR_CLASS.search(message))


@dataclass
class _Counts:
    template: str
    baseline: int = 0
    window: int = 0
    event_ids: list[str] = field(default_factory=list)
    trace_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TemplateStat:
    """One error template of one service: its counts and how anomalous the window is."""

    template_id: str
    service: str
    template: str
    baseline_count: int
    window_count: int
    expected: float
    z: float
    new: bool
    event_ids: tuple[str, ...]
    trace_ids: tuple[str, ...]
    # "surge": an error template above its expected count; "quiet": an operation whose
    # ordinary lines per call fell (see :mod:`opx.agents.local.log_rates`).
    kind: str = "surge"
    # The operation whose calls the expected count follows ("" when it follows time).
    operation: str = ""

    @property
    def strength(self) -> float:
        return strength(self.z)

    @property
    def anomalous(self) -> bool:
        return self.z >= Z_THRESHOLD

    def to_finding(self) -> dict[str, Any]:
        return {
            "template_id": self.template_id,
            "service": self.service,
            "template": self.template,
            "baseline_count": self.baseline_count,
            "window_count": self.window_count,
            "expected": round(self.expected, 3),
            "z": round(self.z, 3),
            "new": self.new,
            "kind": self.kind,
            "operation": self.operation,
            "event_ids": list(self.event_ids),
        }


def cluster_errors(
    baseline_events: Iterable[Mapping[str, Any]],
    window_events: Iterable[Mapping[str, Any]],
    *,
    baseline_seconds: float,
    window_seconds: float,
) -> list[TemplateStat]:
    """Error templates per service seen in the window, by descending z then service and id.
    The baseline count is scaled to the window's length to give the expected count."""
    counts: dict[tuple[str, str], _Counts] = {}
    for event in baseline_events:
        if is_error_event(event):
            _counts_for(counts, event).baseline += 1
    for event in window_events:
        if is_error_event(event):
            entry = _counts_for(counts, event)
            entry.window += 1
            _remember(entry, event)
    ratio = window_seconds / baseline_seconds if baseline_seconds > 0 else 0.0
    stats = [
        _stat(service, c, c.baseline * ratio) for (service, _), c in counts.items() if c.window > 0
    ]
    stats.sort(key=lambda s: (-s.z, s.service, s.template_id))
    return stats


def _counts_for(counts: dict[tuple[str, str], _Counts], event: Mapping[str, Any]) -> _Counts:
    template = template_of(str(event.get("message") or ""))
    key = (str(event.get("service") or ""), template)
    entry = counts.get(key)
    if entry is None:
        entry = counts[key] = _Counts(template)
    return entry


def _remember(entry: _Counts, event: Mapping[str, Any]) -> None:
    if len(entry.event_ids) < MAX_EXAMPLES and event.get("id") is not None:
        entry.event_ids.append(str(event["id"]))
    trace = event.get("trace_id")
    if trace and len(entry.trace_ids) < MAX_EXAMPLES and str(trace) not in entry.trace_ids:
        entry.trace_ids.append(str(trace))


def _stat(service: str, counts: _Counts, expected: float) -> TemplateStat:
    return TemplateStat(
        template_id=template_id(counts.template),
        service=service,
        template=counts.template,
        baseline_count=counts.baseline,
        window_count=counts.window,
        expected=expected,
        z=surge_z(counts.window, expected),
        new=counts.baseline == 0,
        event_ids=tuple(counts.event_ids),
        trace_ids=tuple(counts.trace_ids),
    )


def service_log_scores(stats: Iterable[TemplateStat]) -> dict[str, TemplateStat]:
    """The most anomalous template of each service (stats must be sorted as returned by
    :func:`cluster_errors`)."""
    best: dict[str, TemplateStat] = {}
    for stat in stats:
        best.setdefault(stat.service, stat)
    return best
