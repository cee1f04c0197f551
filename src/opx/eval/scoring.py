"""Scores evaluation outcomes: top-k hits over distinct services, Wilson intervals, Brier
score, specificity and the summary rows per group; pure, no I/O."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from opx.domain.result import ExecutionStatus, Reason

# The two-sided 95 % normal quantile.
Z95 = 1.959963984540054
ALL = "all"
# Splits in the order a reader expects them; others follow by name, pooled rows last.
SPLIT_ORDER = ("train", "dev", "test")


@dataclass(frozen=True)
class CaseKey:
    """Which case this is. ``healthy`` marks a window cut from the healthy baseline
    (a specificity case, with no root cause to find)."""

    split: str
    scenario: str
    name: str
    metric: str
    changes: bool
    healthy: bool = False
    fault_type: str | None = None


@dataclass(frozen=True)
class CaseOutcome:
    """What OPX answered for one case, and what it took."""

    key: CaseKey
    truth: str | None
    status: str
    reason: str | None
    confidence: float
    candidates: tuple[tuple[str, float], ...]
    seconds: float
    usd: float
    graph_nodes: int
    # Each agent's primary root-cause service (None when it named none), by agent id.
    agents: tuple[tuple[str, str | None], ...] = ()

    @property
    def ranked_services(self) -> list[str]:
        return distinct_services(self.candidates)

    def hit(self, k: int) -> bool:
        return hit_at(self.candidates, self.truth, k)

    @property
    def abstained(self) -> bool:
        """True when OPX said it has no confident root cause (what specificity counts)."""
        return (
            self.status == ExecutionStatus.NO_RECOMMENDATION
            and self.reason == Reason.NO_CONFIDENT_ROOT_CAUSE
        )


@dataclass(frozen=True)
class AccuracyRow:
    split: str
    scenario: str
    metric: str
    changes: bool
    n: int
    top1: float
    top3: float
    top1_ci: tuple[float, float]
    top3_ci: tuple[float, float]
    confidence_right: float | None
    confidence_wrong: float | None
    brier: float
    median_seconds: float
    usd_per_case: float
    chance_top1: float
    chance_top3: float


@dataclass(frozen=True)
class SpecificityRow:
    scenario: str
    metric: str
    changes: bool
    n: int
    no_recommendation_rate: float
    ci: tuple[float, float]


def distinct_services(candidates: Iterable[tuple[str, float]]) -> list[str]:
    """Services in candidate order, each once (a service may back several candidates)."""
    seen: list[str] = []
    for service, _score in candidates:
        if service not in seen:
            seen.append(service)
    return seen


def hit_at(candidates: Iterable[tuple[str, float]], truth: str | None, k: int) -> bool:
    """True when ``truth`` is among the first ``k`` distinct services."""
    return truth is not None and truth in distinct_services(candidates)[:k]


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion; (0, 1) when there is no observation."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError(f"{successes} successes out of {n} is not a proportion")
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def brier(forecasts: Sequence[tuple[float, bool]]) -> float:
    """Mean squared gap between each stated confidence and what happened (0 is perfect)."""
    if not forecasts:
        raise ValueError("a Brier score needs at least one forecast")
    return sum((p - float(hit)) ** 2 for p, hit in forecasts) / len(forecasts)


def chance(k: int, graph_nodes: int) -> float:
    """Top-k hit rate of a uniform guess among the graph's nodes other than the alarmed one."""
    others = graph_nodes - 1
    return 1.0 if others <= k else k / others


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def accuracy_row(key: tuple[str, str, str, bool], cases: Sequence[CaseOutcome]) -> AccuracyRow:
    split, scenario, metric, changes = key
    n = len(cases)
    top1 = sum(1 for c in cases if c.hit(1))
    top3 = sum(1 for c in cases if c.hit(3))
    return AccuracyRow(
        split=split,
        scenario=scenario,
        metric=metric,
        changes=changes,
        n=n,
        top1=top1 / n,
        top3=top3 / n,
        top1_ci=wilson(top1, n),
        top3_ci=wilson(top3, n),
        confidence_right=_mean([c.confidence for c in cases if c.hit(1)]),
        confidence_wrong=_mean([c.confidence for c in cases if not c.hit(1)]),
        brier=brier([(c.confidence, c.hit(1)) for c in cases]),
        median_seconds=statistics.median(c.seconds for c in cases),
        usd_per_case=sum(c.usd for c in cases) / n,
        chance_top1=sum(chance(1, c.graph_nodes) for c in cases) / n,
        chance_top3=sum(chance(3, c.graph_nodes) for c in cases) / n,
    )


def accuracy_rows(outcomes: Iterable[CaseOutcome]) -> list[AccuracyRow]:
    """One row per split x scenario x metric x change feed, plus pooled rows: over scenarios
    per split (scenario ``all``) and, when there are several splits, over everything."""
    issues = [o for o in outcomes if not o.key.healthy]
    several_splits = len({o.key.split for o in issues}) > 1
    groups: dict[tuple[str, str, str, bool], list[CaseOutcome]] = {}
    for o in issues:
        k = o.key
        keys = [(k.split, k.scenario), (k.split, ALL)] + ([(ALL, ALL)] if several_splits else [])
        for split, scenario in keys:
            groups.setdefault((split, scenario, k.metric, k.changes), []).append(o)
    rows = [accuracy_row(key, cases) for key, cases in groups.items()]
    return sorted(rows, key=lambda r: _row_order(r.changes, r.split, r.scenario, r.metric))


def specificity_rows(outcomes: Iterable[CaseOutcome]) -> list[SpecificityRow]:
    """Share of healthy windows where OPX abstained, per scenario x metric x change feed, plus
    the pooled rows (scenario ``all``)."""
    groups: dict[tuple[str, str, bool], list[CaseOutcome]] = {}
    for o in outcomes:
        if o.key.healthy:
            for scenario in (o.key.scenario, ALL):
                groups.setdefault((scenario, o.key.metric, o.key.changes), []).append(o)
    rows = []
    for (scenario, metric, changes), cases in groups.items():
        quiet = sum(1 for c in cases if c.abstained)
        rows.append(
            SpecificityRow(
                scenario, metric, changes, len(cases), quiet / len(cases), wilson(quiet, len(cases))
            )
        )
    return sorted(rows, key=lambda r: _row_order(r.changes, ALL, r.scenario, r.metric))


def split_rank(split: str) -> tuple[int, str]:
    """Sort key of a split name: train, dev, test, then others by name, ``all`` last."""
    if split == ALL:
        return (len(SPLIT_ORDER) + 1, split)
    if split in SPLIT_ORDER:
        return (SPLIT_ORDER.index(split), split)
    return (len(SPLIT_ORDER), split)


def _row_order(changes: bool, split: str, scenario: str, metric: str) -> tuple[object, ...]:
    return (changes, split_rank(split), scenario == ALL, scenario, metric)


# -- fault-type rows (AS@k) --------------------------------------------------------------------

TOP_KS = (1, 3, 5)


@dataclass(frozen=True)
class TopKRow:
    """AS@1/3/5 (the true service among the first k distinct candidates) of one fault type,
    or of every case (``ALL``), with Wilson intervals, Brier score and median time."""

    fault_type: str
    n: int
    hits: tuple[float, ...]
    cis: tuple[tuple[float, float], ...]
    brier: float
    median_seconds: float


def topk_row(group: str, cases: Sequence[CaseOutcome], ks: Sequence[int] = TOP_KS) -> TopKRow:
    n = len(cases)
    counts = [sum(1 for c in cases if c.hit(k)) for k in ks]
    return TopKRow(
        fault_type=group,
        n=n,
        hits=tuple(count / n for count in counts),
        cis=tuple(wilson(count, n) for count in counts),
        brier=brier([(c.confidence, c.hit(1)) for c in cases]),
        median_seconds=statistics.median(c.seconds for c in cases),
    )


def fault_type_of(outcome: CaseOutcome) -> str:
    return outcome.key.fault_type or outcome.key.metric


def topk_rows(outcomes: Sequence[CaseOutcome]) -> list[TopKRow]:
    """One row per fault type (by name), then the pooled row ``all``."""
    groups: dict[str, list[CaseOutcome]] = {}
    for outcome in outcomes:
        groups.setdefault(fault_type_of(outcome), []).append(outcome)
    rows = [topk_row(name, groups[name]) for name in sorted(groups)]
    if outcomes:
        rows.append(topk_row(ALL, outcomes))
    return rows


def agent_hit_rates(outcomes: Sequence[CaseOutcome]) -> dict[str, dict[str, float]]:
    """For each agent, the share of cases per fault type (and ``all``) where its primary root
    cause was the true service; an agent that named none counts as a miss."""
    agents = sorted({agent for o in outcomes for agent, _ in o.agents})
    rates: dict[str, dict[str, float]] = {}
    for agent in agents:
        groups: dict[str, list[bool]] = {}
        for outcome in outcomes:
            named = dict(outcome.agents).get(agent)
            hit = named is not None and named == outcome.truth
            for group in (fault_type_of(outcome), ALL):
                groups.setdefault(group, []).append(hit)
        rates[agent] = {
            g: sum(hits) / len(hits) for g, hits in sorted(groups.items(), key=_all_last)
        }
    return rates


def _all_last(item: tuple[str, object]) -> tuple[bool, str]:
    return (item[0] == ALL, item[0])
