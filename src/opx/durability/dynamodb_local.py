"""Local DynamoDB servers for tests, benchmarks and development: dynalite (npm) and moto's
server mode, each on 127.0.0.1 with a free port, stopped by ``LocalServer.stop``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from opx.durability.dynamodb_io import make_client

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

HOST = "127.0.0.1"
DYNALITE = Path("node_modules") / ".bin" / "dynalite"


class ServerUnavailable(RuntimeError):
    """A local server could not be started."""


@dataclass
class LocalServer:
    name: str
    endpoint: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


def local_client(endpoint: str) -> DynamoDBClient:
    """A client for a local server: dummy credentials, so boto3 never looks for real ones."""
    return make_client(
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def node_available() -> bool:
    return shutil.which("node") is not None


def start_dynalite(repo: Path, *, create_table_ms: int = 20) -> LocalServer:
    """dynalite from the repository's node_modules (installed by ``make test``), in memory."""
    binary = repo / DYNALITE
    if not binary.exists():
        raise ServerUnavailable(f"{binary} is missing: run `npm ci` in {repo}")
    return _start(
        "dynalite",
        lambda port: [
            str(binary),
            "--host",
            HOST,
            "--port",
            str(port),
            "--createTableMs",
            str(create_table_ms),
            "--deleteTableMs",
            str(create_table_ms),
        ],
    )


def start_moto() -> LocalServer:
    return _start(
        "moto", lambda port: [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]
    )


def _start(name: str, command: object, *, attempts: int = 3) -> LocalServer:
    last = ""
    for _ in range(attempts):
        port = _free_port()
        log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the server)
        argv = command(port)  # type: ignore[operator]
        env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        server = LocalServer(name, f"http://{HOST}:{port}", process, log)
        if _wait_listening(port, process, timeout_s=30.0):
            return server
        server.stop()
        last = _tail(log)
    raise ServerUnavailable(f"{name} did not start: {last}")


def _free_port() -> int:
    # The port may be taken between here and the server's bind: _start retries on failure.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _tail(log: IO[bytes]) -> str:
    try:
        log.seek(0)
        return log.read()[-2000:].decode(errors="replace")
    except (OSError, ValueError):
        return ""
