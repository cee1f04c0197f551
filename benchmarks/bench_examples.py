"""Wall time per execution and orchestration overhead on the bundled examples.

Each example runs several times, each in a fresh temporary store, through the normal execution
path (graph, checkpoints, store). Overhead is the share of wall time when no agent was working:
graph scheduling, checkpoint writes, consensus, cost and result storage.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from opx.config import load_settings
from opx.runtime.execute import execute
from opx.runtime.intake import Accepted, parse_event
from opx.runtime.wiring import open_runtime, open_tools

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


async def _once(event: Path) -> tuple[float, float, str]:
    accepted = parse_event(event.read_bytes())
    assert isinstance(accepted, Accepted)
    with tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings(data_dir=Path(data_dir))
        tools = open_tools(settings, event.parent / "bundle")
        async with open_runtime(settings, tools) as runtime:
            execution = await execute(
                accepted, deps=runtime.deps, store=runtime.store, checkpointer=runtime.checkpointer
            )
    timings = execution.result.timings
    root = execution.result.recommendation
    return timings["total_s"], timings["overhead_s"], root.root_cause.service if root else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per example (default 5)")
    args = parser.parse_args()
    totals: list[float] = []
    overheads: list[float] = []
    print(f"{'example':<24}{'median s':>10}{'overhead':>10}  root cause")
    for event in sorted(EXAMPLES.glob("*/event.json")):
        runs = [asyncio.run(_once(event)) for _ in range(args.runs)]
        total = statistics.median(r[0] for r in runs)
        share = statistics.median(r[1] / r[0] for r in runs)
        totals.extend(r[0] for r in runs)
        overheads.extend(r[1] / r[0] for r in runs)
        print(f"{event.parent.name:<24}{total:>10.3f}{share:>10.1%}  {runs[-1][2]}")
    print(
        f"{'all examples':<24}{statistics.median(totals):>10.3f}"
        f"{statistics.median(overheads):>10.1%}  (median wall time per execution, "
        "median share outside agent work)"
    )


if __name__ == "__main__":
    main()
