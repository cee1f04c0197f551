"""Graph helpers: reachability, paths, fan-in and discounting symptoms of anomalous callees."""

from __future__ import annotations

import pytest

from opx.agents.local.topology import (
    Topology,
    ancestors,
    call_path,
    descendants,
    discount_symptoms,
    fan_in,
    most_downstream,
    propagation_path,
    rank_nodes,
)

CHAIN = Topology.from_edges([], [("a", "b"), ("b", "c"), ("c", "d")])
#      a
#     / \
#    b   c      x -> y (unrelated)
#     \ /
#      d
DIAMOND = Topology.from_edges(
    ["lonely"], [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("x", "y")]
)


def test_from_payload_reads_the_tool_shape_and_skips_junk() -> None:
    graph = Topology.from_payload(
        {
            "nodes": [{"name": "a", "type": "svc"}, {"name": ""}, "junk"],
            "edges": [
                {"source": "a", "target": "b"},
                {"source": "a"},
                {"source": "b", "target": "b"},
            ],
        }
    )
    assert graph.nodes == ("a", "b")
    assert graph.callees["a"] == ("b",)
    assert graph.callees["b"] == ()  # self-calls ignored
    assert "b" in graph and "zz" not in graph
    assert Topology.from_payload({}).empty


def test_descendants_and_ancestors_with_distances() -> None:
    assert descendants(CHAIN, "a") == {"a": 0, "b": 1, "c": 2, "d": 3}
    assert descendants(DIAMOND, "a") == {"a": 0, "b": 1, "c": 1, "d": 2}
    assert ancestors(DIAMOND, "d") == {"d": 0, "b": 1, "c": 1, "a": 2}
    assert descendants(DIAMOND, "lonely") == {"lonely": 0}


def test_descendants_terminate_on_cycles() -> None:
    cyclic = Topology.from_edges([], [("a", "b"), ("b", "c"), ("c", "a")])
    assert descendants(cyclic, "a") == {"a": 0, "b": 1, "c": 2}


def test_paths_are_shortest_and_deterministic() -> None:
    assert call_path(DIAMOND, "a", "d") == ["a", "b", "d"]
    assert call_path(DIAMOND, "d", "a") is None
    assert call_path(DIAMOND, "a", "y") is None
    assert propagation_path(CHAIN, "d", "a") == ["d", "c", "b", "a"]
    assert propagation_path(CHAIN, "a", "a") == ["a"]


def test_fan_in_counts_direct_callers_and_all_dependents() -> None:
    assert fan_in(DIAMOND, "d") == (2, 3)
    assert fan_in(DIAMOND, "a") == (0, 0)


def test_a_caller_explained_by_an_anomalous_callee_is_discounted() -> None:
    scores = {"a": 0.9, "b": 0.9, "c": 0.9, "d": 0.95}
    explained = discount_symptoms(CHAIN, scores)
    assert explained["d"].adjusted == pytest.approx(0.95)
    assert explained["d"].explained_by is None
    assert explained["c"].explained_by == "d"
    assert explained["c"].adjusted == pytest.approx(0.9 * 0.05)
    # b is explained by its nearest anomalous callee; farther ones decay with distance.
    assert explained["b"].explained_by == "c"
    ranked = rank_nodes(explained, descendants(CHAIN, "a"))
    assert ranked[0].node == "d"


def test_weak_callees_below_the_floor_do_not_explain_a_strong_caller() -> None:
    scores = {"a": 0.95, "b": 0.3}
    explained = discount_symptoms(CHAIN, scores, min_explaining=0.5)
    assert explained["a"].adjusted == pytest.approx(0.95)
    assert explained["a"].explained_by is None


def test_without_a_graph_nothing_is_discounted() -> None:
    explained = discount_symptoms(None, {"a": 0.7, "b": 0.9})
    assert {k: v.adjusted for k, v in explained.items()} == {"a": 0.7, "b": 0.9}


def test_rank_ties_prefer_the_more_downstream_node_then_the_name() -> None:
    explained = discount_symptoms(None, {"b": 0.8, "a": 0.8, "d": 0.8})
    depth = {"a": 0, "b": 1, "d": 1}
    assert [e.node for e in rank_nodes(explained, depth)] == ["b", "d", "a"]


def test_most_downstream_finds_the_deepest_anomalous_nodes_on_reachable_paths() -> None:
    anomalous = {"a": 0.9, "b": 0.8, "d": 0.7, "y": 0.99}
    assert most_downstream(DIAMOND, "a", anomalous) == ["d"]
    # Two independent branches: strongest first.
    branches = Topology.from_edges([], [("a", "b"), ("a", "c")])
    assert most_downstream(branches, "a", {"a": 0.9, "b": 0.6, "c": 0.8}) == ["c", "b"]
    assert most_downstream(DIAMOND, "a", {"y": 0.9}) == []


def test_most_downstream_on_a_cycle_keeps_the_cycle_members() -> None:
    cyclic = Topology.from_edges([], [("a", "b"), ("b", "c"), ("c", "b")])
    assert most_downstream(cyclic, "a", {"a": 0.9, "b": 0.9, "c": 0.95}) == ["c", "b"]


def test_only_fault_scores_explain_callers() -> None:
    # b's anomaly is a traffic change: it cannot explain its caller a.
    scores = {"a": 0.9, "b": 0.95}
    explained = discount_symptoms(
        CHAIN, scores, faults={"a": 0.9, "b": 0.0}, load_driven={"b"}, min_explaining=0.5
    )
    assert explained["a"].adjusted == pytest.approx(0.9)
    # Load flows down: b's traffic change is explained by its anomalous caller a.
    assert explained["b"].explained_by == "a"
    assert explained["b"].adjusted == pytest.approx(0.95 * 0.1)
    assert rank_nodes(explained, descendants(CHAIN, "a"))[0].node == "a"


def test_rank_ties_prefer_more_corroborated_nodes() -> None:
    explained = discount_symptoms(None, {"a": 0.8, "b": 0.8})
    ranked = rank_nodes(explained, {"a": 1, "b": 2}, {"a": 3, "b": 1})
    assert [e.node for e in ranked] == ["a", "b"]


def test_a_callee_explains_a_caller_in_proportion_to_the_impact_it_accounts_for() -> None:
    scores = {"a": 0.9, "b": 0.9, "c": 0.9, "d": 0.95}
    # c's extra request-seconds are d's; b has four times what c has: most of it is b's own.
    impacts = {"a": 400.0, "b": 400.0, "c": 100.0, "d": 100.0}
    explained = discount_symptoms(CHAIN, scores, impacts=impacts)
    assert explained["c"].explained_by == "d"
    assert explained["c"].adjusted == pytest.approx(0.9 * (1 - 0.95))
    assert explained["b"].adjusted == pytest.approx(0.9 * (1 - 0.95 * 0.25))
    assert explained["a"].explained_by == "b"
    ranked = rank_nodes(explained, descendants(CHAIN, "a"))
    assert [e.node for e in ranked[:2]] == ["d", "b"]
    # Without impacts, distance decides: b would pass for a symptom of c.
    plain = discount_symptoms(CHAIN, scores)
    assert plain["b"].adjusted < explained["b"].adjusted


def test_unknown_or_non_positive_impacts_fall_back_to_the_distance_rule() -> None:
    scores = {"a": 0.9, "b": 0.9, "c": 0.9, "d": 0.95}
    plain = discount_symptoms(CHAIN, scores)
    partial = discount_symptoms(CHAIN, scores, impacts={"c": 0.0, "d": 50.0})
    assert partial["c"].adjusted == pytest.approx(plain["c"].adjusted)
    assert partial["b"].adjusted == pytest.approx(plain["b"].adjusted)


def test_own_evidence_of_a_caller_is_not_discounted_by_its_callees() -> None:
    scores = {"c": 0.9, "d": 0.95}
    explained = discount_symptoms(CHAIN, scores, own={"c": 0.8})
    assert explained["c"].adjusted == pytest.approx(0.8)
    assert explained["c"].explained_by is None
    # Own evidence weaker than what is left after the discount changes nothing.
    weak = discount_symptoms(CHAIN, scores, own={"c": 0.01})
    assert weak["c"].adjusted == pytest.approx(0.9 * 0.05)
    assert weak["c"].explained_by == "d"
    # Own evidence never exceeds the node's score.
    capped = discount_symptoms(CHAIN, scores, own={"c": 2.0})
    assert capped["c"].adjusted == pytest.approx(0.9)


def test_no_own_evidence_keeps_the_explanation_of_a_fully_explained_caller() -> None:
    explained = discount_symptoms(CHAIN, {"c": 0.9, "d": 1.0}, own={"c": 0.0})
    assert explained["c"].adjusted == pytest.approx(0.0)
    assert explained["c"].explained_by == "d"
