"""Text and feature similarity helpers for the local analysts: tokens, TF-IDF cosine, service
relations on the call graph, incident similarity, and recognising command-like text."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from opx.agents.local.topology import Topology, ancestors, descendants
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


# Incident similarity: symptoms weigh most, the service relation next, severity least. Recency
# multiplies the sum mildly (a year-old incident keeps 90 % of its weight), and a past incident
# that shares no symptom at all is halved: the same service alone is not the same failure.
RELATION_WEIGHT = 0.30
TEXT_WEIGHT = 0.55
SEVERITY_WEIGHT = 0.15
RECENCY_HALF_LIFE_DAYS = 365.0
RECENCY_FLOOR = 0.8
TEXT_GATE = 0.1


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


def incident_similarity(
    relation: Relation, text: float, severity: float, age_days: float | None
) -> float:
    """The weighted similarity (0..1) of a past incident to the current one."""
    base = (RELATION_WEIGHT * relation_closeness(relation) + TEXT_WEIGHT * text
            + SEVERITY_WEIGHT * severity)
    if text < TEXT_GATE:
        base *= 0.5
    return min(1.0, base * recency_factor(age_days))


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
