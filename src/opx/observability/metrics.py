"""Every CloudWatch metric OPX emits, by name: the code that emits a metric and the infrastructure
that charts it or alarms on it both take the name from here, so they cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACE = "OPX"


@dataclass(frozen=True)
class Metric:
    """One metric of the ``OPX`` namespace. ``unit`` is a CloudWatch unit name."""

    name: str
    unit: str
    description: str


REPLAY_COUNT = Metric(
    "Replay/Count", "Count", "`opx replay` runs that reached a verdict (identical or not)"
)

ALL_METRICS: tuple[Metric, ...] = (REPLAY_COUNT,)
