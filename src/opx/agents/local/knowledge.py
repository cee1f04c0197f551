"""Knowledge-rag analyst: retrieves runbooks and postmortems matching the incident and the core
agents' candidates, cites them, and names a root cause only when the documents single one out.

Scoring. A document is mostly *about* the services its identity (title and document id) names,
and only a little about every service it lists; each relevant document shares its weight among
the services in proportion to that. A candidate's document likelihood is the sum of its shares.
The earlier agents give each candidate a prior plausibility (the highest confidence any of them
gave it), and the posterior is proportional to plausibility x likelihood, so a service no agent
found plausible cannot win on documents alone. A candidate is named only when its posterior
clearly leads *and* the documents themselves favour it over every other plausible candidate:
when they do not discriminate, the analyst abstains rather than echo the earlier agents.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opx.agents.base import AgentContext
from opx.agents.local.similarity import is_command_like, strings_in, tokenize
from opx.agents.roster import KNOWLEDGE, WEIGHTS
from opx.domain.errors import ErrorCode, OpxError
from opx.domain.hypothesis import (
    AlternativeCause,
    ConfidenceBasis,
    Evidence,
    Hypothesis,
    HypothesisStatus,
    Recommendation,
    RecommendationType,
    Risk,
    RootCause,
)
from opx.domain.incident import Incident
from opx.domain.tool_result import ToolStatus

CONFIDENCE_CAP = 0.6
DEGRADED_FACTOR = 0.8
# Symptom overlap saturates after this many shared words: a long detection list must not
# make every document look irrelevant.
_SYMPTOM_SATURATION = 6
_MITIGATION_WORDS = (
    "mitigat",
    "remediat",
    "rollback",
    "roll back",
    "recover",
    "fix",
    "resolution",
    "workaround",
    "response",
    "restore",
)
_INVESTIGATION_WORDS = (
    "diagnos",
    "investigat",
    "symptom",
    "triage",
    "detect",
    "check",
    "verify",
    "troubleshoot",
    "identif",
)
_RISKY_WORDS = (
    "restart",
    "failover",
    "fail over",
    "scale",
    "disable",
    "purge",
    "flush",
    "drain",
    "rollback",
    "roll back",
    "revert",
    "delete",
)
_RUNBOOK_TYPES = ("RUNBOOK", "PLAYBOOK")
# How much a document is about a service its identity names, against one it merely lists.
IDENTITY_WEIGHT = 1.0
LISTED_WEIGHT = 0.25
# A candidate is plausible when an earlier agent gave it at least this confidence, or this share
# of the most plausible candidate's: only plausible candidates can be named or block a leader.
PLAUSIBLE_FLOOR = 0.05
PLAUSIBLE_SHARE = 0.25


@dataclass(frozen=True)
class Section:
    """One retrieved section, as ``retrieve_knowledge`` returns it."""

    document_id: str
    title: str
    doc_type: str
    services: tuple[str, ...]
    section: str
    excerpt: str
    score: float

    @classmethod
    def from_data(cls, item: Mapping[str, Any]) -> Section:
        services = item.get("services")
        return cls(
            document_id=str(item.get("document_id", "")),
            title=str(item.get("title") or ""),
            doc_type=str(item.get("doc_type") or "").upper(),
            services=tuple(strings_in(services if isinstance(services, list) else [])),
            section=str(item.get("section") or ""),
            excerpt=str(item.get("excerpt") or ""),
            score=float(item.get("score") or 0.0),
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.document_id, self.section)

    @property
    def tokens(self) -> list[str]:
        return tokenize(" ".join((self.title, self.section, self.excerpt)))


@dataclass(frozen=True)
class Retrieved:
    """A kept section: ``relevance`` mixes its BM25 rank and how well it matches the symptoms."""

    section: Section
    relevance: float
    symptom_match: float


@dataclass(frozen=True)
class Candidate:
    """A root-cause service some earlier agent proposed, with its component/category votes and
    its plausibility: the highest confidence any earlier agent gave it."""

    service: str
    support: float
    component: str | None
    category: str
    plausibility: float = 0.0


def prior_candidates(prior: Mapping[str, Hypothesis]) -> list[Candidate]:
    """Every service the earlier hypotheses proposed (primary or alternative), by support."""
    support: dict[str, float] = defaultdict(float)
    plausible: dict[str, float] = defaultdict(float)
    components: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    categories: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for agent_id in sorted(prior):
        hypothesis = prior[agent_id]
        if not hypothesis.status.produced:
            continue
        weight = WEIGHTS.get(agent_id, 0.5)
        causes: list[tuple[RootCause | AlternativeCause, float]] = []
        if hypothesis.root_cause is not None:
            causes.append((hypothesis.root_cause, hypothesis.confidence))
        causes += [(alt, alt.confidence) for alt in hypothesis.alternatives]
        for cause, confidence in causes:
            vote = weight * max(confidence, 0.01)
            support[cause.service] += vote
            plausible[cause.service] = max(plausible[cause.service], confidence)
            if cause.component:
                components[cause.service][cause.component] += vote
            categories[cause.service][cause.category] += vote
    return sorted(
        (
            Candidate(
                s,
                round(v, 6),
                _top(components[s]),
                _top(categories[s]) or "UNKNOWN",
                round(plausible[s], 6),
            )
            for s, v in support.items()
        ),
        key=lambda c: (-c.support, c.service),
    )


def _top(votes: Mapping[str, float]) -> str | None:
    return min(votes, key=lambda k: (-round(votes[k], 9), k)) if votes else None


def symptom_tokens(
    incident: Incident, prior: Mapping[str, Hypothesis], services: Iterable[str]
) -> list[str]:
    """What the incident looks like in words: title, detections and proposed categories, with
    service names removed so that a document does not match merely by naming a service."""
    parts = [incident.title or ""]
    for detection in incident.evidence_bundle.detections:
        parts.extend(strings_in(detection))
    for agent_id in sorted(prior):
        cause = prior[agent_id].root_cause
        if prior[agent_id].status.produced and cause and cause.category != "UNKNOWN":
            parts.append(cause.category)
    names = set(tokenize(" ".join([incident.service, *services])))
    return list(dict.fromkeys(t for t in tokenize(" ".join(parts)) if t not in names))


def retrieval_query(incident: Incident, prior: Mapping[str, Hypothesis], limit: int = 1000) -> str:
    """One free-text query: the incident, its detections and what the earlier agents proposed."""
    parts = [incident.service, incident.title or ""]
    for detection in incident.evidence_bundle.detections:
        parts.extend(strings_in(detection))
    for agent_id in sorted(prior):
        hypothesis = prior[agent_id]
        if not hypothesis.status.produced:
            continue
        cause = hypothesis.root_cause
        if cause is not None:
            parts.extend([cause.service, cause.component or "", cause.category])
        parts.append(hypothesis.description[:200])
    text = " ".join(" ".join(p.split()) for p in parts if p and p.strip())
    return text[:limit]


def symptom_match(symptoms: Sequence[str], section: Section) -> float:
    """Share of the symptom words the section contains, saturating at a few shared words."""
    if not symptoms:
        return 0.0
    shared = len(set(symptoms) & set(section.tokens))
    return min(1.0, shared / min(len(set(symptoms)), _SYMPTOM_SATURATION))


def keep_relevant(
    sections: Sequence[Section], symptoms: Sequence[str], floor: float
) -> list[Retrieved]:
    """Sections whose relevance reaches ``floor``, most relevant first."""
    top = max((s.score for s in sections), default=0.0)
    kept = []
    for section in sections:
        if top <= 0.0 or section.score <= 0.0:
            continue
        match = symptom_match(symptoms, section)
        relevance = 0.5 * section.score / top + 0.5 * match
        if match > 0.0 and relevance >= floor:
            kept.append(Retrieved(section, round(relevance, 4), round(match, 4)))
    return sorted(kept, key=lambda r: (-r.relevance, r.section.document_id, r.section.section))


def name_weights(names: Iterable[str]) -> dict[str, float]:
    """How much each name token tells services apart: a smoothed inverse document frequency
    over the known service names, so resource types and shared prefixes ("aws", "fargate")
    weigh little and a service's own words weigh most."""
    unique = sorted(set(names))
    counts: Counter[str] = Counter()
    for name in unique:
        counts.update(set(tokenize(name)))
    total = len(unique)
    return {token: math.log((total + 1) / count) for token, count in counts.items()}


def identity_match(service: str, section: Section, weights: Mapping[str, float]) -> float:
    """Share (0..1, by token weight) of the service's name tokens found in the document's title
    and id: how much the document is about that service rather than merely mentioning it."""
    tokens = set(tokenize(service))
    total = sum(weights.get(t, 0.0) for t in tokens)
    if total <= 0.0:
        return 0.0
    identity = set(tokenize(f"{section.title} {section.document_id}"))
    return sum(weights.get(t, 0.0) for t in tokens & identity) / total


def aboutness(
    section: Section, names: Iterable[str], weights: Mapping[str, float]
) -> dict[str, float]:
    """How much the document is about each service it lists and each of ``names``; services it
    neither names nor lists are left out."""
    about: dict[str, float] = {}
    for name in sorted(set(names) | set(section.services)):
        value = IDENTITY_WEIGHT * identity_match(name, section, weights)
        if name in section.services:
            value += LISTED_WEIGHT
        if value > 0.0:
            about[name] = value
    return about


def _best_per_document(kept: Sequence[Retrieved]) -> dict[str, Retrieved]:
    best: dict[str, Retrieved] = {}
    for item in kept:
        doc = item.section.document_id
        if doc not in best or item.relevance > best[doc].relevance:
            best[doc] = item
    return best


def candidate_scores(kept: Sequence[Retrieved], candidates: Sequence[str]) -> dict[str, float]:
    """Document likelihood per candidate: each document (its best section) shares its weight
    (relevance x symptom match) among the services it is about, in proportion to how much it
    is about each (:func:`aboutness`), so a document titled after one service gives that
    service most of its weight, and one listing several without naming any splits it evenly."""
    best = _best_per_document(kept)
    known = set(candidates) | {s for item in best.values() for s in item.section.services}
    weights = name_weights(known)
    scores = dict.fromkeys(candidates, 0.0)
    for doc in sorted(best):
        item = best[doc]
        about = aboutness(item.section, candidates, weights)
        total = sum(about.values())
        for service in candidates:
            if service in about:
                scores[service] += item.relevance * item.symptom_match * about[service] / total
    return {k: round(v, 4) for k, v in scores.items()}


def plausible_set(plausibility: Mapping[str, float]) -> set[str]:
    """Candidates an earlier agent found plausible: a confidence of at least PLAUSIBLE_FLOOR and
    PLAUSIBLE_SHARE of the most plausible candidate's."""
    top = max(plausibility.values(), default=0.0)
    bar = max(PLAUSIBLE_FLOOR, PLAUSIBLE_SHARE * top)
    return {name for name, value in plausibility.items() if value >= bar}


def posteriors(scores: Mapping[str, float], plausibility: Mapping[str, float]) -> dict[str, float]:
    """Posterior per candidate, proportional to prior plausibility x document likelihood; all
    zero when no plausible candidate has document support."""
    joint = {name: plausibility.get(name, 0.0) * value for name, value in scores.items()}
    total = sum(joint.values())
    if total <= 0.0:
        return dict.fromkeys(scores, 0.0)
    return {name: round(value / total, 4) for name, value in joint.items()}


def discriminating_leader(
    scores: Mapping[str, float],
    lead_ratio: float,
    min_support: float,
    plausibility: Mapping[str, float] | None = None,
) -> tuple[str, float] | None:
    """The candidate the documents clearly favour and a modest confidence, or None.

    Without ``plausibility`` every candidate is equally plausible. With it, the leader is the
    highest posterior (plausibility x document likelihood); it must be plausible, have document
    support of at least ``min_support``, lead the runner-up's posterior by ``lead_ratio``, and
    the documents alone must favour it by ``lead_ratio`` over every other plausible candidate,
    so that a prior lead is never enough."""
    prior = dict.fromkeys(scores, 1.0) if plausibility is None else dict(plausibility)
    plausible = plausible_set({name: prior.get(name, 0.0) for name in scores})
    post = posteriors(scores, prior)
    ranked = sorted(post.items(), key=lambda kv: (-kv[1], -scores[kv[0]], kv[0]))
    if not ranked or ranked[0][1] <= 0.0:
        return None
    best, best_post = ranked[0]
    if best not in plausible or scores[best] < min_support:
        return None
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    if second > 0.0 and best_post < lead_ratio * second:
        return None
    rivals = [scores[name] for name in plausible if name != best]
    if any(value > 0.0 and scores[best] < lead_ratio * value for value in rivals):
        return None
    margin = (best_post - second) / best_post
    strength = scores[best] / (scores[best] + 0.5)
    return best, round(min(CONFIDENCE_CAP, CONFIDENCE_CAP * margin * strength * 1.5), 4)


def section_advice(item: Retrieved) -> Recommendation | None:
    """Advice citing one runbook section, or None when the section is not about action."""
    section = item.section
    heading = section.section.lower()
    if any(w in heading for w in _MITIGATION_WORDS):
        kind = RecommendationType.MITIGATION
    elif any(w in heading for w in _INVESTIGATION_WORDS):
        kind = RecommendationType.INVESTIGATION
    else:
        return None
    label = "postmortem" if section.doc_type == "POSTMORTEM" else "runbook"
    cite = f"per {label} {section.document_id} §{section.section}"
    summary = " ".join(section.excerpt.split())
    if not summary or is_command_like(summary):
        text = (
            f"Consider the documented steps ({cite}, '{section.title}'); review them before acting."
        )
    elif kind is RecommendationType.INVESTIGATION:
        text = f"Consider checking the signs described {cite}: {summary}"
    else:
        text = f"Consider, {cite}: {summary}"
    if len(text) > 600:
        text = text[:597] + "..."
    lowered = f"{heading} {summary.lower()}"
    risky = kind is RecommendationType.MITIGATION and any(w in lowered for w in _RISKY_WORDS)
    return Recommendation(type=kind, description=text, risk=Risk.MEDIUM if risky else Risk.LOW)


class KnowledgeAnalyst:
    """Runbooks and postmortems that match the evidence, with citations."""

    agent_id = KNOWLEDGE
    version = "local-knowledge/1.0"

    def __init__(
        self,
        *,
        floor: float = 0.35,
        lead_ratio: float = 1.5,
        # A document's weight is shared among every service it concerns, so one relevant
        # document mostly about a candidate gives it a few hundredths; less is noise.
        min_support: float = 0.05,
        limit: int = 8,
        max_candidates: int = 5,
        max_recommendations: int = 4,
    ) -> None:
        self.floor = floor
        self.lead_ratio = lead_ratio
        self.min_support = min_support
        self.limit = limit
        self.max_candidates = max_candidates
        self.max_recommendations = max_recommendations

    def analyze(self, ctx: AgentContext) -> Hypothesis:
        notes: list[str] = []
        candidates = prior_candidates(ctx.prior)
        names = [c.service for c in candidates]
        symptoms = symptom_tokens(ctx.incident, ctx.prior, names)
        query = retrieval_query(ctx.incident, ctx.prior)
        sections = self._retrieve(ctx, query, candidates, symptoms, notes)
        kept = keep_relevant(sections, symptoms, self.floor)
        scores = candidate_scores(kept, names)
        leader = discriminating_leader(
            scores, self.lead_ratio, self.min_support, _plausibility(candidates)
        )
        return self._build(
            ctx,
            query=query,
            kept=kept,
            candidates=candidates,
            scores=scores,
            leader=leader,
            notes=notes,
        )

    def _retrieve(
        self,
        ctx: AgentContext,
        query: str,
        candidates: Sequence[Candidate],
        symptoms: Sequence[str],
        notes: list[str],
    ) -> list[Section]:
        # One query for the whole picture, then one per candidate so that each candidate's
        # documents get a fair chance to be retrieved before they are compared.
        queries = [query] + [
            f"{c.service} {' '.join(symptoms)}".strip() for c in candidates[: self.max_candidates]
        ]
        found: dict[tuple[str, str], Section] = {}
        failed = 0
        for text in queries:
            result = ctx.tools.retrieve_knowledge(text, limit=self.limit)
            if result.status is ToolStatus.FAILED:
                failed += 1
                message = result.error.message if result.error else "no detail"
                notes.append(f"retrieve_knowledge failed: {message}")
                continue
            for item in result.data.get("documents", []):
                if isinstance(item, Mapping) and item.get("document_id"):
                    section = Section.from_data(item)
                    if section.key not in found or section.score > found[section.key].score:
                        found[section.key] = section
        if failed == len(queries):
            raise OpxError(
                ErrorCode.DATA_SOURCE_UNAVAILABLE,
                "retrieve_knowledge failed for every query: " + "; ".join(notes[:3]),
            )
        return [found[k] for k in sorted(found)]

    def _build(
        self,
        ctx: AgentContext,
        *,
        query: str,
        kept: Sequence[Retrieved],
        candidates: Sequence[Candidate],
        scores: Mapping[str, float],
        leader: tuple[str, float] | None,
        notes: list[str],
    ) -> Hypothesis:
        root, confidence = None, 0.0
        if leader is not None:
            chosen = next(c for c in candidates if c.service == leader[0])
            root = RootCause(
                service=chosen.service, component=chosen.component, category=chosen.category
            )
            confidence = leader[1] * (DEGRADED_FACTOR if notes else 1.0)
        recs = [r for r in (section_advice(k) for k in kept) if r is not None]
        return Hypothesis(
            agent_id=self.agent_id,
            agent_version=self.version,
            status=HypothesisStatus.PARTIAL if notes else HypothesisStatus.SUCCESS,
            root_cause=root,
            description=_describe(ctx.incident, kept, scores, root),
            confidence=round(confidence, 4),
            confidence_basis=[ConfidenceBasis.PATTERN] if root else [],
            evidence=_evidence(query, kept),
            recommendations=_unique(recs)[: self.max_recommendations],
            findings={
                "documents": [_document_finding(k) for k in kept],
                "suggested_runbooks": _ids(kept, lambda t: t in _RUNBOOK_TYPES),
                "related_postmortems": _ids(kept, lambda t: t == "POSTMORTEM"),
                "candidate_support": dict(sorted(scores.items())),
                "candidate_plausibility": dict(sorted(_plausibility(candidates).items())),
                "candidate_posterior": dict(
                    sorted(posteriors(scores, _plausibility(candidates)).items())
                ),
                "query": query[:300],
                "degraded": notes,
            },
        )


def _plausibility(candidates: Sequence[Candidate]) -> dict[str, float]:
    return {c.service: c.plausibility for c in candidates}


def _describe(
    incident: Incident,
    kept: Sequence[Retrieved],
    scores: Mapping[str, float],
    root: RootCause | None,
) -> str:
    if not kept:
        return (
            f"No runbook or postmortem matched the symptoms of {incident.service}; "
            "no knowledge-based opinion."
        )
    docs = len({k.section.document_id for k in kept})
    if root is None:
        ranked = ", ".join(
            f"{s} {v:.2f}" for s, v in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        )
        return (
            f"{docs} relevant document(s) found, but they do not single out one candidate "
            f"the earlier agents found plausible{' (' + ranked + ')' if ranked else ''}; "
            "citing them without a root cause."
        )
    return (
        f"{docs} relevant document(s) found; among the candidates the earlier agents found "
        f"plausible, those matching the symptoms point to {root.service} (document support "
        f"{scores[root.service]:.2f})."
    )


def _evidence(query: str, kept: Sequence[Retrieved]) -> list[Evidence]:
    if not kept:
        return []
    ids = list(dict.fromkeys(k.section.document_id for k in kept))
    summary = "; ".join(
        f"{k.section.document_id} §{k.section.section} (relevance {k.relevance:.2f})"
        for k in kept[:5]
    )
    return [Evidence(tool="retrieve_knowledge", query=query[:300], record_ids=ids, summary=summary)]


def _document_finding(item: Retrieved) -> dict[str, Any]:
    section = item.section
    return {
        "document_id": section.document_id,
        "title": section.title,
        "doc_type": section.doc_type,
        "section": section.section,
        "services": list(section.services),
        "score": section.score,
        "relevance": item.relevance,
    }


def _ids(kept: Sequence[Retrieved], wanted: Callable[[str], bool]) -> list[str]:
    return list(dict.fromkeys(k.section.document_id for k in kept if wanted(k.section.doc_type)))


def _unique(recs: Sequence[Recommendation]) -> list[Recommendation]:
    seen: set[str] = set()
    out = []
    for rec in recs:
        if rec.description not in seen:
            seen.add(rec.description)
            out.append(rec)
    return out
