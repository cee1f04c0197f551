"""Clients honour the standard AWS SDK configuration and are always guarded."""

from __future__ import annotations

import os

import pytest

from opx.security.readonly import WriteRefused
from opx.tools.aws.clients import SessionClients, client_config, region_from


def test_clients_follow_standard_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("AWS_ENDPOINT_URL_XRAY", "http://127.0.0.1:4567")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    clients = SessionClients(request_s=1.5, region=region_from(os.environ))
    logs, xray = clients("logs"), clients("xray")
    assert logs.meta.region_name == "eu-west-3"
    assert logs.meta.endpoint_url == "http://127.0.0.1:4566"
    assert xray.meta.endpoint_url == "http://127.0.0.1:4567"
    assert clients("logs") is logs
    assert logs.meta.config.read_timeout == 1.5
    assert logs.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 3}
    with pytest.raises(WriteRefused):
        logs.delete_log_group(logGroupName="/aws/lambda/x")


def test_client_config() -> None:
    config = client_config(0.5, 3)
    assert (config.connect_timeout, config.read_timeout) == (0.5, 0.5)
    assert config.retries == {"max_attempts": 3, "mode": "adaptive"}


def test_region_precedence() -> None:
    assert region_from({"AWS_REGION": "a", "AWS_DEFAULT_REGION": "b"}) == "a"
    assert region_from({"AWS_DEFAULT_REGION": "b"}) == "b"
    assert region_from({}) is None
