"""The kill switch on SSM (moto server mode): global and per agent, the cache bound with an
injected clock, and what happens when SSM cannot be read."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from opx.agents.roster import CHANGE, RISK, SIGNAL
from opx.config import load_settings
from opx.runtime.killswitch import (
    CACHE_SECONDS,
    SSM_POLICY,
    KillSwitchUnavailable,
    LocalKillSwitch,
    SsmKillSwitch,
    open_kill_switch,
)
from opx.security.readonly import WriteRefused, guard
from tests.runtime.handler_builders import Harness, incident_event

_PREFIXES = itertools.count(1)


def ssm(endpoint: str) -> object:
    return boto3.client(
        "ssm",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def names() -> tuple[str, str]:
    """A fresh parameter name and agent path per test (moto keeps state per session)."""
    prefix = f"/opx-test-{next(_PREFIXES)}"
    return f"{prefix}/kill-switch", f"{prefix}/kill-switch/"


def put(client: object, name: str, value: str) -> None:
    client.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)  # type: ignore[attr-defined]


def test_global_and_per_agent_parameters(moto_endpoint: str, names: tuple[str, str]) -> None:
    client = ssm(moto_endpoint)
    parameter, path = names
    switch = SsmKillSwitch(client, parameter, path, clock=Clock())
    assert not switch.stops_all() and not switch.stops(SIGNAL)  # no parameter: not stopped
    put(client, path + RISK, "on")
    put(client, path + CHANGE, "off")
    fresh = SsmKillSwitch(client, parameter, path, clock=Clock())
    assert fresh.stops(RISK) and not fresh.stops(CHANGE) and not fresh.stops_all()
    put(client, parameter, " ON ")
    everything = SsmKillSwitch(client, parameter, path, clock=Clock())
    assert everything.stops_all() and everything.stops(SIGNAL)


def test_a_flip_takes_effect_within_the_cache_bound(
    moto_endpoint: str, names: tuple[str, str]
) -> None:
    client = ssm(moto_endpoint)
    parameter, path = names
    put(client, parameter, "off")
    clock = Clock()
    switch = SsmKillSwitch(client, parameter, path, clock=clock)
    assert not switch.stops_all()
    put(client, parameter, "on")
    clock.now += CACHE_SECONDS - 0.5
    assert not switch.stops_all()  # still the cached reading
    clock.now += 0.5
    assert switch.stops_all()  # read again: at most 10 s after the flip, well inside 30 s
    put(client, path + SIGNAL, "on")
    put(client, parameter, "off")
    clock.now += CACHE_SECONDS
    assert not switch.stops_all() and switch.stops(SIGNAL) and not switch.stops(RISK)
    assert CACHE_SECONDS <= 10 < 30


def test_unreadable_ssm_raises_first_then_keeps_the_last_reading(
    moto_endpoint: str, names: tuple[str, str]
) -> None:
    parameter, path = names
    down = ssm("http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(KillSwitchUnavailable):
        SsmKillSwitch(down, parameter, path, clock=Clock()).stops_all()
    client = ssm(moto_endpoint)
    put(client, path + RISK, "on")
    clock = Clock()
    switch = SsmKillSwitch(client, parameter, path, clock=clock)
    assert switch.stops(RISK)
    switch._client = down  # SSM goes away after a good reading
    clock.now += CACHE_SECONDS + 1
    assert switch.stops(RISK) and not switch.stops_all()


def test_while_ssm_is_down_it_is_asked_again_only_after_the_cache_period(
    moto_endpoint: str, names: tuple[str, str]
) -> None:
    parameter, path = names
    client = ssm(moto_endpoint)
    put(client, path + RISK, "on")
    clock = Clock()
    switch = SsmKillSwitch(client, parameter, path, clock=clock)
    assert switch.stops(RISK)
    down = ssm("http://127.0.0.1:9")  # nothing listens there
    calls: list[str] = []
    down.meta.events.register(  # type: ignore[attr-defined]
        "before-call.ssm", lambda model, **_: calls.append(model.name)
    )
    switch._client = down
    clock.now += CACHE_SECONDS + 1
    assert switch.stops(RISK) and calls == ["GetParameter"]  # failed: the last reading
    for _ in range(int(CACHE_SECONDS) - 1):  # every agent's check meanwhile: no SSM call
        clock.now += 1
        assert switch.stops(RISK) and not switch.stops_all()
    assert calls == ["GetParameter"]
    clock.now += 1  # a cache period after the failed read: asked again
    assert switch.stops(RISK) and calls == ["GetParameter", "GetParameter"]
    # SSM is back and the switch was flipped meanwhile: seen after one more period at most.
    switch._client = client
    put(client, parameter, "on")
    assert not switch.stops_all()
    clock.now += CACHE_SECONDS
    assert switch.stops_all()


def test_the_switch_client_can_only_read_parameters(moto_endpoint: str) -> None:
    client = guard(ssm(moto_endpoint), SSM_POLICY)  # type: ignore[type-var]
    with pytest.raises(WriteRefused):
        put(client, "/opx/kill-switch", "off")


def test_the_handler_reads_the_switch_from_ssm(
    moto_endpoint: str, names: tuple[str, str], tmp_path: Path
) -> None:
    client = ssm(moto_endpoint)
    parameter, path = names
    put(client, parameter, "on")
    env = {
        "OPX_KILL_SWITCH_SOURCE": "ssm",
        "OPX_KILL_SWITCH_PARAMETER": parameter,
        "OPX_KILL_SWITCH_AGENT_PATH": path,
    }
    settings = load_settings(env, data_dir=tmp_path)
    switch = open_kill_switch(settings, client_factory=lambda: client)
    harness = Harness(tmp_path, kill_switch=switch)
    assert harness.run(incident_event())["reason"] == "KILL_SWITCH"
    put(client, parameter, "off")
    put(client, path + SIGNAL, "on")
    harness.kill_switch = SsmKillSwitch(client, parameter, path)
    response = harness.run(incident_event())
    assert response["status"] == "COMPLETED" and SIGNAL not in harness.backend.calls


def test_the_local_switch_follows_the_variable(tmp_path: Path) -> None:
    settings = load_settings({"OPX_KILL_SWITCH": f"{RISK},{CHANGE}"}, data_dir=tmp_path)
    switch = open_kill_switch(settings)
    assert isinstance(switch, LocalKillSwitch)
    assert switch.stops(RISK) and switch.stops(CHANGE) and not switch.stops(SIGNAL)
    assert not switch.stops_all()
    everything = open_kill_switch(replace(settings, kill_switch_local=frozenset({"all"})))
    assert everything.stops_all() and everything.stops(SIGNAL)
