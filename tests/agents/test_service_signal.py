"""Per-service evidence: what is a service's own, and how much time its latency cost."""

from __future__ import annotations

import pytest

from opx.agents.local.families import is_client_side
from opx.agents.local.logs import TemplateStat
from opx.agents.local.service_signal import ServiceSignal, build_signals, latency_shares
from opx.agents.local.spans import LatencyStat


def _latency(service: str, z: float, rise_ms: float, spans: int = 10) -> LatencyStat:
    return LatencyStat(service, 30, spans, 3.0, 3.0 + rise_ms, z, (), kind="hop_gap")


def _template(service: str, z: float, operation: str = "") -> TemplateStat:
    return TemplateStat(
        "tpl-x", service, "x failed", 0, 10, 0.0, z, True, (), (), operation=operation
    )


def test_latency_shares_weigh_each_rise_by_the_time_it_cost() -> None:
    shares = latency_shares(
        {
            "slow": _latency("slow", 50.0, 2000.0),
            "jitter": _latency("jitter", 30.0, 14.0),
        }
    )
    assert shares["slow"] == pytest.approx(1.0)
    assert shares["jitter"] == pytest.approx(14.0 / 2000.0)
    assert latency_shares({"calm": _latency("calm", 1.0, 50.0)}) == {}


def test_a_cheap_rise_weighs_little_in_the_trace_strength() -> None:
    signals = build_signals(
        [],
        [],
        {},
        {
            "slow": _latency("slow", 50.0, 2000.0),
            "jitter": _latency("jitter", 30.0, 14.0),
        },
        None,
    )
    assert signals["slow"].strengths()["traces"] > 0.95
    assert signals["jitter"].strengths()["traces"] < 0.01


def test_own_evidence_counts_tied_lines_and_traces_only_when_anomalous() -> None:
    tied = ServiceSignal(
        "a", log=_template("a", 10.0, "Query"), own_log=_template("a", 10.0, "Query")
    )
    assert tied.own == pytest.approx(tied.log.strength if tied.log else 0.0)
    loose = ServiceSignal("a", log=_template("a", 10.0))
    assert loose.own == 0.0
    faint = ServiceSignal("a", own_log=_template("a", 2.0, "Query"))
    assert faint.own == 0.0
    hop = ServiceSignal("a", latency=_latency("a", 20.0, 100.0))
    assert hop.own == pytest.approx(hop.strengths()["traces"])


def test_build_signals_keeps_the_strongest_tied_template_as_own() -> None:
    templates = [_template("a", 12.0), _template("a", 6.0, "Query")]
    signal = build_signals([], templates, {}, {}, None)["a"]
    assert signal.log is not None and signal.log.z == 12.0
    assert signal.own_log is not None and signal.own_log.operation == "Query"


@pytest.mark.parametrize(
    ("metric", "client"),
    [
        ("PodClientLatencyP90(s)", True),
        ("OutboundErrors", True),
        ("PodServerLatencyP90(s)", False),
        ("ClientConnections", False),
        ("CpuUsageRate(%)", False),
    ],
)
def test_client_side_measures_are_latency_or_errors_of_outbound_calls(
    metric: str, client: bool
) -> None:
    assert is_client_side(metric) is client
