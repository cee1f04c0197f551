"""Helpers for the AWS source tests: clients on the local moto server, botocore Stubbers, a fake
clock, and a source built over them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from opx.security.readonly import guard, telemetry_policy
from opx.tools.aws.settings import AwsSettings
from opx.tools.aws.source import AwsTelemetrySource

# A port nothing listens on: stubbed clients must never send a request.
UNUSED_ENDPOINT = "http://127.0.0.1:9"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def aws_client(service: str, endpoint: str, *, timeout_s: float = 2.0) -> Any:
    """A telemetry-guarded client with dummy credentials, one attempt and short timeouts."""
    client = boto3.session.Session().client(
        cast(Any, service),
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(
            connect_timeout=timeout_s,
            read_timeout=timeout_s,
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )
    return guard(client, telemetry_policy())


def raw_client(service: str, endpoint: str) -> Any:
    """An unguarded client, for seeding a local server."""
    return boto3.session.Session().client(
        cast(Any, service),
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@dataclass
class Stubs:
    """One stubbed client per service, created on first use; every stub must be consumed."""

    clients: dict[str, Any] = field(default_factory=dict)
    stubbers: dict[str, Stubber] = field(default_factory=dict)

    def __call__(self, service: str) -> Any:
        if service not in self.clients:
            client = aws_client(service, UNUSED_ENDPOINT)
            stubber = Stubber(client)
            stubber.activate()
            self.clients[service], self.stubbers[service] = client, stubber
        return self.clients[service]

    def __getitem__(self, service: str) -> Stubber:
        self(service)
        return self.stubbers[service]

    def check(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


@pytest.fixture
def stubs() -> Iterator[Stubs]:
    found = Stubs()
    yield found
    for stubber in found.stubbers.values():
        stubber.deactivate()


@dataclass
class FakeClock:
    """Monotonic time that only moves when something sleeps."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def make_source(
    clients: Callable[[str], Any],
    settings: AwsSettings | None = None,
    *,
    services: tuple[str, ...] = (),
    clock: FakeClock | None = None,
    graph_window: tuple[datetime, datetime] | None = None,
) -> AwsTelemetrySource:
    kwargs: dict[str, Any] = {}
    if clock is not None:
        kwargs.update(clock=clock, sleep=clock.sleep)
    return AwsTelemetrySource(
        settings or AwsSettings(),
        clients=clients,
        services=services,
        graph_window=graph_window,
        now=lambda: T0,
        **kwargs,
    )


@pytest.fixture
def moto_clients(moto_endpoint: str) -> Callable[[str], Any]:
    cache: dict[str, Any] = {}

    def factory(service: str) -> Any:
        if service not in cache:
            cache[service] = aws_client(service, moto_endpoint)
        return cache[service]

    return factory
