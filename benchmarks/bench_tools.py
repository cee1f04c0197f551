"""Seconds the in-memory telemetry tools take to page whole metric answers, on synthetic systems.

Each case builds a fresh :class:`~opx.tools.memory.InMemoryTools` (so nothing is cached from an
earlier run) and follows every ``get_metrics`` page with :func:`opx.tools.paging.collect`, the
way the analysts read metrics. ``--digest`` also prints a SHA-256 of every page's JSON, so two
versions of the tools can be checked for byte-identical answers on the same data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opx.domain.tool_result import MAX_TOOL_RESULT_BYTES, ToolResult
from opx.tools.memory import InMemoryTools
from opx.tools.paging import collect
from opx.tools.records import MetricSeries

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
STEP = timedelta(minutes=1)
STATS = ("Average", "p50", "p90", "p99", "Sum")


@dataclass(frozen=True)
class Case:
    name: str
    services: int
    per_service: int
    points: int
    per_service_queries: bool


CASES = (
    Case("system 40x20x700, one query", 40, 20, 700, per_service_queries=False),
    Case("system 40x20x700, a query per service", 40, 20, 700, per_service_queries=True),
    Case("petshop-sized 15x20x600 (300 series)", 15, 20, 600, per_service_queries=False),
)


def synthetic_series(services: int, per_service: int, points: int, seed: int) -> list[MetricSeries]:
    """Series on a shared one-minute grid with values of varied magnitude and precision."""
    rng = random.Random(seed)
    stamps = tuple(T0 + STEP * i for i in range(points))
    found = []
    for s in range(services):
        for m in range(per_service):
            scale = 10 ** rng.randint(-2, 5)
            digits = rng.randint(0, 6)
            values = tuple(round(scale * (1 + rng.random()), digits) for _ in range(points))
            stat = STATS[m % len(STATS)]
            found.append(
                MetricSeries(f"svc-{s:02d}", f"Metric{m:02d}", stat, "Count", stamps, values)
            )
    return found


def _queries(tools: InMemoryTools, case: Case) -> Iterator[Callable[[str | None], ToolResult]]:
    """One query for the whole system, or one per service, each over every point."""
    end = T0 + STEP * case.points
    services = [f"svc-{s:02d}" for s in range(case.services)]
    for service in services if case.per_service_queries else [None]:
        yield _metrics_call(tools, end, service)


def _metrics_call(
    tools: InMemoryTools, end: datetime, service: str | None
) -> Callable[[str | None], ToolResult]:
    return lambda token: tools.get_metrics(T0, end, service=service, next_token=token)


def run_once(case: Case, series: list[MetricSeries]) -> tuple[float, int]:
    """Seconds to collect every page of the case's queries from fresh tools, and the pages."""
    tools = InMemoryTools("bench", series=series)
    began = time.perf_counter()
    pages = sum(collect(call, max_pages=100_000).pages for call in _queries(tools, case))
    return time.perf_counter() - began, pages


def digest(case: Case, series: list[MetricSeries]) -> str:
    """SHA-256 over every page's JSON; also checks each page stays within the size limit."""
    tools = InMemoryTools("bench", series=series)
    sha = hashlib.sha256()
    for call in _queries(tools, case):
        token: str | None = None
        while True:
            page = call(token)
            assert page.size_bytes() <= MAX_TOOL_RESULT_BYTES
            sha.update(json.dumps(page.model_dump(mode="json"), separators=(",", ":")).encode())
            token = page.next_token
            if token is None:
                break
    return sha.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per case (default 3)")
    parser.add_argument("--digest", action="store_true", help="print a digest of every page")
    args = parser.parse_args()
    print(f"{'case':<42}{'pages':>7}{'best s':>9}{'median s':>10}")
    for index, case in enumerate(CASES):
        series = synthetic_series(case.services, case.per_service, case.points, seed=index)
        runs = [run_once(case, series) for _ in range(args.runs)]
        seconds = [r[0] for r in runs]
        median = statistics.median(seconds)
        line = f"{case.name:<42}{runs[0][1]:>7}{min(seconds):>9.3f}{median:>10.3f}"
        if args.digest:
            line += f"  {digest(case, series)[:16]}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
