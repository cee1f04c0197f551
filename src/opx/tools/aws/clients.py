"""The AWS clients of the telemetry source: one boto3 session (which honours ``AWS_PROFILE``,
``AWS_REGION``, ``AWS_ENDPOINT_URL`` and the per-service ``AWS_ENDPOINT_URL_<SERVICE>``
variables), short timeouts, bounded adaptive retries, and the read-only guard on every client."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from botocore.config import Config

from opx.security.readonly import ClientPolicy, guard, telemetry_policy

# Builds (or returns) the client of one botocore service name, e.g. "logs".
ClientFactory = Callable[[str], Any]
MAX_ATTEMPTS = 2


def region_from(env: Mapping[str, str]) -> str | None:
    """The region the AWS SDKs would use from the environment: ``AWS_REGION`` first, then
    ``AWS_DEFAULT_REGION`` (botocore alone reads only the latter); None leaves it to the
    profile."""
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


def client_config(request_s: float, max_attempts: int = MAX_ATTEMPTS) -> Config:
    """Timeouts of one request and bounded adaptive retries; the deadline guard bounds the
    total."""
    return Config(
        connect_timeout=request_s,
        read_timeout=request_s,
        retries={"max_attempts": max_attempts, "mode": "adaptive"},
    )


class SessionClients:
    """Creates each service's client once, from one session, guarded by ``policy``."""

    def __init__(
        self,
        session: Any | None = None,
        *,
        request_s: float = 2.0,
        policy: ClientPolicy | None = None,
        region: str | None = None,
    ) -> None:
        self._session = session
        self._region = region
        self._config = client_config(request_s)
        self._policy = policy or telemetry_policy()
        self._clients: dict[str, Any] = {}
        # boto3 sessions are not thread-safe when creating clients; the clients themselves are.
        self._lock = threading.Lock()

    def __call__(self, service: str) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                made = self._new_session().client(
                    service, config=self._config, region_name=self._region
                )
                client = guard(made, self._policy)
                self._clients[service] = client
            return client

    def _new_session(self) -> Any:
        if self._session is None:
            import boto3  # noqa: PLC0415 (only the AWS source needs boto3)

            self._session = boto3.session.Session()
        return self._session
