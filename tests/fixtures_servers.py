"""pytest fixtures: dynalite and moto (server mode) on 127.0.0.1 with free ports, and fresh
DynamoDB tables on them. Servers start once per session and stop when it ends."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from opx.durability.dynamodb import create_table
from opx.durability.dynamodb_local import local_client, node_available, start_dynalite, start_moto

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# boto3 must never probe the instance-metadata address or find real credentials.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

REPO = Path(__file__).resolve().parent.parent
_TABLES = itertools.count(1)


@dataclass(frozen=True)
class Table:
    client: DynamoDBClient
    name: str


def new_table(endpoint: str) -> Table:
    """A fresh, ACTIVE checkpoint table (names are sequential, so runs are repeatable)."""
    client = local_client(endpoint)
    name = f"opx-test-{next(_TABLES):04d}"
    create_table(client, name)
    return Table(client, name)


@pytest.fixture(scope="session")
def dynalite_endpoint() -> Iterator[str]:
    if not node_available():
        pytest.skip("Node.js is not installed, so dynalite cannot run")
    server = start_dynalite(REPO)
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = start_moto()
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture
def ddb_table(dynalite_endpoint: str) -> Table:
    """A fresh checkpoint table on dynalite."""
    return new_table(dynalite_endpoint)
