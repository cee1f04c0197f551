"""The signal analyst's hypothesis in words: its description, evidence, contradicting evidence,
recommendations and findings, from what it observed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from opx.agents.local.accounting import FAILURES, TIME
from opx.agents.local.logs import TemplateStat
from opx.agents.local.observation import Observed
from opx.agents.local.robust import ANOMALOUS, Z_THRESHOLD
from opx.agents.local.series_scores import SeriesScore
from opx.agents.local.service_signal import ServiceSignal
from opx.agents.local.topology import Explained
from opx.domain.hypothesis import Evidence, Recommendation, RecommendationType
from opx.domain.incident import Incident
from opx.tools.records import iso_z

MAX_FINDINGS = 20


def headline(signal: ServiceSignal) -> str:
    """One sentence on the strongest evidence of a service."""
    dominant = signal.dominant()
    top = signal.top_of(traffic=dominant == "traffic")
    if dominant in ("metrics", "traffic") and top is not None:
        return top.summary()
    if (
        dominant == "traces"
        and signal.origin is not None
        and (signal.latency is None or signal.origin.z >= signal.latency.z)
    ):
        return (
            f"it is the deepest failing span in {signal.origin.window_count} traces "
            f"({signal.origin.expected:.1f} expected)"
        )
    if dominant == "traces" and signal.latency is not None:
        return (
            f"its own span time rose to {signal.latency.window_quantile_ms:.4g} ms (p75) from a "
            f"baseline median of {signal.latency.baseline_median_ms:.4g} ms"
        )
    if signal.log is not None and signal.log.kind == "quiet":
        return (
            f"its operation {signal.log.operation} logged {signal.log.window_count} ordinary "
            f"lines where its calls would have logged {signal.log.expected:.0f}"
        )
    if signal.log is not None:
        kind = "new" if signal.log.new else "surging"
        return f"a {kind} error log template appeared {signal.log.window_count} times"
    return "it is anomalous"


def describe(
    incident: Incident,
    top: Explained,
    signal: ServiceSignal,
    candidates: Sequence[Explained],
    path: list[str] | None,
    accounted: str = "",
) -> str:
    text = f"{top.node} is the most likely origin: {headline(signal)}."
    if accounted:
        text += f" {accounted}."
    symptoms = [c.node for c in candidates if c.explained_by is not None and c.node != top.node]
    if symptoms:
        text += (
            f" {len(symptoms)} other anomalous service(s) are explained as symptoms of anomalous "
            f"callees ({', '.join(symptoms[:5])})."
        )
    if path and len(path) > 1:
        text += f" Propagation path to {incident.service}: {' -> '.join(path)}."
    return text


_IMPACT_UNITS = {TIME: "extra request-seconds", FAILURES: "failed requests"}


def accounted(observed: Observed, service: str, incident: Incident) -> str:
    """One phrase on how much of the alarm's impact ``service`` accounts for ("" if unknown)."""
    accounting = observed.accounting
    share = accounting.coverage.get(service)
    if share is None or service == incident.service or accounting.dimension is None:
        return ""
    units = _IMPACT_UNITS[accounting.dimension]
    return (
        f"Its {units} while the alarm was active ({accounting.impacts[service]:.4g}) account for "
        f"{share:.0%} of {incident.service}'s ({accounting.alarm_impact or 0.0:.4g})"
    )


def _alarm_evidence(observed: Observed, service: str, incident: Incident) -> Evidence | None:
    """How the candidate's anomaly lines up with the alarm's, when the analysis was anchored."""
    anchor = observed.anchor
    if anchor is None:
        return None
    active = sum(anchor.active)
    summary = (
        f"the alarm series {anchor.series_id} was active at {active} of its {len(anchor.active)} "
        f"window points (peak robust z {anchor.peak:.1f}); anomalies are scored at those points "
        "against both the baseline and each series' level while the alarm was quiet"
    )
    phrase = accounted(observed, service, incident)
    if phrase:
        summary += f"; {service}: {phrase[0].lower()}{phrase[1:]}"
    return Evidence(
        tool="get_metrics",
        query=f"alarm series {anchor.series_id}, window=[{iso_z(incident.window_start)}, "
        f"{iso_z(incident.window_end)})",
        record_ids=[anchor.series_id],
        summary=summary,
    )


def _series_evidence(score: SeriesScore, incident: Incident, lookback: timedelta) -> Evidence:
    query = (
        f"service={score.service} metric={score.metric} stat={score.stat} "
        f"window=[{iso_z(incident.window_start)}, {iso_z(incident.window_end)}) "
        f"baseline={lookback.total_seconds() / 3600:g}h before"
    )
    summary = (
        f"{score.service}: {score.summary()}, bad direction {score.direction}; window extreme "
        f"{score.window_extreme:.4g}" + (f" at {score.extreme_at}" if score.extreme_at else "")
    )
    return Evidence(tool="get_metrics", query=query, record_ids=[score.series_id], summary=summary)


def _log_evidence(stat: TemplateStat) -> Evidence:
    if stat.kind == "quiet":
        return Evidence(
            tool="search_logs",
            query=f"service={stat.service} lines logged by calls of {stat.operation}",
            record_ids=[stat.template_id, *stat.event_ids],
            summary=(
                f"{stat.service}'s operation {stat.operation} logged {stat.window_count} "
                f"ordinary lines in the window where its calls logged {stat.expected:.1f} at the "
                f"baseline's lines per call (z {stat.z:.1f}): its code stops short"
            ),
        )
    per = f" per call of {stat.operation}" if stat.operation else ""
    kind = "new" if stat.new else "surging"
    return Evidence(
        tool="search_logs",
        query=f"service={stat.service} error events, template {stat.template_id}",
        record_ids=[stat.template_id, *stat.event_ids],
        summary=(
            f"{kind} error template in {stat.service}: {stat.window_count} events in the window "
            f"vs {stat.expected:.1f} expected{per} (z {stat.z:.1f}): {stat.template[:160]}"
        ),
    )


def _trace_evidence(signal: ServiceSignal) -> list[Evidence]:
    items: list[Evidence] = []
    origin, latency = signal.origin, signal.latency
    if origin is not None and origin.anomalous:
        items.append(
            Evidence(
                tool="get_traces",
                query=f"spans in the window, error origin service={origin.service}",
                record_ids=list(origin.trace_ids),
                summary=(
                    f"{origin.service} is the deepest failing span in {origin.window_count} traces "
                    f"({origin.expected:.1f} expected from the baseline, z {origin.z:.1f})"
                ),
            )
        )
    if latency is not None and latency.anomalous:
        items.append(
            Evidence(
                tool="get_traces",
                query=f"spans in the window, exclusive time of service={latency.service}",
                record_ids=list(latency.trace_ids),
                summary=(
                    f"{latency.service} own span time p75 {latency.window_quantile_ms:.4g} ms vs "
                    f"baseline median {latency.baseline_median_ms:.4g} ms (z {latency.z:.1f})"
                ),
            )
        )
    return items


def _signal_evidence(
    signal: ServiceSignal, incident: Incident, lookback: timedelta
) -> list[Evidence]:
    items = [_series_evidence(s, incident, lookback) for s in signal.series[:3] if s.anomalous]
    if signal.log is not None and signal.log.anomalous:
        items.append(_log_evidence(signal.log))
    items.extend(_trace_evidence(signal))
    return items


def supporting_evidence(
    incident: Incident,
    observed: Observed,
    signal: ServiceSignal,
    candidates: Sequence[Explained],
) -> list[Evidence]:
    items = _signal_evidence(signal, incident, observed.lookback)
    anchored = _alarm_evidence(observed, signal.service, incident)
    if anchored is not None:
        items.append(anchored)
    symptom = observed.signals.get(incident.service)
    if symptom is not None and symptom.service != signal.service and symptom.combined >= ANOMALOUS:
        items.append(
            Evidence(
                tool="get_service_graph",
                query=f"callees of {incident.service}",
                record_ids=[incident.service, signal.service],
                summary=(
                    f"{incident.service} is anomalous too ({headline(symptom)}), and it depends on "
                    f"{signal.service}: its anomaly is treated as a symptom"
                ),
            )
        )
    return items


def contradicting_evidence(observed: Observed, candidates: Sequence[Explained]) -> list[Evidence]:
    """Comparable candidates (and missing sources) that weaken the top one."""
    items: list[Evidence] = []
    top = candidates[0]
    for other in candidates[1:3]:
        if other.adjusted >= 0.5 * top.adjusted:
            sig = observed.signals[other.node]
            items.append(
                Evidence(
                    tool="get_metrics" if sig.top_series else "get_traces",
                    query=f"service={other.node}",
                    record_ids=[sig.top_series.series_id] if sig.top_series else [],
                    summary=(
                        f"{other.node} is comparably anomalous ({headline(sig)}) and not explained "
                        "by its callees"
                    ),
                )
            )
    for note in observed.gaps.notes:
        items.append(Evidence(tool="data_gaps", summary=note))
    return items


def recommendations(
    incident: Incident, signal: ServiceSignal, path: list[str] | None
) -> list[Recommendation]:
    items: list[Recommendation] = []
    top = signal.top_series
    start = iso_z(incident.window_start)
    if top is not None and top.anomalous:
        items.append(
            _advice(
                f"Review {top.metric} ({top.stat}) of {signal.service} from {start} on, and what "
                f"changed in {signal.service} around that time."
            )
        )
    if signal.log is not None and signal.log.anomalous and signal.log.kind == "quiet":
        items.append(
            _advice(
                f"Compare the code path of {signal.service}'s {signal.log.operation} with its "
                "usual log lines: calls still arrive but stop before them, as when an exception "
                "cuts them short."
            )
        )
    elif signal.log is not None and signal.log.anomalous:
        items.append(
            _advice(
                f"Read the {signal.service} error logs matching template {signal.log.template_id} "
                f'("{signal.log.template[:200]}") to find the failing operation.'
            )
        )
    if signal.origin is not None and signal.origin.anomalous:
        traces = ", ".join(signal.origin.trace_ids[:3])
        items.append(
            _advice(f"Inspect traces {traces}, where {signal.service} is the deepest failing span.")
        )
    if path and len(path) > 1:
        items.append(
            _advice(
                f"Check whether the symptoms of {incident.service} follow those of "
                f"{signal.service} along {' -> '.join(path)} before acting on the callers."
            )
        )
    return items


def _advice(text: str) -> Recommendation:
    return Recommendation(type=RecommendationType.INVESTIGATION, description=text[:600])


def findings(observed: Observed) -> dict[str, Any]:
    anomalies = [s.to_finding() for s in observed.series if s.anomalous][:MAX_FINDINGS]
    templates = [t.to_finding() for t in observed.templates if t.anomalous][:MAX_FINDINGS]
    traces = sorted(
        [o.to_finding() for o in observed.origins.values() if o.anomalous]
        + [lat.to_finding() for lat in observed.latency.values() if lat.anomalous],
        key=lambda f: (-float(f["z"]), str(f["service"]), str(f["kind"])),
    )[:MAX_FINDINGS]
    return {
        "anomalies": anomalies,
        "log_templates": templates,
        "trace_findings": traces,
        "ranking": [_rank_entry(observed, e) for e in observed.ranking[:10]],
        "scope": {
            "services": len(observed.signals),
            "graph": observed.graph is not None,
            "incident_in_graph": observed.scope is not None,
        },
        "series_scored": len(observed.series),
        "z_threshold": Z_THRESHOLD,
        "alarm": _alarm_finding(observed),
        "data_gaps": list(observed.gaps.notes),
    }


def _alarm_finding(observed: Observed) -> dict[str, Any]:
    anchor, accounting = observed.anchor, observed.accounting
    return {
        "anchored": anchor is not None,
        "series": None if anchor is None else anchor.series_id,
        "active_points": None if anchor is None else sum(anchor.active),
        "window_points": None if anchor is None else len(anchor.active),
        "peak_z": None if anchor is None else round(anchor.peak, 3),
        "impact_dimension": accounting.dimension,
        "impact": None if accounting.alarm_impact is None else round(accounting.alarm_impact, 6),
    }


def _rank_entry(observed: Observed, entry: Explained) -> dict[str, Any]:
    signal = observed.signals[entry.node]
    return {
        "service": entry.node,
        "score": round(entry.score, 4),
        "adjusted": round(entry.adjusted, 4),
        "explained_by": entry.explained_by,
        "depth": observed.depth.get(entry.node),
        "category": signal.category(),
        "top_series": signal.top_series.series_id if signal.top_series else None,
        "modalities": {k: round(v, 4) for k, v in signal.strengths().items()},
        "impact": _rounded(observed.accounting.impacts.get(entry.node)),
        "coverage": _rounded(observed.accounting.coverage.get(entry.node)),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
