"""The citation check: every record id a hypothesis cites must be one the agent was given (its
pre-computed evidence, the earlier hypotheses) or one that appears in a tool result recorded in
its trace. Pure: no I/O.

A hypothesis that cites ids that exist nowhere is kept, so a human can see what it claimed, but
flagged ``HALLUCINATION_DETECTED``, downgraded to PARTIAL, and its confidence lowered: halved,
then scaled by the share of its citations that do check out. Half, because a chain of evidence
with one invented link cannot be trusted above half its stated strength; scaled, because the
more of it is invented the less of it is evidence (all invented: confidence 0).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from opx.domain.errors import ErrorCode, ErrorInfo
from opx.domain.hypothesis import Hypothesis, HypothesisStatus

PENALTY = 0.5
CONFIDENCE_DECIMALS = 4
MAX_LISTED = 10


@dataclass(frozen=True)
class CitationReport:
    cited: int
    unknown: tuple[str, ...]

    @property
    def verified(self) -> int:
        return self.cited - len(self.unknown)


def check_citations(
    hypothesis: Hypothesis, given: Collection[str], tool_outputs: Collection[str]
) -> tuple[Hypothesis, CitationReport]:
    """``hypothesis`` unchanged when every citation checks out; else flagged and lowered."""
    cited = _cited(hypothesis)
    known = set(given)
    unknown = tuple(i for i in cited if i not in known and not _in_outputs(i, tool_outputs))
    report = CitationReport(len(cited), unknown)
    if not unknown:
        return hypothesis, report
    return _flagged(hypothesis, report), report


def lowered_confidence(confidence: float, report: CitationReport) -> float:
    share = report.verified / report.cited if report.cited else 0.0
    return round(confidence * PENALTY * share, CONFIDENCE_DECIMALS)


def _cited(hypothesis: Hypothesis) -> list[str]:
    ids: list[str] = []
    for item in (*hypothesis.evidence, *hypothesis.contradicting_evidence):
        for record_id in item.record_ids:
            if record_id not in ids:
                ids.append(record_id)
    return ids


def _in_outputs(record_id: str, outputs: Collection[str]) -> bool:
    # Tool results are JSON text: an id the tool returned appears in it verbatim.
    return bool(record_id) and any(record_id in output for output in outputs)


def _flagged(hypothesis: Hypothesis, report: CitationReport) -> Hypothesis:
    listed = ", ".join(report.unknown[:MAX_LISTED])
    more = len(report.unknown) - MAX_LISTED
    message = (
        f"{len(report.unknown)} of {report.cited} cited record ids exist in nothing the agent "
        f"was given or fetched: {listed}" + (f" and {more} more" if more > 0 else "")
    )
    confidence = lowered_confidence(hypothesis.confidence, report)
    findings = {
        **hypothesis.findings,
        "citation_check": {
            "cited": report.cited,
            "verified": report.verified,
            "unknown_record_ids": list(report.unknown),
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
            "error": ErrorInfo.of(ErrorCode.HALLUCINATION_DETECTED, message),
        }
    )
