"""The kill switch: operators stop every analysis, or one agent, without a deployment.

Two sources, chosen by ``OPX_KILL_SWITCH_SOURCE``:

- ``env`` (the default, for a laptop or CI): ``OPX_KILL_SWITCH`` is ``all`` or a comma-separated
  list of agent ids, read once per command or invocation.
- ``ssm`` (Lambda): the SSM parameter ``/opx/kill-switch`` (value ``on`` stops every analysis),
  read with ``GetParameter``, and the parameters under ``/opx/kill-switch/`` (``<agent-id>`` =
  ``on`` stops that agent), read with ``GetParametersByPath``. Both are read together and kept
  at most :data:`CACHE_SECONDS`, so a flip takes effect within that time (well inside the 30 s
  the operators are promised) at about one pair of reads per 10 s per warm container.

A missing parameter means "not stopped". Any other value than ``on`` (case and surrounding space
ignored) means "not stopped" too, so ``off`` is the way to re-enable without deleting.

When SSM cannot be read, the last state read is used, and SSM is not asked again before another
cache period has passed (each read may wait for its timeouts); with no state read yet,
:class:`KillSwitchUnavailable` is raised: the handler treats it as an infrastructure failure
(Lambda retries), because analysing while the operators may have asked to stop is not safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from opx.config import KILL_ALL, Settings
from opx.security.readonly import ClientPolicy, guard

CACHE_SECONDS = 10.0
ON = "on"
# A botocore SSM client (no type stubs are installed for SSM).
SSMClient = Any
SSM_POLICY = ClientPolicy(
    "kill-switch", {"ssm": frozenset({"GetParameter", "GetParametersByPath"})}
)


class KillSwitchUnavailable(Exception):
    """The kill switch could not be read and no earlier reading is at hand."""


class KillSwitch(Protocol):
    def stops_all(self) -> bool:
        """True when every analysis is to stop."""
        ...

    def stops(self, agent_id: str) -> bool:
        """True when ``agent_id`` is not to run (the global switch included)."""
        ...


@dataclass(frozen=True)
class SwitchState:
    all: bool = False
    agents: frozenset[str] = frozenset()

    def stops(self, agent_id: str) -> bool:
        return self.all or agent_id in self.agents


class LocalKillSwitch:
    """``OPX_KILL_SWITCH`` as :func:`opx.config.load_settings` read it."""

    def __init__(self, names: frozenset[str]) -> None:
        self._state = SwitchState(KILL_ALL in names, frozenset(names - {KILL_ALL}))

    def stops_all(self) -> bool:
        return self._state.all

    def stops(self, agent_id: str) -> bool:
        return self._state.stops(agent_id)


class SsmKillSwitch:
    """The SSM parameters, cached for at most ``max_age_s`` seconds of ``clock``."""

    def __init__(
        self,
        client: SSMClient,
        parameter: str,
        agent_path: str,
        *,
        max_age_s: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._parameter = parameter
        self._path = agent_path if agent_path.endswith("/") else agent_path + "/"
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state: SwitchState | None = None
        self._read_at = 0.0

    def stops_all(self) -> bool:
        return self._current().all

    def stops(self, agent_id: str) -> bool:
        return self._current().stops(agent_id)

    def _current(self) -> SwitchState:
        with self._lock:
            now = self._clock()
            if self._state is not None and now - self._read_at < self._max_age_s:
                return self._state
            try:
                self._state = read_state(self._client, self._parameter, self._path)
            except KillSwitchUnavailable:
                if self._state is None:
                    raise
                # SSM is down: keep the last reading for another cache period rather than
                # blocking on SSM's timeouts before every agent of every invocation.
            self._read_at = now
            return self._state


def read_state(client: SSMClient, parameter: str, agent_path: str) -> SwitchState:
    """One reading of the global parameter and of every agent's parameter."""
    try:
        stopped_all = _is_on(_global_value(client, parameter))
        agents: set[str] = set()
        for page in client.get_paginator("get_parameters_by_path").paginate(
            Path=agent_path, Recursive=False
        ):
            for found in page.get("Parameters", []):
                name = str(found.get("Name", ""))
                if name.startswith(agent_path) and _is_on(found.get("Value")):
                    agents.add(name[len(agent_path) :])
    except (ClientError, BotoCoreError) as exc:
        raise KillSwitchUnavailable(f"the kill switch in SSM cannot be read: {exc}") from exc
    return SwitchState(stopped_all, frozenset(agents))


def _global_value(client: SSMClient, parameter: str) -> str | None:
    try:
        answer = client.get_parameter(Name=parameter)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return None
        raise
    value = answer.get("Parameter", {}).get("Value")
    return value if isinstance(value, str) else None


def _is_on(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() == ON


def ssm_client() -> SSMClient:
    """An SSM client that can only read parameters, with short timeouts (the handler waits for
    it before any analysis)."""
    import boto3  # noqa: PLC0415 (only the Lambda home needs it)
    from botocore.config import Config  # noqa: PLC0415

    config = Config(
        connect_timeout=2, read_timeout=3, retries={"max_attempts": 3, "mode": "standard"}
    )
    return guard(boto3.client("ssm", config=config), SSM_POLICY)


def open_kill_switch(
    settings: Settings, client_factory: Callable[[], SSMClient] = ssm_client
) -> KillSwitch:
    """The kill switch ``OPX_KILL_SWITCH_SOURCE`` names."""
    if settings.kill_switch_source == "ssm":
        return SsmKillSwitch(
            client_factory(), settings.kill_switch_parameter, settings.kill_switch_agent_path
        )
    return LocalKillSwitch(settings.kill_switch_local)
