"""Scoring: top-k over distinct services, Wilson intervals, Brier, specificity and grouping."""

from __future__ import annotations

import pytest

from opx.eval.scoring import (
    ALL,
    CaseKey,
    CaseOutcome,
    accuracy_rows,
    brier,
    chance,
    distinct_services,
    hit_at,
    specificity_rows,
    wilson,
)


def outcome(
    truth: str | None,
    ranked: list[str],
    *,
    split: str = "dev",
    scenario: str = "low",
    metric: str = "latency",
    confidence: float = 0.5,
    status: str = "COMPLETED",
    reason: str | None = "ROOT_CAUSE_IDENTIFIED",
    seconds: float = 1.0,
    usd: float = 0.0,
    changes: bool = False,
    healthy: bool = False,
) -> CaseOutcome:
    return CaseOutcome(
        key=CaseKey(split, scenario, f"case-{len(ranked)}", metric, changes, healthy),
        truth=truth,
        status=status,
        reason=reason,
        confidence=confidence,
        candidates=tuple((s, 1.0 / (i + 1)) for i, s in enumerate(ranked)),
        seconds=seconds,
        usd=usd,
        graph_nodes=11,
    )


def test_top_k_counts_each_service_once() -> None:
    candidates = [("a", 0.5), ("a", 0.4), ("b", 0.3), ("c", 0.2), ("d", 0.1)]
    assert distinct_services(candidates) == ["a", "b", "c", "d"]
    assert hit_at(candidates, "c", 3)
    assert not hit_at(candidates, "d", 3)
    assert hit_at(candidates, "a", 1)
    assert not hit_at(candidates, None, 5)
    assert not hit_at([], "a", 3)


@pytest.mark.parametrize(
    ("successes", "n", "expected"),
    [
        (5, 10, (0.2366, 0.7634)),
        (0, 10, (0.0, 0.2775)),
        (10, 10, (0.7225, 1.0)),
        (1, 34, (0.0052, 0.1492)),
    ],
)
def test_wilson_interval_matches_known_values(
    successes: int, n: int, expected: tuple[float, float]
) -> None:
    low, high = wilson(successes, n)
    assert low == pytest.approx(expected[0], abs=1e-4)
    assert high == pytest.approx(expected[1], abs=1e-4)


def test_wilson_without_observations_and_bad_input() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_brier_and_chance() -> None:
    assert brier([(1.0, True), (0.0, False)]) == 0.0
    assert brier([(0.8, False), (0.6, True)]) == pytest.approx((0.64 + 0.16) / 2)
    with pytest.raises(ValueError):
        brier([])
    assert chance(1, 42) == pytest.approx(1 / 41)
    assert chance(3, 42) == pytest.approx(3 / 41)
    assert chance(3, 3) == 1.0


def test_accuracy_rows_group_and_pool() -> None:
    outcomes = [
        outcome("x", ["x", "y"], scenario="low", confidence=0.9, seconds=1.0),
        outcome("x", ["y", "z", "x"], scenario="low", confidence=0.3, seconds=3.0),
        outcome("x", ["y"], scenario="high", confidence=0.2, seconds=2.0, usd=0.01),
        outcome("x", ["x"], split="train", scenario="high", confidence=1.0),
        outcome(None, [], scenario="low", healthy=True),
    ]
    rows = {(r.split, r.scenario, r.metric): r for r in accuracy_rows(outcomes)}
    assert set(rows) == {
        ("train", "high", "latency"),
        ("train", ALL, "latency"),
        ("dev", "high", "latency"),
        ("dev", "low", "latency"),
        ("dev", ALL, "latency"),
        (ALL, ALL, "latency"),
    }
    low = rows[("dev", "low", "latency")]
    assert (low.n, low.top1, low.top3) == (2, 0.5, 1.0)
    assert low.confidence_right == 0.9 and low.confidence_wrong == 0.3
    assert low.brier == pytest.approx((0.01 + 0.09) / 2)
    assert low.median_seconds == 2.0
    dev = rows[("dev", ALL, "latency")]
    assert dev.n == 3
    assert dev.top1 == pytest.approx(1 / 3) and dev.top3 == pytest.approx(2 / 3)
    assert dev.usd_per_case == pytest.approx(0.01 / 3)
    assert dev.top1_ci == wilson(1, 3)
    assert dev.chance_top1 == pytest.approx(0.1)
    assert rows[(ALL, ALL, "latency")].n == 4
    assert rows[("train", "high", "latency")].confidence_wrong is None
    ordered = [(r.split, r.scenario) for r in accuracy_rows(outcomes)]
    assert ordered == [
        ("train", "high"),
        ("train", ALL),
        ("dev", "high"),
        ("dev", "low"),
        ("dev", ALL),
        (ALL, ALL),
    ]


def test_one_split_has_no_overall_pool_and_changes_are_kept_apart() -> None:
    outcomes = [outcome("x", ["x"]), outcome("x", ["y"], changes=True)]
    rows = accuracy_rows(outcomes)
    assert [(r.split, r.scenario, r.changes, r.top1) for r in rows] == [
        ("dev", "low", False, 1.0),
        ("dev", ALL, False, 1.0),
        ("dev", "low", True, 0.0),
        ("dev", ALL, True, 0.0),
    ]


def test_specificity_counts_only_no_confident_root_cause() -> None:
    def window(status: str, reason: str, scenario: str = "low") -> CaseOutcome:
        return outcome(None, [], scenario=scenario, status=status, reason=reason, healthy=True)

    outcomes = [
        window("NO_RECOMMENDATION", "NO_CONFIDENT_ROOT_CAUSE"),
        window("NO_RECOMMENDATION", "ALL_CORE_AGENTS_FAILED"),
        window("COMPLETED", "ROOT_CAUSE_IDENTIFIED"),
        window("NO_RECOMMENDATION", "NO_CONFIDENT_ROOT_CAUSE", scenario="high"),
        outcome("x", ["x"]),
    ]
    rows = {(r.scenario, r.metric): r for r in specificity_rows(outcomes)}
    assert set(rows) == {("low", "latency"), ("high", "latency"), (ALL, "latency")}
    assert rows[("low", "latency")].n == 3
    assert rows[("low", "latency")].no_recommendation_rate == pytest.approx(1 / 3)
    assert rows[("high", "latency")].no_recommendation_rate == 1.0
    assert rows[(ALL, "latency")].n == 4
    assert rows[(ALL, "latency")].ci == wilson(2, 4)
