"""Response-strategy analyst: ranks response options (advice only) derived from the other
agents' hypotheses, without tools and without new evidence."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opx.agents.base import AgentContext
from opx.agents.local.similarity import is_command_like
from opx.agents.roster import CHANGE, RESPONSE, WEIGHTS
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
from opx.domain.incident import Severity
from opx.reasoning.consensus import breadths

CONFIDENCE_CAP = 0.7
# A synthesis adds no evidence: its confidence is the leader's share of weighted support times
# the supporters' own confidence, scaled down.
SYNTHESIS_SCALE = 0.85
ALTERNATIVE_FACTOR = 0.5
RISK_PENALTY = {Risk.LOW: 0.0, Risk.MEDIUM: 0.05, Risk.HIGH: 0.15}
# For the most severe incidents a risky action that goes wrong costs more, so risk weighs more
# and a LOW-risk option wins whenever effectiveness is comparable.
SEVERE = frozenset({Severity.SEV1, Severity.SEV2})
SEVERE_RISK_FACTOR = 3.0
_TYPE_ORDER = {
    RecommendationType.ROLLBACK: 0,
    RecommendationType.MITIGATION: 1,
    RecommendationType.INVESTIGATION: 2,
}


@dataclass(frozen=True)
class Support:
    """Weighted support for one root-cause service across the earlier hypotheses."""

    service: str
    score: float
    agents: tuple[str, ...]
    component: str | None
    category: str
    mean_confidence: float


@dataclass(frozen=True)
class Option:
    """One response option a human may consider."""

    type: RecommendationType
    description: str
    effectiveness: float
    risk: Risk
    sources: tuple[str, ...]
    tradeoffs: tuple[str, ...]

    def score(self, severity: Severity) -> float:
        factor = SEVERE_RISK_FACTOR if severity in SEVERE else 1.0
        return round(self.effectiveness - RISK_PENALTY[self.risk] * factor, 4)


@dataclass
class _Tally:
    score: float = 0.0
    agents: list[str] = field(default_factory=list)
    confidences: list[tuple[float, float]] = field(default_factory=list)
    components: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    categories: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def count(
        self,
        agent_id: str,
        cause: RootCause | AlternativeCause,
        weight: float,
        confidence: float,
        *,
        primary: bool,
    ) -> None:
        vote = weight * confidence
        self.score += vote
        if primary:
            self.agents.append(agent_id)
            self.confidences.append((weight, confidence))
        if cause.component:
            self.components[cause.component] += vote
        self.categories[cause.category] += vote

    def support(self, service: str) -> Support:
        total_weight = sum(w for w, _ in self.confidences)
        mean = sum(w * c for w, c in self.confidences) / total_weight if total_weight else 0.0
        return Support(
            service,
            round(self.score, 6),
            tuple(self.agents),
            _top(self.components),
            _top(self.categories) or "UNKNOWN",
            round(mean, 6),
        )


def support_table(prior: Mapping[str, Hypothesis]) -> list[Support]:
    """Candidates by weighted support: a primary root cause counts weight × breadth ×
    confidence, an alternative half of that. Breadth is the consensus's (the share of the
    telemetry in play an agent can read), so the synthesis leans the way consensus will."""
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    others = {a: h for a, h in prior.items() if a != RESPONSE}
    breadth = breadths(others)
    for agent_id in sorted(others):
        hypothesis = others[agent_id]
        if not hypothesis.status.produced:
            continue
        weight = WEIGHTS.get(agent_id, 0.5) * breadth.get(agent_id, 1.0)
        if hypothesis.root_cause is not None:
            tallies[hypothesis.root_cause.service].count(
                agent_id, hypothesis.root_cause, weight, hypothesis.confidence, primary=True
            )
        for alt in hypothesis.alternatives:
            tallies[alt.service].count(
                agent_id, alt, weight * ALTERNATIVE_FACTOR, alt.confidence, primary=False
            )
    table = [tally.support(service) for service, tally in tallies.items() if tally.score > 0]
    return sorted(table, key=lambda s: (-s.score, s.service))


def _top(votes: Mapping[str, float]) -> str | None:
    return min(votes, key=lambda k: (-round(votes[k], 9), k)) if votes else None


def synthesis_confidence(table: Sequence[Support]) -> float:
    """The leader's share of support times its supporters' confidence, scaled down and capped."""
    total = sum(s.score for s in table)
    if not table or total <= 0:
        return 0.0
    share = table[0].score / total
    return round(min(CONFIDENCE_CAP, SYNTHESIS_SCALE * share * table[0].mean_confidence), 4)


def as_advice(text: str, fallback: str) -> str:
    """``text`` as advice ("Consider …"), or ``fallback`` when it reads like a command."""
    flat = " ".join(text.split())
    if not flat or is_command_like(flat):
        flat = fallback
    if not flat.lower().startswith("consider"):
        flat = f"Consider: {flat[:1].lower()}{flat[1:]}"
    return flat if len(flat) <= 600 else flat[:597] + "..."


def build_options(prior: Mapping[str, Hypothesis], table: Sequence[Support]) -> list[Option]:
    """Response options: investigate the leader (and a close runner-up), roll back the suspect
    change when it agrees with the leader, and the mitigations other agents proposed."""
    leader = table[0]
    total = sum(s.score for s in table)
    options = [_investigate(leader, leader.score / total, primary=True)]
    if len(table) > 1 and table[1].score / total >= 0.25:
        options.append(_investigate(table[1], table[1].score / total, primary=False))
    options.extend(_rollbacks(prior, leader))
    options.extend(_mitigations(prior, leader))
    return _dedupe(options)


def _investigate(support: Support, share: float, *, primary: bool) -> Option:
    target = f"{support.component} on {support.service}" if support.component else support.service
    agents = ", ".join(support.agents) or "alternatives only"
    lead = "the leading candidate" if primary else "the runner-up candidate"
    return Option(
        type=RecommendationType.INVESTIGATION,
        description=as_advice(
            f"Consider investigating {target} ({support.category}), {lead} "
            f"(supported by {agents}).",
            "Consider investigating the leading candidate.",
        ),
        effectiveness=round((0.3 if primary else 0.2) + 0.25 * share, 4),
        risk=Risk.LOW,
        sources=support.agents,
        tradeoffs=(
            "safe, and confirms the cause before any change",
            "does not by itself restore service",
        ),
    )


def _rollbacks(prior: Mapping[str, Hypothesis], leader: Support) -> list[Option]:
    options = []
    for agent_id in sorted(prior):
        hypothesis = prior[agent_id]
        if not _agrees(hypothesis, leader) or agent_id == RESPONSE:
            continue
        for rec in hypothesis.recommendations:
            if rec.type is not RecommendationType.ROLLBACK:
                continue
            # The change analyst's suspect is specific evidence; other agents' rollbacks are
            # patterns, so they are worth less.
            base = 0.45 if agent_id == CHANGE else 0.3
            options.append(
                Option(
                    type=RecommendationType.ROLLBACK,
                    description=as_advice(
                        rec.description,
                        f"Consider the rollback proposed by "
                        f"{agent_id}; its wording held command steps, omitted.",
                    ),
                    effectiveness=round(min(0.9, base + 0.45 * hypothesis.confidence), 4),
                    risk=max(rec.risk, Risk.MEDIUM, key=list(Risk).index),
                    sources=(agent_id,),
                    tradeoffs=(
                        "restores the last known-good state quickly if the change is the trigger",
                        "undoes the change's intended effect",
                        "does not help if the fault lies elsewhere",
                    ),
                )
            )
    return options


def _mitigations(prior: Mapping[str, Hypothesis], leader: Support) -> list[Option]:
    options = []
    for agent_id in sorted(prior):
        hypothesis = prior[agent_id]
        if not hypothesis.status.produced or agent_id == RESPONSE:
            continue
        if hypothesis.root_cause is None:
            base = 0.3 + 0.2 * leader.mean_confidence
        elif _agrees(hypothesis, leader):
            base = 0.35 + 0.4 * hypothesis.confidence
        else:
            base = 0.2
        for rec in hypothesis.recommendations:
            if rec.type is not RecommendationType.MITIGATION:
                continue
            options.append(
                Option(
                    type=RecommendationType.MITIGATION,
                    description=as_advice(
                        rec.description,
                        f"Consider the mitigation proposed by "
                        f"{agent_id}; its wording held command steps, omitted.",
                    ),
                    effectiveness=round(min(0.85, base), 4),
                    risk=rec.risk,
                    sources=(agent_id,),
                    tradeoffs=(
                        "limits impact while the cause is confirmed",
                        "treats the symptom; the cause remains until fixed",
                    ),
                )
            )
    return options


def _agrees(hypothesis: Hypothesis, leader: Support) -> bool:
    cause = hypothesis.root_cause
    return hypothesis.status.produced and cause is not None and cause.service == leader.service


def _dedupe(options: Sequence[Option]) -> list[Option]:
    best: dict[str, Option] = {}
    for option in options:
        known = best.get(option.description)
        if known is None or option.effectiveness > known.effectiveness:
            best[option.description] = option
    return list(best.values())


def rank_options(options: Sequence[Option], severity: Severity) -> list[Option]:
    """Best first: effectiveness less a risk penalty (tripled for SEV1/SEV2)."""
    return sorted(options, key=lambda o: (-o.score(severity), _TYPE_ORDER[o.type], o.description))


class ResponseAnalyst:
    """Response options ranked from the other hypotheses; advice only."""

    agent_id = RESPONSE
    version = "local-response/1.0"

    def __init__(self, *, max_recommendations: int = 3) -> None:
        self.max_recommendations = max_recommendations

    def analyze(self, ctx: AgentContext) -> Hypothesis:
        table = support_table(ctx.prior)
        missing = sorted(a for a, h in ctx.prior.items() if not h.status.produced)
        if not table:
            return self._abstain(ctx, missing)
        severity = ctx.incident.severity
        ranked = rank_options(build_options(ctx.prior, table), severity)
        return self._build(ctx, table, ranked, missing)

    def _abstain(self, ctx: AgentContext, missing: Sequence[str]) -> Hypothesis:
        return Hypothesis(
            agent_id=self.agent_id,
            agent_version=self.version,
            description=(
                "No earlier agent named a root cause, so there is no response to "
                "rank; keep watching the incident."
            ),
            findings={
                "ranked_options": [],
                "tradeoff_analysis": {
                    "severity": ctx.incident.severity.value,
                    "leader": None,
                    "agents_without_opinion": list(missing),
                },
            },
        )

    def _build(
        self,
        ctx: AgentContext,
        table: Sequence[Support],
        ranked: Sequence[Option],
        missing: Sequence[str],
    ) -> Hypothesis:
        leader = table[0]
        confidence = synthesis_confidence(table)
        total = sum(s.score for s in table)
        top = ranked[: self.max_recommendations]
        return Hypothesis(
            agent_id=self.agent_id,
            agent_version=self.version,
            status=HypothesisStatus.SUCCESS,
            root_cause=RootCause(
                service=leader.service, component=leader.component, category=leader.category
            ),
            description=(
                f"{leader.service} leads with {leader.score / total:.0%} of the weighted "
                f"support ({', '.join(leader.agents) or 'alternatives only'}); "
                f"{len(ranked)} response option(s) ranked, advice only."
            ),
            confidence=confidence,
            confidence_basis=_bases(ctx.prior, leader),
            alternatives=[
                AlternativeCause(
                    service=s.service,
                    component=s.component,
                    category=s.category,
                    confidence=round(confidence * s.score / leader.score, 4),
                )
                for s in table[1:5]
            ],
            evidence=[
                Evidence(
                    tool="prior_hypotheses",
                    record_ids=sorted(a for a, h in ctx.prior.items() if h.status.produced),
                    summary="; ".join(f"{s.service} support {s.score:.2f}" for s in table[:4]),
                )
            ],
            recommendations=[
                Recommendation(type=o.type, description=o.description, risk=o.risk) for o in top
            ],
            findings={
                "ranked_options": [
                    _option_finding(i, o, ctx.incident.severity)
                    for i, o in enumerate(ranked, start=1)
                ],
                "tradeoff_analysis": _tradeoffs(ctx, table, ranked, missing),
            },
        )


def _bases(prior: Mapping[str, Hypothesis], leader: Support) -> list[ConfidenceBasis]:
    # A synthesis rests on whatever its supporters rested on.
    bases = {b for a in leader.agents for b in prior[a].confidence_basis}
    return sorted(bases) or [ConfidenceBasis.ASSUMPTION]


def _option_finding(rank: int, option: Option, severity: Severity) -> dict[str, Any]:
    return {
        "rank": rank,
        "type": option.type.value,
        "description": option.description,
        "estimated_effectiveness": option.effectiveness,
        "risk": option.risk.value,
        "score": option.score(severity),
        "source_agents": list(option.sources),
        "tradeoffs": list(option.tradeoffs),
    }


def _tradeoffs(
    ctx: AgentContext, table: Sequence[Support], ranked: Sequence[Option], missing: Sequence[str]
) -> dict[str, Any]:
    total = sum(s.score for s in table)
    change = ctx.prior.get(CHANGE)
    suspect = change.root_cause.service if change and change.root_cause else None
    rollback = any(o.type is RecommendationType.ROLLBACK for o in ranked)
    if suspect is None:
        reason = "change-intelligence named no suspect change"
    elif suspect == table[0].service:
        reason = "the suspect change is on the leading candidate"
    else:
        reason = (
            f"the suspect change is on {suspect}, not on the leading candidate "
            f"{table[0].service}: no rollback proposed for it"
        )
    severe = ctx.incident.severity in SEVERE
    return {
        "severity": ctx.incident.severity.value,
        "risk_preference": (
            "LOW-risk options preferred when effectiveness is comparable"
            if severe
            else "risk weighed normally"
        ),
        "leader": {"service": table[0].service, "share": round(table[0].score / total, 4)},
        "candidates": [
            {"service": s.service, "share": round(s.score / total, 4), "agents": list(s.agents)}
            for s in table
        ],
        "rollback": {"proposed": rollback, "reason": reason},
        "agents_without_opinion": list(missing),
    }
