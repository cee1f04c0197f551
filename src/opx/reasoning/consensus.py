"""Merge the agents' hypotheses into one ranked, explainable, deterministic consensus.

Vocabulary. The *roster* is every expected agent plus every agent present in the mapping. An
agent *produced* when its status is SUCCESS or PARTIAL; a producer with a root cause is
*opinionated*. Agents that failed, timed out, were blocked or skipped, and expected agents that
are missing, only lower data completeness: they never add support, agreement or confidence.
An agent without a configured weight counts with ``DEFAULT_WEIGHT``. ``failed_agents`` lists
every roster agent that did not produce. Floats are rounded to ``DECIMALS`` places.

Breadth. An opinion formed from part of the telemetry the panel drew on is less informed than
one that weighed all of it: an agent that reads only metrics can name a service whose metrics
moved by chance where logs and traces point elsewhere. The *panel's modalities* are the kinds of
telemetry (metrics, logs, traces) cited by the opinionated agents' evidence; an agent's
``breadth`` is the share of them its tools can read (``reads``: agent -> tool names, by default
the roster's). An agent whose tools read no telemetry (past incidents, changes, documents, other
hypotheses) rests on another kind of evidence and keeps breadth 1, as does an agent ``reads``
does not know. Where every agent reads all the telemetry there is, breadth is 1 for all.
Breadth weighs an opinion's say in choosing among candidates, where a narrow view cannot see
the rivals that other telemetry shows; it does not lower what the opinion corroborates, since
what it did read still points where it says.

Candidates. Each opinionated agent supports its primary service with its confidence and each
alternative's service with ``ALTERNATIVE_DISCOUNT`` x that alternative's confidence, both times
its breadth, at most once per service (its strongest mention). A candidate's score is the
weighted support divided by the total weight of opinionated agents. Candidates rank by score,
then by the weight of agents naming them as primary root cause, then by service name.

Confidence in the top candidate ``t``, with S the opinionated agents whose primary service is
``t`` and O all opinionated agents::

    credence(a)    = confidence(a), halved when the agent cites no evidence
    corroboration  = 1 - prod_{a in S} (1 - WITNESS_RELIABILITY * credence(a)) ** weight(a)
    agreement      = weight(S) / weight(O)                       (= agreement_level)
    conviction     = sum_S weight*credence / sum_O weight*credence
    completeness   = weight(producers) / weight(roster)          (= data_completeness)
    confidence     = corroboration * sqrt(agreement * conviction * completeness)

``corroboration`` treats supporters as independent witnesses (noisy-OR): every further
supporter raises it, strong ones more, and one agent alone can reach at most
``WITNESS_RELIABILITY``. ``agreement`` counts dissenting agents, ``conviction`` weighs them by
how sure they are, and ``completeness`` shrinks confidence when agents are missing. The square
root keeps a 3-to-1 split usable while a 2-to-2 split stays low. Hence: adding a failed agent
never raises confidence, adding a dissenter never raises it (while the top candidate stays),
and adding a supporter of the top candidate never lowers it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from opx.agents.roster import ROSTER
from opx.domain.consensus import (
    Candidate,
    Conflict,
    ConsensusResult,
    MinorityOpinion,
    QualityMetrics,
)
from opx.domain.hypothesis import Hypothesis, RootCause

DEFAULT_WEIGHT = 1.0
ALTERNATIVE_DISCOUNT = 0.5
WITNESS_RELIABILITY = 0.6
UNEVIDENCED_DISCOUNT = 0.5
CONFLICT_RATIO = 0.75
MINORITY_MIN_CONFIDENCE = 0.5
UNKNOWN_CATEGORY = "UNKNOWN"
DECIMALS = 6
CONFLICT_DECIMALS = 4
# The kind of telemetry each evidence tool reads (for breadth).
_MODALITY = {
    "get_metrics": "metrics",
    "list_metrics": "metrics",
    "get_traffic": "metrics",
    "search_logs": "logs",
    "get_traces": "traces",
}


@dataclass(frozen=True)
class _Opinion:
    """One opinionated agent, reduced to what consensus weighs."""

    agent: str
    weight: float
    root_cause: RootCause
    confidence: float
    credence: float
    hypothesis: Hypothesis
    breadth: float = 1.0


@dataclass(frozen=True)
class _Mention:
    """An agent's strongest support for one service."""

    agent: str
    weight: float
    support: float
    component: str | None
    category: str


@dataclass(frozen=True)
class _Panel:
    """The agents and their weights, split into producers and opinions."""

    roster: tuple[str, ...]
    weights: Mapping[str, float]
    producers: tuple[str, ...]
    opinions: tuple[_Opinion, ...]
    hypotheses: Mapping[str, Hypothesis]

    def weight_of(self, agents: Iterable[str]) -> float:
        return math.fsum(self.weights[agent] for agent in agents)

    @property
    def opinion_weight(self) -> float:
        return math.fsum(opinion.weight for opinion in self.opinions)

    @property
    def completeness(self) -> float:
        return _share(self.weight_of(self.producers), self.weight_of(self.roster))


def build_consensus(
    hypotheses: Mapping[str, Hypothesis],
    *,
    weights: Mapping[str, float],
    expected_agents: Sequence[str],
    threshold: float,
    reads: Mapping[str, Collection[str]] | None = None,
) -> ConsensusResult:
    """Consensus over ``hypotheses`` (keyed by agent id); root cause only at/above threshold.
    ``reads`` maps agents to the tools they can call (default: the roster's), for breadth."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be within 0..1, got {threshold!r}")
    panel = _panel(hypotheses, weights, expected_agents, reads)
    candidates = _candidates(panel)
    top = candidates[0] if candidates else None
    confidence = _confidence(panel, top.service) if top else 0.0
    agreement = _agreement(panel, top.service) if top else 0.0
    root_cause = None
    if top is not None and confidence >= threshold:
        root_cause = RootCause(service=top.service, component=top.component, category=top.category)
    return ConsensusResult(
        root_cause=root_cause,
        confidence=confidence,
        threshold=threshold,
        agreement_level=agreement,
        candidates=candidates,
        conflicts=_conflicts(panel, candidates),
        minority_opinions=_minorities(panel, top.service) if top else [],
        participating_agents=list(panel.producers),
        failed_agents=[agent for agent in panel.roster if agent not in panel.producers],
        quality=_quality(panel, agreement),
        summary=_summary(panel, top, confidence, root_cause is not None, threshold),
    )


def _panel(
    hypotheses: Mapping[str, Hypothesis],
    weights: Mapping[str, float],
    expected_agents: Sequence[str],
    reads: Mapping[str, Collection[str]] | None,
) -> _Panel:
    roster = tuple(sorted(set(expected_agents) | set(hypotheses)))
    resolved = {agent: _weight(weights, agent) for agent in roster}
    producers = tuple(a for a in roster if a in hypotheses and hypotheses[a].status.produced)
    breadth = breadths(hypotheses, reads)
    opinions = [
        _opinion(agent, resolved[agent], hypotheses[agent], root_cause, breadth[agent])
        for agent in producers
        if (root_cause := hypotheses[agent].root_cause) is not None
    ]
    return _Panel(roster, resolved, producers, tuple(opinions), hypotheses)


def breadths(
    hypotheses: Mapping[str, Hypothesis], reads: Mapping[str, Collection[str]] | None = None
) -> dict[str, float]:
    """Each opinionated producer's breadth (see the module docstring); ``reads`` maps agents to
    the tools they can call (default: the roster's)."""
    tools = {a: spec.tools for a, spec in ROSTER.items()} if reads is None else reads
    opinionated = [
        agent
        for agent, h in sorted(hypotheses.items())
        if h.status.produced and h.root_cause is not None
    ]
    seen = frozenset().union(*(_cited(hypotheses[a]) for a in opinionated))
    return {a: _breadth(_readable(tools.get(a)), seen) for a in opinionated}


def _cited(hypothesis: Hypothesis) -> frozenset[str]:
    """The kinds of telemetry the hypothesis' supporting evidence cites."""
    return _readable(item.tool for item in hypothesis.evidence)


def _readable(tools: Iterable[str] | None) -> frozenset[str]:
    """The kinds of telemetry ``tools`` read."""
    return frozenset(kind for tool in tools or () if (kind := _MODALITY.get(tool)) is not None)


def _breadth(own: frozenset[str], seen: frozenset[str]) -> float:
    """The share of the panel's modalities an agent can read (1 when it reads no telemetry)."""
    return len(own & seen) / len(seen) if own and seen else 1.0


def _weight(weights: Mapping[str, float], agent: str) -> float:
    weight = weights.get(agent, DEFAULT_WEIGHT)
    if not (math.isfinite(weight) and weight >= 0):
        raise ValueError(f"weight of {agent!r} must be a finite number >= 0, got {weight!r}")
    return float(weight)


def _opinion(
    agent: str, weight: float, hypothesis: Hypothesis, root_cause: RootCause, breadth: float
) -> _Opinion:
    # Confidence an agent cannot back with evidence is worth less as corroboration.
    credence = hypothesis.confidence * (1.0 if hypothesis.evidence else UNEVIDENCED_DISCOUNT)
    return _Opinion(agent, weight, root_cause, hypothesis.confidence, credence, hypothesis, breadth)


def _mentions(opinion: _Opinion) -> dict[str, _Mention]:
    """The agent's strongest mention of each service; the primary wins ties."""
    best: dict[str, _Mention] = {}
    primary = opinion.root_cause
    breadth = opinion.breadth
    named = [(primary.service, opinion.confidence * breadth, primary.component, primary.category)]
    named += [
        (alt.service, ALTERNATIVE_DISCOUNT * alt.confidence * breadth, alt.component, alt.category)
        for alt in opinion.hypothesis.alternatives
    ]
    for service, support, component, category in named:
        if service not in best or support > best[service].support:
            best[service] = _Mention(opinion.agent, opinion.weight, support, component, category)
    return best


def _candidates(panel: _Panel) -> list[Candidate]:
    by_service: dict[str, list[_Mention]] = defaultdict(list)
    for opinion in panel.opinions:
        for service, mention in _mentions(opinion).items():
            by_service[service].append(mention)
    total = panel.opinion_weight
    candidates = [_candidate(service, mentions, total) for service, mentions in by_service.items()]
    primary = {c.service: _round(_primary_weight(panel, c.service)) for c in candidates}
    # Scores are already rounded, so float noise cannot beat the tie-breakers. On equal scores
    # a service agents name first outranks one they only list as an alternative.
    return sorted(candidates, key=lambda c: (-c.score, -primary[c.service], c.service))


def _candidate(service: str, mentions: Sequence[_Mention], total_weight: float) -> Candidate:
    support = math.fsum(m.weight * m.support for m in mentions)
    components = [(m.component, m.weight * m.support) for m in mentions if m.component]
    categories = [
        (m.category, m.weight * m.support) for m in mentions if m.category != UNKNOWN_CATEGORY
    ]
    return Candidate(
        service=service,
        component=_pick(components),
        category=_pick(categories) or UNKNOWN_CATEGORY,
        score=_round(_clamp(_share(support, total_weight))),
        supporting_agents=sorted(m.agent for m in mentions),
    )


def _pick(values: Sequence[tuple[str | None, float]]) -> str | None:
    """The value with the highest summed weighted support; alphabetical on ties."""
    totals: dict[str, list[float]] = defaultdict(list)
    for value, support in values:
        if value:
            totals[value].append(support)
    if not totals:
        return None
    return min(totals, key=lambda v: (-_round(math.fsum(totals[v])), v))


def _supporters(panel: _Panel, service: str) -> list[_Opinion]:
    return [o for o in panel.opinions if o.root_cause.service == service]


def _primary_weight(panel: _Panel, service: str) -> float:
    return math.fsum(o.weight for o in _supporters(panel, service))


def _agreement(panel: _Panel, service: str) -> float:
    return _round(_clamp(_share(_primary_weight(panel, service), panel.opinion_weight)))


def _confidence(panel: _Panel, service: str) -> float:
    supporters = _supporters(panel, service)
    if not supporters:
        return 0.0
    doubt = math.prod((1.0 - WITNESS_RELIABILITY * o.credence) ** o.weight for o in supporters)
    corroboration = 1.0 - doubt
    agreement = _share(_primary_weight(panel, service), panel.opinion_weight)
    conviction = _share(
        math.fsum(o.weight * o.credence for o in supporters),
        math.fsum(o.weight * o.credence for o in panel.opinions),
    )
    spread = agreement * conviction * panel.completeness
    return _round(_clamp(corroboration * math.sqrt(_clamp(spread))))


def _conflicts(panel: _Panel, candidates: Sequence[Candidate]) -> list[Conflict]:
    if not candidates or candidates[0].score <= 0:
        return []
    top = candidates[0]
    rivals = [c for c in candidates[1:] if c.score >= CONFLICT_RATIO * top.score]
    return [_conflict(panel, top, rival) for rival in rivals]


def _conflict(panel: _Panel, top: Candidate, rival: Candidate) -> Conflict:
    scores = [round(top.score, CONFLICT_DECIMALS), round(rival.score, CONFLICT_DECIMALS)]
    return Conflict(
        services=[top.service, rival.service],
        scores=scores,
        agents=[
            [o.agent for o in _supporters(panel, top.service)],
            [o.agent for o in _supporters(panel, rival.service)],
        ],
        description=(
            f"{top.service} ({scores[0]:.4f}) and {rival.service} ({scores[1]:.4f}) have "
            "comparable support; check the evidence for both"
        ),
    )


def _minorities(panel: _Panel, top_service: str) -> list[MinorityOpinion]:
    return [
        MinorityOpinion(agent_id=o.agent, root_cause=o.root_cause, confidence=o.confidence)
        for o in panel.opinions
        if o.root_cause.service != top_service and o.confidence >= MINORITY_MIN_CONFIDENCE
    ]


def _quality(panel: _Panel, agreement: float) -> QualityMetrics:
    evidenced = sum(1 for agent in panel.producers if panel.hypotheses[agent].evidence)
    return QualityMetrics(
        data_completeness=_round(_clamp(panel.completeness)),
        evidence_coverage=_round(_share(evidenced, len(panel.producers))),
        agreement=agreement,
    )


def _summary(
    panel: _Panel, top: Candidate | None, confidence: float, accepted: bool, threshold: float
) -> str:
    if not panel.producers:
        return f"No agent produced a hypothesis (0 of {len(panel.roster)}); no root cause."
    if top is None:
        return f"{len(panel.producers)} agent(s) produced hypotheses but none named a root cause."
    backers = [o.agent for o in _supporters(panel, top.service)]
    if accepted:
        lead = f"{_backing(backers, top.service)} (confidence {confidence:.2f})"
    else:
        lead = (
            f"No root cause reaches threshold {threshold:.2f}; best candidate {top.service} "
            f"(confidence {confidence:.2f})"
        )
    return "; ".join([lead, *_dissent(panel, top.service)]) + "."


def _backing(agents: Sequence[str], service: str) -> str:
    if not agents:
        return f"{service} is named only as an alternative"
    if len(agents) == 1:
        return f"{agents[0]} points to {service}"
    return f"{', '.join(agents)} agree on {service}"


def _dissent(panel: _Panel, top_service: str) -> list[str]:
    others: dict[str, list[str]] = defaultdict(list)
    for opinion in panel.opinions:
        if opinion.root_cause.service != top_service:
            others[opinion.root_cause.service].append(opinion.agent)
    verb = {True: "suggests", False: "suggest"}
    return [
        f"{', '.join(agents)} {verb[len(agents) == 1]} {service}"
        for service, agents in sorted(others.items())
    ]


def _share(part: float, whole: float) -> float:
    return part / whole if whole > 0 else 0.0


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def _round(value: float) -> float:
    return round(value, DECIMALS)
