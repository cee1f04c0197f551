"""Service-graph helpers: reachability, propagation paths, fan-in and symptom discounting.

An edge means *source calls target*: requests flow along edges, failures flow against them, so
a caller's anomaly may be a symptom of an anomalous callee.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# How much of a callee's anomaly still explains a caller per extra hop of distance.
DEFAULT_DECAY = 0.8


@dataclass(frozen=True)
class Topology:
    """An immutable call graph with sorted adjacency in both directions."""

    nodes: tuple[str, ...]
    callees: Mapping[str, tuple[str, ...]]
    callers: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_edges(cls, nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> Topology:
        """A graph from node names and (caller, callee) pairs; self-calls are ignored and edge
        endpoints missing from ``nodes`` are added."""
        names = set(nodes)
        down: dict[str, set[str]] = {}
        up: dict[str, set[str]] = {}
        for source, target in edges:
            names.update((source, target))
            if source != target:
                down.setdefault(source, set()).add(target)
                up.setdefault(target, set()).add(source)
        ordered = tuple(sorted(names))
        return cls(
            nodes=ordered,
            callees={n: tuple(sorted(down.get(n, ()))) for n in ordered},
            callers={n: tuple(sorted(up.get(n, ()))) for n in ordered},
        )

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Topology:
        """A graph from the ``get_service_graph`` data shape; malformed entries are skipped."""
        nodes = [
            str(n["name"]) for n in data.get("nodes") or [] if isinstance(n, dict) and n.get("name")
        ]
        edges = [
            (str(e["source"]), str(e["target"]))
            for e in data.get("edges") or []
            if isinstance(e, dict) and e.get("source") and e.get("target")
        ]
        return cls.from_edges(nodes, edges)

    def __contains__(self, node: object) -> bool:
        return node in self.callees

    @property
    def empty(self) -> bool:
        return not self.nodes


def _bfs(start: str, neighbours: Mapping[str, tuple[str, ...]]) -> dict[str, int]:
    distance = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in neighbours.get(node, ()):
            if nxt not in distance:
                distance[nxt] = distance[node] + 1
                queue.append(nxt)
    return distance


def descendants(graph: Topology, start: str) -> dict[str, int]:
    """Every node ``start`` calls, transitively, with its hop distance (``start`` itself at 0)."""
    return _bfs(start, graph.callees)


def ancestors(graph: Topology, start: str) -> dict[str, int]:
    """Every node that calls ``start``, transitively, with its hop distance (itself at 0)."""
    return _bfs(start, graph.callers)


def call_path(graph: Topology, source: str, target: str) -> list[str] | None:
    """A shortest chain of calls from ``source`` to ``target`` (both included), the
    alphabetically first among equals; None if ``source`` does not reach ``target``."""
    previous: dict[str, str | None] = {source: None}
    queue = deque([source])
    while queue:
        node = queue.popleft()
        if node == target:
            break
        for nxt in graph.callees.get(node, ()):
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    if target not in previous:
        return None
    path: list[str] = []
    cursor: str | None = target
    while cursor is not None:
        path.append(cursor)
        cursor = previous[cursor]
    return path[::-1]


def propagation_path(graph: Topology, origin: str, incident: str) -> list[str] | None:
    """How a failure travels from ``origin`` up the callers to ``incident`` (origin first)."""
    path = call_path(graph, incident, origin)
    return None if path is None else path[::-1]


@dataclass(frozen=True)
class Explained:
    """A node's anomaly after discounting what its anomalous callees explain."""

    node: str
    score: float
    adjusted: float
    explained_by: str | None
    explanation: float


def discount_symptoms(
    graph: Topology | None,
    scores: Mapping[str, float],
    *,
    faults: Mapping[str, float] | None = None,
    load_driven: Collection[str] = (),
    decay: float = DEFAULT_DECAY,
    min_explaining: float = 0.0,
    impacts: Mapping[str, float] | None = None,
    own: Mapping[str, float] | None = None,
) -> dict[str, Explained]:
    """For each scored node, ``adjusted = score * (1 - e)``. Failures travel from callees to
    callers, so ``e`` is the strongest explanation by one of the node's transitive callees whose
    fault score (``faults``, default ``scores``) is at least ``min_explaining``. When both
    impacts are known (``impacts``: absolute excess such as request-seconds, positive for the
    node) a callee explains ``fault * min(1, its impact / the node's)``: a caller whose extra
    latency its callee's accounts for is a symptom, one with far more than its callee has a
    problem of its own. Otherwise a callee explains ``fault * decay**(hops - 1)``. Load travels
    the other way, so for a node whose anomaly is mostly a traffic change (``load_driven``)
    anomalous transitive callers explain it too. ``own`` is the part of a node's score that no
    callee can produce (its exclusive span time, the lines its own operations log): it is never
    discounted, so ``adjusted`` is at least ``own`` (and then nothing explains it)."""
    explaining = scores if faults is None else faults
    result: dict[str, Explained] = {}
    for node in sorted(scores):
        best, by = 0.0, None
        if graph is not None and node in graph:
            share = _impact_share(node, impacts)
            best, by = _strongest(
                descendants(graph, node), explaining, decay, min_explaining, share
            )
            if node in load_driven:
                up, up_by = _strongest(ancestors(graph, node), scores, decay, min_explaining)
                if up > best:
                    best, by = up, up_by
        best = min(best, 1.0)
        score = scores[node]
        kept = min((own or {}).get(node, 0.0), score)
        if kept > 0.0 and kept >= score * (1.0 - best):
            best, by = (score - kept) / score if score > 0 else 0.0, None
        result[node] = Explained(node, score, score * (1.0 - best), by, best)
    return result


def _impact_share(node: str, impacts: Mapping[str, float] | None) -> Callable[[str], float | None]:
    """How much of ``node``'s impact another node's accounts for (None when not comparable)."""
    own = None if impacts is None else impacts.get(node)

    def share(other: str) -> float | None:
        theirs = None if impacts is None else impacts.get(other)
        if own is None or theirs is None or own <= 0.0:
            return None
        return min(1.0, max(theirs, 0.0) / own)

    return share


def _strongest(
    reach: Mapping[str, int],
    scores: Mapping[str, float],
    decay: float,
    floor: float,
    share: Callable[[str], float | None] | None = None,
) -> tuple[float, str | None]:
    """The strongest explanation among the reached nodes (not the start), and whose it is:
    score x impact share when comparable, else score x decay per extra hop."""
    best, by = 0.0, None
    for other, hops in sorted(reach.items()):
        other_score = scores.get(other, 0.0)
        if hops == 0 or other_score < floor:
            continue
        portion = share(other) if share is not None else None
        explained = other_score * (decay ** (hops - 1) if portion is None else portion)
        if explained > best:
            best, by = explained, other
    return best, by


def rank_nodes(
    explained: Mapping[str, Explained],
    depth: Mapping[str, int],
    support: Mapping[str, int] | None = None,
) -> list[Explained]:
    """Nodes by adjusted score; ties go to the node with more corroborating observations
    (``support``), then to the more downstream one (larger ``depth``), then to the
    alphabetically first name."""
    backing = support or {}
    return sorted(
        explained.values(),
        key=lambda e: (-e.adjusted, -backing.get(e.node, 0), -depth.get(e.node, 0), e.node),
    )


def most_downstream(graph: Topology, start: str, anomalous: Mapping[str, float]) -> list[str]:
    """Anomalous nodes reachable from ``start`` with no anomalous callee below them (a callee
    on a cycle back to the node does not count): the deepest points where a failure can begin.
    Ordered by anomaly (strongest first), then distance from ``start`` (farthest first), then
    name."""
    reach = descendants(graph, start)
    ends = []
    for node, hops in reach.items():
        if node not in anomalous:
            continue
        below = [o for o in descendants(graph, node) if o != node and o in anomalous]
        if any(node not in descendants(graph, other) for other in below):
            continue
        ends.append((-anomalous[node], -hops, node))
    return [node for _, _, node in sorted(ends)]


def fan_in(graph: Topology, node: str) -> tuple[int, int]:
    """How many distinct services call ``node`` directly, and how many depend on it at all."""
    return len(graph.callers.get(node, ())), len(ancestors(graph, node)) - 1
