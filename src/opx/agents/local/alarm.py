"""The alarm an incident reports: the series a detection names, else one whose metric the
alarm's text mentions, else the incident service's most anomalous one; and its profile (when it
was active in the window), which anchors the scoring of every other series."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opx.agents.local.anchor import AlarmProfile, alarm_profile
from opx.agents.local.families import metric_family
from opx.agents.local.robust import resolve_direction
from opx.agents.local.series_scores import score_series
from opx.domain.incident import Incident

_AVERAGE_STATS = frozenset({"average", "avg", "mean"})


@dataclass(frozen=True)
class AlarmRef:
    """The series the incident's alarm watches, as far as the incident says: ``metric`` and
    ``stat`` when a detection names them, else ``text`` (title, rule ids, alarm names) in which
    a metric name of the service may appear."""

    service: str
    metric: str | None = None
    stat: str | None = None
    text: str = ""


def incident_alarm(incident: Incident) -> AlarmRef:
    """The alarm of an incident: the first detection naming a series of the incident service
    ("service|metric|stat" or separate service, metric and stat fields)."""
    texts = [incident.title or ""]
    for detection in incident.evidence_bundle.detections:
        texts.extend(str(detection.get(key) or "") for key in ("rule_id", "description"))
        named = _named_series(detection, incident.service)
        if named is not None:
            return AlarmRef(incident.service, named[0], named[1], " ".join(texts))
    return AlarmRef(incident.service, text=" ".join(texts))


def _named_series(detection: Mapping[str, Any], service: str) -> tuple[str, str | None] | None:
    metric = detection.get("metric")
    if not isinstance(metric, str) or not metric.strip():
        return None
    parts = [part.strip() for part in metric.split("|")]
    if len(parts) >= 2:
        owner, name, stat = parts[0], parts[1], parts[2] if len(parts) > 2 else None
    else:
        owner, name = str(detection.get("service") or service), parts[0]
        stat = str(detection["stat"]) if detection.get("stat") else None
    return (name, stat or None) if owner == service and name else None


def anchor_profile(
    alarm: AlarmRef,
    baseline: Mapping[str, Mapping[str, Any]],
    window: Mapping[str, Mapping[str, Any]],
    directions: Mapping[str, str],
) -> AlarmProfile | None:
    """The profile of the alarm's series: the one the alarm names, else one whose metric its
    text mentions, else the alarm service's most anomalous series other than request volume."""
    own = {
        sid: item
        for sid, item in sorted(window.items())
        if item.get("service") == alarm.service and sid in baseline
    }
    sid = _alarm_series(alarm, own, baseline, directions)
    if sid is None:
        return None
    item = own[sid]
    direction = resolve_direction(str(item.get("metric", "")), directions)
    return alarm_profile(
        sid, baseline[sid]["values"], item["timestamps"], item["values"], direction
    )


def _alarm_series(
    alarm: AlarmRef,
    own: Mapping[str, Mapping[str, Any]],
    baseline: Mapping[str, Mapping[str, Any]],
    directions: Mapping[str, str],
) -> str | None:
    # A text that mentions "requests" is not an alarm on request volume: only a detection that
    # names such a series makes it the alarm's.
    names = sorted(
        {
            name
            for item in own.values()
            if (name := str(item.get("metric", ""))) and metric_family(name) != "TRAFFIC"
        },
        key=lambda n: (-len(n), n),
    )
    wanted = alarm.metric or next((n for n in names if _mentions(alarm.text, n)), None)
    if wanted is not None:
        matching = [
            sid
            for sid, item in own.items()
            if str(item.get("metric", "")).lower() == wanted.lower()
        ]
        if matching:
            return _preferred_stat(matching, own, alarm.stat)
    scored = score_series([baseline[sid] for sid in own], list(own.values()), directions)
    faults = [s for s in scored if metric_family(s.metric) != "TRAFFIC"]
    return faults[0].series_id if faults else None


def _mentions(text: str, name: str) -> bool:
    pattern = rf"(?<![a-z0-9]){re.escape(name.lower())}(?![a-z0-9])"
    return re.search(pattern, text.lower()) is not None


def _preferred_stat(
    matching: Sequence[str], own: Mapping[str, Mapping[str, Any]], stat: str | None
) -> str:
    """The series with the named statistic, else an average, else the first by id."""

    def stat_of(sid: str) -> str:
        return str(own[sid].get("stat", "")).lower()

    if stat is not None:
        named = [sid for sid in matching if stat_of(sid) == stat.lower()]
        if named:
            return named[0]
    averages = [sid for sid in matching if stat_of(sid) in _AVERAGE_STATS]
    return (averages or list(matching))[0]
