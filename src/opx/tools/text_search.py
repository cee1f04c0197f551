"""Plain-text matching: a tokeniser that keeps compound names, and a small BM25 index."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

# A compound name such as ``orders-db`` or ``PetSearch_AWS::ECS::Fargate``: words joined by
# punctuation that names use. It is indexed whole *and* as its parts, so both match.
_COMPOUND = re.compile(r"[a-z0-9]+(?:[-_.:/]+[a-z0-9]+)+")
_WORD = re.compile(r"[a-z0-9]+")

STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "may",
        "might",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "should",
        "so",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    }
)

K1 = 1.5
B = 0.75


def tokenize(text: str) -> list[str]:
    """Lower-cased words without stop words, plus every compound name joined as written."""
    lowered = text.lower()
    words = [w for w in _WORD.findall(lowered) if w not in STOP_WORDS]
    return words + _COMPOUND.findall(lowered)


def query_terms(text: str) -> list[str]:
    """The distinct tokens of a query, in first-seen order."""
    return list(dict.fromkeys(tokenize(text)))


@dataclass(frozen=True)
class Hit:
    index: int
    score: float


class Bm25Index:
    """Okapi BM25 (k1=1.5, b=0.75) over a fixed list of texts, with a non-negative idf."""

    def __init__(self, texts: Sequence[str]) -> None:
        self._counts = [Counter(tokenize(t)) for t in texts]
        self._lengths = [sum(c.values()) for c in self._counts]
        total = sum(self._lengths)
        self._avg_length = total / len(texts) if texts and total else 1.0
        self._df: Counter[str] = Counter()
        for counts in self._counts:
            self._df.update(counts.keys())

    def __len__(self) -> int:
        return len(self._counts)

    def idf(self, term: str) -> float:
        n, df = len(self._counts), self._df.get(term, 0)
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def score(self, index: int, terms: Sequence[str]) -> float:
        counts, length = self._counts[index], self._lengths[index]
        norm = K1 * (1.0 - B + B * length / self._avg_length)
        total = 0.0
        for term in terms:
            tf = counts.get(term, 0)
            if tf:
                total += self.idf(term) * tf * (K1 + 1.0) / (tf + norm)
        return total

    def search(self, query: str) -> list[Hit]:
        """Every text sharing a term with ``query``, unordered; empty when none does."""
        terms = query_terms(query)
        hits = []
        for index, counts in enumerate(self._counts):
            if any(term in counts for term in terms):
                hits.append(Hit(index, self.score(index, terms)))
        return hits


def excerpt(text: str, query: str, limit: int = 400) -> str:
    """At most ``limit`` characters of ``text`` (whitespace collapsed), starting near the first
    query term it contains so the excerpt shows why the section matched."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    lowered = flat.lower()
    found = [lowered.find(t) for t in query_terms(query)]
    first = min((p for p in found if p >= 0), default=0)
    start = _word_start(flat, max(0, first - limit // 4))
    prefix = "…" if start > 0 else ""
    room = limit - len(prefix)
    body = flat[start:]
    if len(body) > room:
        body = body[: room - 1].rstrip() + "…"
    return prefix + body


def _word_start(text: str, position: int) -> int:
    # Start an excerpt at a word boundary rather than in the middle of a word.
    if position == 0:
        return 0
    space = text.find(" ", position)
    return position if space < 0 else space + 1
