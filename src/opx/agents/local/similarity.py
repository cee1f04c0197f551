"""Similarity helpers for the local analysts: tokens, TF-IDF cosine, service relations on the
call graph, the symptom fingerprint of an incident, incident similarity, and recognising
command-like text.

Similarity of a past incident to the current one (0..1), when the current symptoms could be
measured::

    recency × root × (0.20 relation + 0.40 symptoms + 0.25 text + 0.15 severity)

- ``relation``: how close the past incident's service (or its root-cause service, whichever is
  closer) is to the incident service on the call graph (:func:`relation_closeness`);
- ``symptoms``: overlap of the *symptom fingerprint* (the service and metric names of what is
  anomalous now around the incident service, weighted by anomaly strength) with the past
  incident's service, root-cause service and symptom text: a weighted TF-IDF cosine over name
  tokens plus metric-family markers, so "ThrottledRequests" meets "throttled" and "5xx" meets
  "errors" (:func:`fingerprint_similarities`);
- ``text``: TF-IDF cosine of the incident's title and detections with the past title and
  symptoms;
- ``severity``: 1 for the same severity, less per level apart;
- ``root``: ``0.25 + 0.75 × activity`` where activity is how anomalous the past root-cause
  service is now, less what an anomalous callee explains (:class:`Fingerprint`); 0.6 when that
  service was not measured. A past cause that is quiet now counts a quarter;
- ``recency``: a mild decay, a year-old incident keeps 90 %.

A past incident that shares neither text nor symptoms (both below 0.1) is halved: the same
service alone is not the same failure. Without a fingerprint (metrics unreadable or absent) the
text-led form ``recency × (0.30 relation + 0.55 text + 0.15 severity)`` is used.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from opx.agents.local.families import metric_family
from opx.agents.local.robust import ANOMALOUS, Z_THRESHOLD
from opx.agents.local.series_scores import SeriesScore
from opx.agents.local.topology import Topology, ancestors, descendants, discount_symptoms
from opx.tools.text_search import STOP_WORDS as BASE_STOP_WORDS

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[a-z][a-z0-9]*")

# Words that say nothing about a failure, on top of the retrieval index's stop words.
STOP_WORDS = BASE_STOP_WORDS | {"after", "before", "during", "over", "under", "via", "per"}

# Suffixes stripped so that "throttled", "throttling" and "throttle" share one token.
_SUFFIXES = ("ing", "ed", "es", "s", "e")


def stem(word: str) -> str:
    """A deliberately small suffix stripper: good enough to match inflections of one word."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith("ss"):
                return word
            return word[: -len(suffix)]
    return word


def tokenize(text: str) -> list[str]:
    """Stemmed lower-case words of ``text``; camelCase and punctuation split, stop words and
    pure numbers dropped, so rule ids and metric names compare with prose."""
    spaced = _CAMEL.sub(" ", text)
    words = _WORD.findall(spaced.lower())
    return [stem(w) for w in words if w not in STOP_WORDS and len(w) > 1]


_RAW_WORD = re.compile(r"[A-Za-z0-9]+")
# Marks a metric family in a token list; tokenize never produces a token with this prefix.
FAMILY_MARK = "~"


def symptom_tokens(text: str) -> list[str]:
    """The tokens of ``text`` plus one marker per metric family its words name (errors,
    latency, saturation, ...), so that differently worded symptoms of one kind meet."""
    words = _RAW_WORD.findall(_CAMEL.sub(" ", text))
    families = {metric_family(w) for w in words} - {"UNKNOWN"}
    return tokenize(text) + [FAMILY_MARK + f.lower() for f in sorted(families)]


def generic_tokens(names: Sequence[str], share: float = 0.4) -> frozenset[str]:
    """Tokens found in more than ``share`` of the service names (resource types, account-wide
    prefixes): they say nothing about which service is meant."""
    if not names:
        return frozenset()
    counts: Counter[str] = Counter()
    for name in names:
        counts.update(set(tokenize(name)))
    return frozenset(t for t, c in counts.items() if c > share * len(names))


def strings_in(value: Any) -> list[str]:
    """Every string inside a JSON-like value, in a stable order (dict keys sorted)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for key in sorted(value, key=str) for s in strings_in(value[key])]
    if isinstance(value, list | tuple):
        return [s for item in value for s in strings_in(item)]
    return []


def _idf(docs: Sequence[Sequence[str]]) -> dict[str, float]:
    # Smoothed idf stays positive, so a term present in every document still counts a little.
    df: Counter[str] = Counter()
    for doc in docs:
        df.update(set(doc))
    n = len(docs)
    return {term: math.log((1.0 + n) / (1.0 + count)) + 1.0 for term, count in df.items()}


def _vector(doc: Sequence[str], idf: Mapping[str, float]) -> dict[str, float]:
    counts = Counter(doc)
    return {term: (1.0 + math.log(tf)) * idf.get(term, 0.0) for term, tf in counts.items()}


def cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Cosine of two sparse vectors; 0 when either is empty."""
    dot = sum(weight * b[term] for term, weight in a.items() if term in b)
    norm = math.sqrt(sum(w * w for w in a.values())) * math.sqrt(sum(w * w for w in b.values()))
    return dot / norm if norm else 0.0


def tfidf_similarities(query: Sequence[str], docs: Sequence[Sequence[str]]) -> list[float]:
    """TF-IDF cosine of ``query`` against each document, idf taken over documents and query."""
    idf = _idf([*docs, query])
    q = _vector(query, idf)
    return [min(1.0, cosine(q, _vector(doc, idf))) for doc in docs]


def weighted_similarities(query: Mapping[str, float], docs: Sequence[Sequence[str]]) -> list[float]:
    """Cosine of a weighted token set against each document, both idf-weighted (idf over the
    documents and the query's tokens)."""
    idf = _idf([*docs, sorted(query)])
    q = {term: weight * idf.get(term, 0.0) for term, weight in query.items() if weight > 0}
    return [min(1.0, cosine(q, _vector(doc, idf))) for doc in docs]


class RelationKind(StrEnum):
    SAME = "SAME"
    CALLEE = "CALLEE"
    CALLER = "CALLER"
    UNRELATED = "UNRELATED"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class Relation:
    """How a service relates to the incident service; ``hops`` is the call distance."""

    kind: RelationKind
    hops: int = 0

    def describe(self) -> str:
        if self.kind in (RelationKind.CALLEE, RelationKind.CALLER):
            return f"{self.kind.value.lower()} at {self.hops} hop(s)"
        return self.kind.value.lower()


def service_relation(
    graph: Topology, incident_service: str, other: str | None, max_hops: int = 6
) -> Relation:
    """Where ``other`` sits relative to the incident service on the call graph (an edge means
    source calls target); UNKNOWN when that cannot be told."""
    if other is None:
        return Relation(RelationKind.UNKNOWN)
    if other == incident_service:
        return Relation(RelationKind.SAME)
    if graph.empty or other not in graph or incident_service not in graph:
        return Relation(RelationKind.UNKNOWN)
    down = descendants(graph, incident_service)
    if other in down and down[other] <= max_hops:
        return Relation(RelationKind.CALLEE, down[other])
    up = ancestors(graph, incident_service)
    if other in up and up[other] <= max_hops:
        return Relation(RelationKind.CALLER, up[other])
    return Relation(RelationKind.UNRELATED)


# The text-led weights, used when no symptom fingerprint could be measured.
RELATION_WEIGHT = 0.30
TEXT_WEIGHT = 0.55
SEVERITY_WEIGHT = 0.15
# The weights with a fingerprint: measured symptoms weigh most (see the module docstring).
FP_RELATION_WEIGHT = 0.20
FP_SYMPTOM_WEIGHT = 0.40
FP_TEXT_WEIGHT = 0.25
FP_SEVERITY_WEIGHT = 0.15
ROOT_FLOOR = 0.25
ROOT_UNKNOWN = 0.6
RECENCY_HALF_LIFE_DAYS = 365.0
RECENCY_FLOOR = 0.8
TEXT_GATE = 0.1
# Request volume follows load from callers: it counts for a third of a fault.
TRAFFIC_SHARE = 0.3
# How much of a service's anomaly an equally anomalous callee explains away.
EXPLAINED_DISCOUNT = 0.6


@dataclass(frozen=True)
class Fingerprint:
    """What is anomalous now around the incident service.

    ``activity`` holds, for every measured service, how anomalous it is (0..1, see
    :func:`anomaly_activity`; request volume at a third), less ``EXPLAINED_DISCOUNT`` times
    what its anomalous callees explain; ``tokens`` the name and metric-family tokens of the
    anomalous series, weighted by strength."""

    activity: Mapping[str, float]
    tokens: Mapping[str, float]
    anomalous: tuple[SeriesScore, ...]

    def root_activity(self, service: str | None) -> float | None:
        """How anomalous ``service`` is now, or None when it was not measured."""
        if service is None:
            return None
        return self.activity.get(service)


def anomaly_activity(z: float) -> float:
    """A 0..1 reading of a robust z that stays near 0 for ordinary noise (0.14 at z 2.5) and
    is 0.5 at the anomaly threshold and 0.94 at twice it: steeper than the anomaly strength, so
    that a quiet service reads as quiet."""
    if z <= 0:
        return 0.0
    return z**4 / (z**4 + Z_THRESHOLD**4)


def symptom_fingerprint(
    scores: Sequence[SeriesScore], graph: Topology, generic: frozenset[str] = frozenset()
) -> Fingerprint:
    """The fingerprint of scored series (see :class:`Fingerprint`); ``generic`` tokens such as
    resource types are left out."""
    fault: dict[str, float] = {}
    load: dict[str, float] = {}
    tokens: dict[str, float] = {}
    for score in scores:
        traffic = metric_family(score.metric) == "TRAFFIC"
        bucket = load if traffic else fault
        bucket[score.service] = max(bucket.get(score.service, 0.0), anomaly_activity(score.z))
        if not score.anomalous:
            continue
        weight = score.strength * (TRAFFIC_SHARE if traffic else 1.0)
        for token in [*tokenize(score.service), *symptom_tokens(score.metric)]:
            if token not in generic:
                tokens[token] = max(tokens.get(token, 0.0), weight)
    services = sorted(set(fault) | set(load))
    strengths = {s: max(fault.get(s, 0.0), TRAFFIC_SHARE * load.get(s, 0.0)) for s in services}
    faults = {s: fault.get(s, 0.0) for s in services}
    explained = discount_symptoms(graph, strengths, faults=faults, min_explaining=ANOMALOUS)
    activity = {
        s: round(strengths[s] * (1.0 - EXPLAINED_DISCOUNT * explained[s].explanation), 4)
        for s in services
    }
    anomalous = tuple(s for s in scores if s.anomalous)
    return Fingerprint(activity, tokens, anomalous)


def past_symptom_tokens(
    service: str,
    root_service: str | None,
    symptoms: Sequence[str],
    generic: frozenset[str] = frozenset(),
) -> list[str]:
    """What a past incident says about its symptoms: its service, its root-cause service and
    its symptom text, as tokens comparable with a fingerprint."""
    tokens = [*tokenize(service), *tokenize(root_service or "")]
    for symptom in symptoms:
        tokens.extend(symptom_tokens(symptom))
    return [t for t in tokens if t not in generic]


def fingerprint_similarities(
    fingerprint: Fingerprint, docs: Sequence[Sequence[str]]
) -> list[float]:
    """How well each past incident's symptom tokens match the fingerprint (0..1)."""
    if not fingerprint.tokens:
        return [0.0 for _ in docs]
    return weighted_similarities(fingerprint.tokens, docs)


def relation_closeness(relation: Relation) -> float:
    """How close a service is to the incident service: same 1, callee decaying with hops,
    direct caller 0.5, unknown 0.2, unrelated 0."""
    if relation.kind is RelationKind.SAME:
        return 1.0
    if relation.kind is RelationKind.CALLEE:
        return max(0.3, 0.8 - 0.15 * (relation.hops - 1))
    if relation.kind is RelationKind.CALLER:
        return 0.5 if relation.hops <= 1 else 0.25
    if relation.kind is RelationKind.UNKNOWN:
        return 0.2
    return 0.0


_SEVERITY_WORDS = {"CRITICAL": 1, "HIGH": 2, "MEDIUM": 3, "LOW": 4}


def severity_rank(value: str | None) -> int | None:
    """1..4 for SEV1..SEV4 (or CRITICAL..LOW); None when unreadable."""
    if not value:
        return None
    text = value.strip().upper()
    if text in _SEVERITY_WORDS:
        return _SEVERITY_WORDS[text]
    digits = "".join(ch for ch in text if ch.isdigit())
    return int(digits) if digits and 1 <= int(digits) <= 4 else None


def severity_match(a: str | None, b: str | None) -> float:
    """1 for the same severity, less per level apart; 0.5 when either is unknown."""
    left, right = severity_rank(a), severity_rank(b)
    if left is None or right is None:
        return 0.5
    return max(0.0, 1.0 - 0.35 * abs(left - right))


def recency_factor(age_days: float | None) -> float:
    """A mild decay in [RECENCY_FLOOR, 1]; unknown ages get the midpoint."""
    if age_days is None:
        return (1.0 + RECENCY_FLOOR) / 2.0
    decay = math.pow(0.5, max(0.0, age_days) / RECENCY_HALF_LIFE_DAYS)
    return RECENCY_FLOOR + (1.0 - RECENCY_FLOOR) * decay


def root_factor(activity: float | None) -> float:
    """How much a past incident counts given how anomalous its root cause is now."""
    if activity is None:
        return ROOT_UNKNOWN
    return ROOT_FLOOR + (1.0 - ROOT_FLOOR) * min(1.0, max(0.0, activity))


def incident_similarity(
    relation: Relation,
    text: float,
    severity: float,
    age_days: float | None,
    *,
    symptoms: float | None = None,
    root_activity: float | None = None,
) -> float:
    """The similarity (0..1) of a past incident to the current one (see the module docstring);
    ``symptoms`` None means no fingerprint, and ``root_activity`` is then ignored."""
    closeness = relation_closeness(relation)
    if symptoms is None:
        base = RELATION_WEIGHT * closeness + TEXT_WEIGHT * text + SEVERITY_WEIGHT * severity
        if text < TEXT_GATE:
            base *= 0.5
        return min(1.0, base * recency_factor(age_days))
    base = (
        FP_RELATION_WEIGHT * closeness
        + FP_SYMPTOM_WEIGHT * symptoms
        + FP_TEXT_WEIGHT * text
        + FP_SEVERITY_WEIGHT * severity
    )
    if max(text, symptoms) < TEXT_GATE:
        base *= 0.5
    return min(1.0, base * root_factor(root_activity) * recency_factor(age_days))


_COMMAND_PATTERNS = (
    re.compile(r"`"),
    re.compile(r"(?:^|\s)\$\s*\w"),
    re.compile(r"&&|\|\||;\s*\w+\s+-"),
    re.compile(r"\s\|\s*\w"),
    re.compile(r"(?:^|\s)--?[a-zA-Z][\w-]*(?:=|\s+\S)"),
    re.compile(
        r"(?:^|[.:;(]\s*)(?:aws|kubectl|sudo|curl|wget|ssh|scp|terraform|helm|docker|systemctl|"
        r"psql|mysql|redis-cli|rm|chmod|chown|git|eksctl|az|gcloud)\s+[a-z0-9-]",
        re.IGNORECASE,
    ),
)


def is_command_like(text: str) -> bool:
    """True when ``text`` reads like a shell command or an execution step rather than advice."""
    return any(pattern.search(text) for pattern in _COMMAND_PATTERNS)
