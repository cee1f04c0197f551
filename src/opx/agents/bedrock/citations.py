"""The citation check: every evidence item of a hypothesis must refer to data the agent was given
or to a tool result recorded in its trace. Pure: no I/O.

An item is verified when each of its record ids is one the agent was given (its pre-computed
evidence, the earlier hypotheses) or one a tool returned, matched as a whole value: a JSON tool
result is parsed and its string and number values (and keys) are the ids it holds; other text is
searched for the id standing alone between delimiters (quotes, spaces, brackets, commas). So an
invented ``log-1`` does not pass because a tool returned ``log-12``. An item without ids is
verified only when the same (tool, summary) item was in the given evidence: restating evidence is
fine, asserting new facts with nothing to check them against is not.

A hypothesis with unverified items is kept, so a human can see what it claimed, but flagged
``HALLUCINATION_DETECTED``, downgraded to PARTIAL, and its confidence lowered: halved, then scaled
by the share of its items that do check out. Half, because a chain of evidence with one invented
link cannot be trusted above half its stated strength; scaled, because the more of it is invented
the less of it is evidence (all invented: confidence 0).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from opx.domain.errors import ErrorCode, ErrorInfo
from opx.domain.hypothesis import Evidence, Hypothesis, HypothesisStatus

PENALTY = 0.5
CONFIDENCE_DECIMALS = 4
MAX_LISTED = 10
MAX_SUMMARY = 80
# What may stand around an id in free text: ids themselves hold letters, digits and - _ . : / | #
_DELIMITERS = r"\s\"'`,;()\[\]{}<>="

ItemKey = tuple[str, str]


def item_key(tool: str, summary: str) -> ItemKey:
    """How an evidence item is recognised when restated: its tool and its summary, with runs
    of whitespace folded (a model may reflow text, not reword it)."""
    return tool.strip(), " ".join(summary.split())


@dataclass(frozen=True)
class Given:
    """What the agent was given to cite: record ids, and the evidence items themselves."""

    record_ids: frozenset[str] = frozenset()
    items: frozenset[ItemKey] = frozenset()


@dataclass(frozen=True)
class CitationReport:
    items: int
    unverified: int
    unknown: tuple[str, ...]  # record ids found in nothing given or fetched
    unsupported: tuple[str, ...]  # summaries of id-less items that were not given

    @property
    def verified(self) -> int:
        return self.items - self.unverified


def check_citations(
    hypothesis: Hypothesis, given: Given, tool_outputs: Collection[str]
) -> tuple[Hypothesis, CitationReport]:
    """``hypothesis`` unchanged when every item checks out; else flagged and lowered."""
    fetched = ToolValues(tool_outputs)
    items = [*hypothesis.evidence, *hypothesis.contradicting_evidence]
    unknown: list[str] = []
    unsupported: list[str] = []
    unverified = 0
    for item in items:
        missing = [i for i in item.record_ids if i not in given.record_ids and i not in fetched]
        bare = not item.record_ids and item_key(item.tool, item.summary) not in given.items
        unverified += bool(missing or bare)
        unknown.extend(i for i in missing if i not in unknown)
        if bare:
            unsupported.append(_short(item))
    report = CitationReport(len(items), unverified, tuple(unknown), tuple(unsupported))
    if not unverified:
        return hypothesis, report
    return _flagged(hypothesis, report), report


def lowered_confidence(confidence: float, report: CitationReport) -> float:
    share = report.verified / report.items if report.items else 0.0
    return round(confidence * PENALTY * share, CONFIDENCE_DECIMALS)


class ToolValues:
    """The ids tool results hold, for whole-value lookups."""

    def __init__(self, outputs: Collection[str]) -> None:
        self._values: set[str] = set()
        self._texts: list[str] = []
        for output in outputs:
            try:
                self._values.update(_values(json.loads(output)))
            except json.JSONDecodeError:
                self._texts.append(output)

    def __contains__(self, record_id: object) -> bool:
        if not isinstance(record_id, str) or not record_id.strip():
            return False
        if record_id in self._values:
            return True
        alone = re.compile(
            rf"(?<![^{_DELIMITERS}]){re.escape(record_id)}(?=\.?(?:[{_DELIMITERS}]|$))"
        )
        return any(alone.search(text) for text in self._texts)


def _values(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield str(key)
            yield from _values(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _values(inner)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)


def _short(item: Evidence) -> str:
    summary = " ".join(item.summary.split())
    clipped = summary if len(summary) <= MAX_SUMMARY else summary[: MAX_SUMMARY - 1] + "…"
    return f"{item.tool}: {clipped}"


def _flagged(hypothesis: Hypothesis, report: CitationReport) -> Hypothesis:
    confidence = lowered_confidence(hypothesis.confidence, report)
    findings = {
        **hypothesis.findings,
        "citation_check": {
            "items": report.items,
            "verified": report.verified,
            "unknown_record_ids": list(report.unknown),
            "unsupported_items": list(report.unsupported),
            "confidence_as_stated": hypothesis.confidence,
            "confidence_after_check": confidence,
        },
    }
    status = (
        HypothesisStatus.PARTIAL
        if hypothesis.status is HypothesisStatus.SUCCESS
        else hypothesis.status
    )
    return hypothesis.model_copy(
        update={
            "confidence": confidence,
            "status": status,
            "findings": findings,
            "error": ErrorInfo.of(ErrorCode.HALLUCINATION_DETECTED, _message(report)),
        }
    )


def _message(report: CitationReport) -> str:
    parts = []
    if report.unknown:
        parts.append("record ids found in nothing given or fetched: " + _listed(report.unknown))
    if report.unsupported:
        parts.append("items without ids that were not given: " + _listed(report.unsupported))
    return f"{report.unverified} of {report.items} evidence items unverified; " + "; ".join(parts)


def _listed(values: tuple[str, ...]) -> str:
    more = len(values) - MAX_LISTED
    return ", ".join(values[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")
