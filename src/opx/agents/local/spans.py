"""Trace localisation: where errors originate (the deepest failing span whose children did not
fail) and which services' own (exclusive) time grew in the window against the baseline."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opx.agents.local.robust import Z_THRESHOLD, directional_z, robust_baseline, strength, surge_z

MIN_BASELINE_SPANS = 5
MAX_EXAMPLES = 5
# The window statistic for latency: a quarter of the window's spans must be slow, so that one
# slow request is not enough.
WINDOW_QUANTILE = 0.75


@dataclass(frozen=True)
class SpanView:
    """The fields of a span the localisation needs; ``start_s`` is epoch seconds."""

    trace_id: str
    span_id: str
    parent_id: str | None
    service: str
    operation: str
    start_s: float
    duration_ms: float
    error: bool
    fault: bool

    @property
    def failed(self) -> bool:
        return self.error or self.fault


def parse_spans(items: Iterable[Mapping[str, Any]]) -> list[SpanView]:
    """The well-formed spans of a ``get_traces`` payload; malformed ones are skipped."""
    spans: list[SpanView] = []
    for item in items:
        span = _parse_span(item)
        if span is not None:
            spans.append(span)
    return spans


def _parse_span(item: Mapping[str, Any]) -> SpanView | None:
    try:
        start = datetime.fromisoformat(str(item["start"])).timestamp()
        duration = float(item["duration_ms"])
        parent = item.get("parent_id")
        return SpanView(
            trace_id=str(item["trace_id"]),
            span_id=str(item["span_id"]),
            parent_id=None if parent in (None, "") else str(parent),
            service=str(item["service"]),
            operation=str(item.get("operation") or ""),
            start_s=start,
            duration_ms=max(duration, 0.0),
            error=bool(item.get("error")),
            fault=bool(item.get("fault")),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _children(spans: Sequence[SpanView]) -> dict[tuple[str, str], list[SpanView]]:
    children: dict[tuple[str, str], list[SpanView]] = defaultdict(list)
    for span in spans:
        if span.parent_id is not None:
            children[(span.trace_id, span.parent_id)].append(span)
    return children


@dataclass(frozen=True)
class ErrorOrigin:
    """A failing span none of whose children failed: where the error started."""

    trace_id: str
    span_id: str
    service: str
    operation: str
    fault: bool


def error_origins(spans: Sequence[SpanView]) -> list[ErrorOrigin]:
    """Every failing span whose children all succeeded, in (trace, span) order."""
    children = _children(spans)
    origins = [
        ErrorOrigin(s.trace_id, s.span_id, s.service, s.operation, s.fault)
        for s in spans
        if s.failed and not any(c.failed for c in children.get((s.trace_id, s.span_id), ()))
    ]
    origins.sort(key=lambda o: (o.trace_id, o.span_id))
    return origins


@dataclass(frozen=True)
class OriginStat:
    """How often a service was the origin of errors, against what its baseline predicts."""

    service: str
    baseline_count: int
    window_count: int
    expected: float
    z: float
    trace_ids: tuple[str, ...]

    @property
    def strength(self) -> float:
        return strength(self.z)

    @property
    def anomalous(self) -> bool:
        return self.z >= Z_THRESHOLD

    def to_finding(self) -> dict[str, Any]:
        return {
            "kind": "error_origin",
            "service": self.service,
            "baseline_count": self.baseline_count,
            "window_count": self.window_count,
            "expected": round(self.expected, 3),
            "z": round(self.z, 3),
            "trace_ids": list(self.trace_ids),
        }


def origin_stats(
    baseline: Sequence[SpanView],
    window: Sequence[SpanView],
    *,
    baseline_seconds: float,
    window_seconds: float,
) -> dict[str, OriginStat]:
    """Error origins per service in the window. The expected count keeps the baseline's error
    ratio at the window's traffic (span count), or its rate per second without baseline spans."""
    base_origins = _count_by_service(o.service for o in error_origins(baseline))
    base_spans = _count_by_service(s.service for s in baseline)
    win_spans = _count_by_service(s.service for s in window)
    found: dict[str, list[str]] = defaultdict(list)
    for origin in error_origins(window):
        found[origin.service].append(origin.trace_id)
    stats: dict[str, OriginStat] = {}
    for service in sorted(found):
        traces = found[service]
        base = base_origins.get(service, 0)
        if base_spans.get(service):
            expected = base * win_spans.get(service, 0) / base_spans[service]
        else:
            expected = base * window_seconds / baseline_seconds if baseline_seconds > 0 else 0.0
        unique = tuple(dict.fromkeys(traces))[:MAX_EXAMPLES]
        stats[service] = OriginStat(
            service, base, len(traces), expected, surge_z(len(traces), expected), unique
        )
    return stats


def _count_by_service(services: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for service in services:
        counts[service] += 1
    return counts


def exclusive_times(spans: Sequence[SpanView]) -> list[tuple[SpanView, float]]:
    """Each span with its own time in ms: its duration minus the union of its children's
    intervals clipped to its own (parallel children are not counted twice). A client span (one
    opened inside its service's own work whose children all run in other services) is left out:
    its time beyond the callee's is the hop's (see :func:`hop_stats`), not work the caller did."""
    children = _children(spans)
    service_of = {(s.trace_id, s.span_id): s.service for s in spans}
    out: list[tuple[SpanView, float]] = []
    for span in spans:
        kids = children.get((span.trace_id, span.span_id), [])
        inner = service_of.get((span.trace_id, span.parent_id or "")) == span.service
        if inner and kids and all(k.service != span.service for k in kids):
            continue
        covered = _covered_ms(span, kids) if kids else 0.0
        out.append((span, max(span.duration_ms - covered, 0.0)))
    return out


def _covered_ms(parent: SpanView, kids: Sequence[SpanView]) -> float:
    lo_bound = parent.start_s * 1000.0
    hi_bound = lo_bound + parent.duration_ms
    intervals = sorted(
        (max(k.start_s * 1000.0, lo_bound), min(k.start_s * 1000.0 + k.duration_ms, hi_bound))
        for k in kids
    )
    merged: list[list[float]] = []
    for lo, hi in intervals:
        if hi <= lo:
            continue
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return sum(hi - lo for lo, hi in merged)


@dataclass(frozen=True)
class LatencyStat:
    """A service's exclusive time in the window against its baseline spans."""

    service: str
    baseline_spans: int
    window_spans: int
    baseline_median_ms: float
    window_quantile_ms: float
    z: float
    trace_ids: tuple[str, ...]
    # "latency": the service's own span time; "hop_gap": time on the hops into it.
    kind: str = "latency"

    @property
    def strength(self) -> float:
        return strength(self.z)

    @property
    def anomalous(self) -> bool:
        return self.z >= Z_THRESHOLD

    @property
    def excess_ms(self) -> float:
        """The extra time in the window, in ms: the rise of the typical span (or hop) over the
        baseline median, times the window's spans. A robust z says how unusual a rise is, this
        how much time it cost: a 10 ms rise on a very steady hop is as unusual as a 2 s one."""
        rise = max(self.window_quantile_ms - self.baseline_median_ms, 0.0)
        return rise * self.window_spans

    def to_finding(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "service": self.service,
            "baseline_spans": self.baseline_spans,
            "window_spans": self.window_spans,
            "baseline_median_ms": round(self.baseline_median_ms, 3),
            "window_p75_ms": round(self.window_quantile_ms, 3),
            "z": round(self.z, 3),
            "trace_ids": list(self.trace_ids),
        }


def latency_stats(
    baseline: Sequence[SpanView], window: Sequence[SpanView]
) -> dict[str, LatencyStat]:
    """Per service, the robust z of the window's upper-quartile exclusive time against the
    baseline's exclusive times; services with too few baseline spans are skipped."""
    base = _by_service(exclusive_times(baseline))
    stats: dict[str, LatencyStat] = {}
    for service, items in sorted(_by_service(exclusive_times(window)).items()):
        base_times = [t for _, t in base.get(service, [])]
        summary = robust_baseline(base_times) if len(base_times) >= MIN_BASELINE_SPANS else None
        if summary is None:
            continue
        times = sorted(t for _, t in items)
        typical = times[int(WINDOW_QUANTILE * (len(times) - 1))]
        slowest = sorted(items, key=lambda it: (-it[1], it[0].trace_id, it[0].span_id))
        traces = tuple(dict.fromkeys(s.trace_id for s, _ in slowest))[:MAX_EXAMPLES]
        stats[service] = LatencyStat(
            service=service,
            baseline_spans=len(base_times),
            window_spans=len(times),
            baseline_median_ms=summary.median,
            window_quantile_ms=typical,
            z=directional_z(typical, summary, "up"),
            trace_ids=traces,
        )
    return stats


def _by_service(
    items: Iterable[tuple[SpanView, float]],
) -> dict[str, list[tuple[SpanView, float]]]:
    grouped: dict[str, list[tuple[SpanView, float]]] = defaultdict(list)
    for span, value in items:
        grouped[span.service].append((span, value))
    return grouped


# -- hop gaps: the network and queueing time between a caller's client span and the callee ----


@dataclass(frozen=True)
class Hop:
    """A call from one service to another: the caller's span and its callee-side child, and
    the time the callee did not see (caller duration minus callee duration)."""

    caller: str
    callee: str
    trace_id: str
    gap_ms: float


def hops(spans: Sequence[SpanView]) -> list[Hop]:
    """Every cross-service call whose caller span has that one child: its gap is time spent
    between the services (network, connection pools, queues), attributed to the callee side.
    A caller span with several children overlaps them and has no single gap."""
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    children = _children(spans)
    found = []
    for span in spans:
        if span.parent_id is None:
            continue
        parent = by_id.get((span.trace_id, span.parent_id))
        if parent is None or parent.service == span.service:
            continue
        if len(children.get((parent.trace_id, parent.span_id), ())) != 1:
            continue
        gap = max(parent.duration_ms - span.duration_ms, 0.0)
        found.append(Hop(parent.service, span.service, span.trace_id, gap))
    return found


def hop_stats(baseline: Sequence[SpanView], window: Sequence[SpanView]) -> dict[str, LatencyStat]:
    """Per callee, the robust z of the window's upper-quartile hop gap against the baseline's.

    A delay on a service's network shows on the hops into it and on the hops out of it; the
    hops out are its callees' only when those callees are called by nothing else. A callee
    with fewer than MIN_BASELINE_SPANS baseline hops is compared with the hops into every
    service (hop time is mostly the network's). A callee is scored twice: over every hop into
    it, then without the hops from callers that are anomalous callees themselves (their own
    delay explains the hop); the second score stands.
    """
    base, win = hops(baseline), hops(window)
    first = _hop_scores(base, win, frozenset())
    delayed = frozenset(s for s, stat in first.items() if stat.anomalous)
    return _hop_scores(base, win, delayed)


def _hop_scores(
    base: Sequence[Hop], win: Sequence[Hop], delayed: frozenset[str]
) -> dict[str, LatencyStat]:
    base_by: dict[str, list[float]] = defaultdict(list)
    win_by: dict[str, list[Hop]] = defaultdict(list)
    for hop in base:
        if hop.caller not in delayed or hop.caller == hop.callee:
            base_by[hop.callee].append(hop.gap_ms)
    for hop in win:
        if hop.caller not in delayed:
            win_by[hop.callee].append(hop)
    # Hop time is mostly the network's: a callee with too few baseline hops of its own is
    # compared with the hops into every service.
    pooled = [gap for gaps in base_by.values() for gap in gaps]
    stats: dict[str, LatencyStat] = {}
    for callee, items in sorted(win_by.items()):
        times = base_by.get(callee, [])
        if len(times) < MIN_BASELINE_SPANS:
            times = pooled
        summary = robust_baseline(times) if len(times) >= MIN_BASELINE_SPANS else None
        if summary is None:
            continue
        gaps = sorted(h.gap_ms for h in items)
        typical = gaps[int(WINDOW_QUANTILE * (len(gaps) - 1))]
        slowest = sorted(items, key=lambda h: (-h.gap_ms, h.trace_id))
        stats[callee] = LatencyStat(
            service=callee,
            baseline_spans=len(times),
            window_spans=len(gaps),
            baseline_median_ms=summary.median,
            window_quantile_ms=typical,
            z=directional_z(typical, summary, "up"),
            trace_ids=tuple(dict.fromkeys(h.trace_id for h in slowest))[:MAX_EXAMPLES],
            kind="hop_gap",
        )
    return stats


def trace_latency(
    baseline: Sequence[SpanView], window: Sequence[SpanView]
) -> dict[str, LatencyStat]:
    """Per service, the stronger of its own span time and the time on the hops into it."""
    own, hop = latency_stats(baseline, window), hop_stats(baseline, window)
    merged: dict[str, LatencyStat] = {}
    for service in sorted(set(own) | set(hop)):
        found = [s for s in (own.get(service), hop.get(service)) if s is not None]
        merged[service] = max(found, key=lambda s: s.z)
    return merged
