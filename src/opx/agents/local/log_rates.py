"""Log lines per operation call. A log line that carries a trace and span id is tied to the span
that wrote it, and its count is compared with what the baseline logs *per call* of that
operation (the window's calls x the baseline's lines per call). Workload changes between the
baseline and the window (more calls of one operation, fewer of another) then cancel out, which
counting lines per second cannot do.

Two signs of a fault, each scored as a :class:`~opx.agents.local.logs.TemplateStat`:

- an error template that surges per call of its operation (new errors, or more of them);
- an operation whose ordinary (non-error) lines per call drop: code that used to run and log no
  longer does, as when an exception cuts the call short before its usual lines. This is counted
  per operation rather than per template, so a template that a changed argument splits in two
  is no vanish. Error lines that stop are a recovery, not a fault, and are left out of it.

A drop is judged on the ratio scale like a surge (:func:`~opx.agents.local.robust.surge_z` with
observed and expected swapped): a fall to half is as surprising as a doubling. Lines that
cannot be tied to a span of their own service are left to the time-based error clustering of
:func:`~opx.agents.local.logs.cluster_errors`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opx.agents.local.logs import (
    MAX_EXAMPLES,
    TemplateStat,
    is_error_event,
    template_id,
    template_of,
)
from opx.agents.local.robust import surge_z
from opx.agents.local.spans import MIN_BASELINE_SPANS, SpanView

# An operation needs as many baseline calls as a latency needs baseline spans.
MIN_BASELINE_CALLS = MIN_BASELINE_SPANS
# (service, operation name) of the span a line is tied to.
Operation = tuple[str, str]


@dataclass
class _Tally:
    """Lines of one (operation, template), or of one operation's ordinary lines."""

    template: str
    baseline: int = 0
    window: int = 0
    event_ids: list[str] = field(default_factory=list)
    trace_ids: list[str] = field(default_factory=list)

    def remember(self, event: Mapping[str, Any]) -> None:
        if len(self.event_ids) < MAX_EXAMPLES and event.get("id") is not None:
            self.event_ids.append(str(event["id"]))
        trace = str(event.get("trace_id") or "")
        if trace and len(self.trace_ids) < MAX_EXAMPLES and trace not in self.trace_ids:
            self.trace_ids.append(trace)


@dataclass
class _Counts:
    """Per operation: its calls, its error templates and its ordinary lines."""

    calls: dict[bool, Counter[Operation]] = field(
        default_factory=lambda: {False: Counter(), True: Counter()}
    )
    errors: dict[tuple[Operation, str], _Tally] = field(default_factory=dict)
    ordinary: dict[Operation, _Tally] = field(default_factory=dict)


def split_tied(
    events: Iterable[Mapping[str, Any]], spans: Sequence[SpanView]
) -> tuple[list[tuple[Mapping[str, Any], Operation]], list[Mapping[str, Any]]]:
    """The events tied to a span of their own service (with its operation), and the rest.
    Error lines whose span has a descendant in another service that logged errors too are
    left out altogether: the failure came from below, and the callee's own lines count it
    (a caller's generic "request failed" line is a symptom of its callee's exception)."""
    owner = {(s.trace_id, s.span_id): s for s in spans}
    inherited = _inherited_failures(events, spans, owner)
    tied: list[tuple[Mapping[str, Any], Operation]] = []
    loose: list[Mapping[str, Any]] = []
    for event in events:
        key = _span_key(event)
        span = owner.get(key)
        if span is None or span.service != str(event.get("service") or ""):
            loose.append(event)
        elif key not in inherited or not is_error_event(event):
            tied.append((event, (span.service, span.operation)))
    return tied, loose


def _span_key(event: Mapping[str, Any]) -> tuple[str, str]:
    return str(event.get("trace_id") or ""), str(event.get("span_id") or "")


def _inherited_failures(
    events: Iterable[Mapping[str, Any]],
    spans: Sequence[SpanView],
    owner: Mapping[tuple[str, str], SpanView],
) -> set[tuple[str, str]]:
    """The failed spans (an error line is tied to them) with a failed descendant in another
    service."""
    failed = {
        key for event in events if (key := _span_key(event)) in owner and is_error_event(event)
    }
    if not failed:
        return set()
    parent_of = {(s.trace_id, s.span_id): (s.trace_id, s.parent_id) for s in spans if s.parent_id}
    inherited: set[tuple[str, str]] = set()
    for key in failed:
        service = owner[key].service
        current = parent_of.get(key)
        seen = {key}
        while current is not None and current in owner and current not in seen:
            seen.add(current)
            if current in failed and owner[current].service != service:
                inherited.add(current)
            current = parent_of.get(current)
    return inherited


def operation_stats(
    baseline: tuple[Sequence[tuple[Mapping[str, Any], Operation]], Sequence[SpanView]],
    window: tuple[Sequence[tuple[Mapping[str, Any], Operation]], Sequence[SpanView]],
) -> list[TemplateStat]:
    """Surging error templates and quieted operations (each ``(tied events, spans)`` of the
    baseline and of the window), by descending z then service and id; only operations with
    MIN_BASELINE_CALLS baseline calls are judged."""
    counts = _Counts()
    for in_window, (tied, spans) in ((False, baseline), (True, window)):
        counts.calls[in_window].update((s.service, s.operation) for s in spans)
        for event, operation in tied:
            _count(counts, event, operation, in_window)
    stats = [*_error_stats(counts), *_quiet_stats(counts)]
    stats.sort(key=lambda s: (-s.z, s.service, s.template_id))
    return stats


def _count(
    counts: _Counts, event: Mapping[str, Any], operation: Operation, in_window: bool
) -> None:
    if is_error_event(event):
        template = template_of(str(event.get("message") or ""))
        tally = counts.errors.setdefault((operation, template), _Tally(template))
    else:
        tally = counts.ordinary.setdefault(
            operation, _Tally(f"ordinary lines logged per call of {operation[1]}")
        )
    if in_window:
        tally.window += 1
        tally.remember(event)
    else:
        tally.baseline += 1


def _per_call(counts: _Counts, operation: Operation) -> float | None:
    """Window calls per baseline call of ``operation``; None with too few baseline calls."""
    base = counts.calls[False][operation]
    return counts.calls[True][operation] / base if base >= MIN_BASELINE_CALLS else None


def _error_stats(counts: _Counts) -> list[TemplateStat]:
    stats = []
    for (operation, _), tally in sorted(counts.errors.items()):
        ratio = _per_call(counts, operation)
        if ratio is None or tally.window == 0:
            continue
        expected = tally.baseline * ratio
        stats.append(_stat(operation, tally, expected, surge_z(tally.window, expected), "surge"))
    return stats


def _quiet_stats(counts: _Counts) -> list[TemplateStat]:
    stats = []
    for operation, tally in sorted(counts.ordinary.items()):
        ratio = _per_call(counts, operation)
        if ratio is None or tally.baseline == 0:
            continue
        expected = tally.baseline * ratio
        stats.append(_stat(operation, tally, expected, surge_z(expected, tally.window), "quiet"))
    return stats


def _stat(
    operation: Operation, tally: _Tally, expected: float, z: float, kind: str
) -> TemplateStat:
    service, name = operation
    return TemplateStat(
        template_id=template_id(f"{name} {tally.template}"),
        service=service,
        template=tally.template,
        baseline_count=tally.baseline,
        window_count=tally.window,
        expected=expected,
        z=z,
        new=tally.baseline == 0,
        event_ids=tuple(tally.event_ids),
        trace_ids=tuple(tally.trace_ids),
        kind=kind,
        operation=name,
    )
