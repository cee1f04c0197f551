"""A stand-in for the Lambda Invoke API on 127.0.0.1: it speaks Lambda's REST protocol
(``POST /2015-03-31/functions/<name>/invocations``, ``X-Amz-Function-Error``, errors typed by
``x-amzn-ErrorType``) so boto3's own client talks to it, and by default answers each request by
running the real action-group adapter on the request payload."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from opx.tools.action_groups import ActionGroupAdapter


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP answer."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def throttled() -> Reply:
    body = {
        "Type": "User",
        "message": "Rate Exceeded.",
        "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
    }
    return Reply(
        429,
        json.dumps(body).encode(),
        {"x-amzn-ErrorType": "TooManyRequestsException"},
    )


def function_error(error_type: str, message: str) -> Reply:
    """What Lambda answers when the function itself failed: 200 with the error header."""
    body = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
    return Reply(200, body, {"X-Amz-Function-Error": "Unhandled"})


@dataclass
class Request:
    function: str
    invocation_type: str
    qualifier: str | None
    event: Any


class FakeLambda:
    """Records every request; answers from ``script`` (first in, first out) while it has
    replies, else with the adapter's answer to the payload."""

    def __init__(self, adapter: ActionGroupAdapter) -> None:
        self.adapter = adapter
        self.requests: list[Request] = []
        self.script: list[Reply | Callable[[Any], Reply]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                owner._record(self.path, self.headers.get("X-Amz-Invocation-Type"), raw)
                reply = owner._reply(raw)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    headers = {"Content-Type": "application/json", **reply.headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:  # the client gave up waiting
                    return

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def _record(self, path: str, invocation_type: str | None, raw: bytes) -> None:
        # /2015-03-31/functions/<name>/invocations[?Qualifier=...]
        route, _, query = path.partition("?")
        name = unquote(route.split("/functions/", 1)[1].rsplit("/invocations", 1)[0])
        qualifier = query.split("Qualifier=", 1)[1] if "Qualifier=" in query else None
        try:
            event = json.loads(raw)
        except ValueError:
            event = None
        self.requests.append(Request(name, invocation_type or "", qualifier, event))

    def _reply(self, raw: bytes) -> Reply:
        if self.script:
            step = self.script.pop(0)
            return step if isinstance(step, Reply) else step(json.loads(raw))
        answer = self.adapter.handle(json.loads(raw))
        return Reply(200, json.dumps(answer).encode(), {"X-Amz-Executed-Version": "$LATEST"})

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeLambda:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
