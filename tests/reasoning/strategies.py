"""Hypothesis strategies that generate agent hypotheses for the reasoning property tests."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from opx.domain.hypothesis import (
    AlternativeCause,
    Evidence,
    Hypothesis,
    HypothesisStatus,
    RootCause,
)

AGENT_IDS = ("agent-a", "agent-b", "agent-c", "agent-d", "agent-e", "agent-f")
SERVICES = ("svc-alpha", "svc-beta", "svc-gamma", "svc-delta")
COMPONENTS = (None, "db", "cache", "api")
CATEGORIES = ("UNKNOWN", "DEPLOYMENT", "CAPACITY", "DEPENDENCY")
PRODUCED = (HypothesisStatus.SUCCESS, HypothesisStatus.PARTIAL)
NOT_PRODUCED = tuple(s for s in HypothesisStatus if not s.produced)

confidences = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
evidence_lists = st.lists(
    st.builds(Evidence, tool=st.just("get_metrics"), summary=st.just("latency spike")),
    max_size=2,
)


def root_causes(services: tuple[str, ...] = SERVICES) -> st.SearchStrategy[RootCause]:
    return st.builds(
        RootCause,
        service=st.sampled_from(services),
        component=st.sampled_from(COMPONENTS),
        category=st.sampled_from(CATEGORIES),
    )


alternatives = st.builds(
    AlternativeCause,
    service=st.sampled_from(SERVICES),
    component=st.sampled_from(COMPONENTS),
    category=st.sampled_from(CATEGORIES),
    confidence=confidences,
)


def hypotheses_for(
    agent_id: str,
    *,
    statuses: tuple[HypothesisStatus, ...] = tuple(HypothesisStatus),
    causes: st.SearchStrategy[RootCause | None] | None = None,
    confidence: st.SearchStrategy[float] = confidences,
    alternative_lists: st.SearchStrategy[list[AlternativeCause]] | None = None,
) -> st.SearchStrategy[Hypothesis]:
    """Any hypothesis of ``agent_id``, optionally narrowed by status, cause and confidence."""
    return st.builds(
        Hypothesis,
        agent_id=st.just(agent_id),
        status=st.sampled_from(statuses),
        root_cause=causes if causes is not None else st.none() | root_causes(),
        confidence=confidence,
        alternatives=(
            alternative_lists
            if alternative_lists is not None
            else st.lists(alternatives, max_size=2)
        ),
        evidence=evidence_lists,
    )


@dataclass(frozen=True)
class Panel:
    """Inputs of one consensus run."""

    hypotheses: dict[str, Hypothesis]
    weights: dict[str, float]
    expected: list[str]


@st.composite
def panels(
    draw: st.DrawFn, *, agents: tuple[str, ...] = AGENT_IDS[:5], opinionated: bool = False
) -> Panel:
    """Some of ``agents`` present with any hypothesis, any subset of AGENT_IDS expected.

    The last of AGENT_IDS is never present, so tests can add it to any panel (as an expected
    agent that was missing, or as an unexpected newcomer). ``opinionated`` guarantees at
    least one candidate.
    """
    present = draw(st.lists(st.sampled_from(agents), unique=True, min_size=int(opinionated)))
    hyps = {agent: draw(hypotheses_for(agent)) for agent in present}
    if opinionated:
        # At least one producer names a root cause, so there is a top candidate.
        hyps[present[0]] = draw(hypotheses_for(present[0], statuses=PRODUCED, causes=root_causes()))
    expected = draw(st.lists(st.sampled_from(AGENT_IDS), unique=True))
    weight = st.just(0.0) | st.floats(min_value=0.05, max_value=1.5, allow_nan=False)
    weights = {agent: draw(weight) for agent in AGENT_IDS}
    return Panel(hyps, weights, expected)
