"""A stand-in for the Bedrock Agents runtime on 127.0.0.1: it answers InvokeAgent requests with
real event-stream framing, so boto3's own parser decodes them.

Each request is answered by the next scripted :class:`Reply` if any, else by the default agent,
which restates the pre-computed evidence it was given (so its citations are real), with usage in
its trace events and a real Claude model id. Every request is recorded.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.agents.bedrock import eventstream as es

MODEL = "anthropic.claude-3-5-sonnet-20241022-v2:0"
_PATH = re.compile(
    r"^/agents/(?P<agent>[^/]+)/agentAliases/(?P<alias>[^/]+)/sessions/(?P<session>[^/]+)/text$"
)
_BLOCK = re.compile(
    r"<<<UNTRUSTED_DATA (?P<n>[0-9a-f]+)>>>\n(?P<body>.*?)\n<<<END_UNTRUSTED_DATA (?P=n)>>>",
    re.DOTALL,
)


@dataclass(frozen=True)
class Request:
    agent_id: str
    alias_id: str
    session_id: str
    body: dict[str, Any]

    @property
    def text(self) -> str:
        return str(self.body.get("inputText", ""))


# How long a stalled reply holds its connection open at most (a test's reset frees it sooner).
STALL_S = 10.0
STALL, CLOSE, RESET = "stall", "close", "reset"


@dataclass
class Reply:
    """One scripted answer: an HTTP error, or a stream of frames.

    With an ``ending``, the frames go out one HTTP chunk each (as Bedrock streams them), and then
    the stream stalls (no more bytes, connection open), closes without its last chunk, or is
    reset (TCP RST)."""

    status: int = 200
    error_type: str = ""  # raised error (status >= 400)
    frames: list[bytes] = field(default_factory=list)
    ending: str = ""


def data_block(text: str) -> dict[str, Any]:
    """The JSON data block of a first request."""
    match = _BLOCK.search(text)
    if match is None:
        raise AssertionError("the request has no data block")
    value = json.loads(match.group("body"))
    assert isinstance(value, dict)
    return value


def usage_trace(
    step: str,
    agent: str,
    session: str,
    tokens: tuple[int, int],
    model: str = MODEL,
    trace_id: str = "t-1",
) -> list[bytes]:
    """A model call of ``step``: its input (with the model id) and its output (with usage)."""
    return [
        es.trace(
            {
                step: {
                    "modelInvocationInput": {
                        "foundationModel": model,
                        "traceId": trace_id,
                        "type": "ORCHESTRATION",
                        "text": "...",
                    }
                }
            },
            agent_id=agent,
            session_id=session,
        ),
        es.trace(
            {
                step: {
                    "modelInvocationOutput": {
                        "traceId": trace_id,
                        "metadata": {
                            "usage": {"inputTokens": tokens[0], "outputTokens": tokens[1]}
                        },
                    }
                }
            },
            agent_id=agent,
            session_id=session,
        ),
    ]


def restated(data: dict[str, Any], agent_id: str) -> dict[str, Any]:
    """The hypothesis a well-behaved agent gives: the pre-computed evidence, restated."""
    local = data["precomputed_evidence"]
    if "unavailable" in local:
        return {
            "agent_id": agent_id,
            "root_cause": None,
            "confidence": 0.1,
            "description": "no pre-computed evidence",
            "confidence_basis": ["assumption"],
        }
    return {
        "agent_id": agent_id,
        "status": "SUCCESS",
        "root_cause": local["root_cause"],
        "description": "Restated: " + local["description"][:300],
        "confidence": local["confidence"],
        "confidence_basis": ["data"],
        "evidence": local["evidence"],
        "contradicting_evidence": local["contradicting_evidence"],
        "recommendations": [
            {
                "type": "INVESTIGATION",
                "risk": "LOW",
                "description": "Investigate the service named as root cause.",
            }
        ],
    }


def answer(
    text: str,
    agent: str,
    session: str,
    tokens: tuple[int, int] = (1200, 300),
    pieces: int = 1,
    model: str = MODEL,
) -> Reply:
    """A normal answer: pre-processing and orchestration usage, then ``text`` in ``pieces``."""
    frames = usage_trace("preProcessingTrace", agent, session, (150, 20), model, "pre-1")
    frames += usage_trace("orchestrationTrace", agent, session, tokens, model, "orch-1")
    size = max(1, -(-len(text.encode()) // pieces))
    raw = text.encode()
    for start in range(0, len(raw), size):
        # Split on bytes: a piece may end inside a multi-byte character.
        frames.append(_bytes_chunk(raw[start : start + size]))
    return Reply(frames=frames)


def _bytes_chunk(raw: bytes) -> bytes:
    return es.event("chunk", {"bytes": base64.b64encode(raw).decode("ascii")})


Behaviour = Callable[[Request, "FakeAgent"], Reply]


def default_behaviour(request: Request, fake: FakeAgent) -> Reply:
    first = fake.first_text(request.session_id)
    hypothesis = restated(data_block(first), _agent_name(first))
    return answer(json.dumps(hypothesis), request.agent_id, request.session_id)


def _agent_name(text: str) -> str:
    match = re.search(r"OPX analysis request for the (?P<a>[a-z-]+) agent", text)
    assert match is not None, "the request does not name its agent"
    return match.group("a")


class FakeAgent:
    """The server state: recorded requests, scripted replies, and the default behaviour."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.script: list[Reply | Behaviour] = []
        self.behaviour: Behaviour = default_behaviour
        self._lock = threading.Lock()
        self.released = threading.Event()  # set to end the stalls of a finished test
        self.url = ""

    def first_text(self, session_id: str) -> str:
        for request in self.requests:
            if request.session_id == session_id:
                return request.text
        raise AssertionError(f"no request in session {session_id}")

    def reply_to(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            step = self.script.pop(0) if self.script else self.behaviour
        return step if isinstance(step, Reply) else step(request, self)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.script.clear()
            self.behaviour = default_behaviour
            self.released.set()
            self.released = threading.Event()


def _handler(fake: FakeAgent) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            match = _PATH.match(self.path)
            if match is None:
                self._send(404, b'{"message":"unknown path"}', "application/json", "x")
                return
            request = Request(match["agent"], match["alias"], match["session"], body)
            reply = fake.reply_to(request)
            if reply.status >= 400:
                payload = json.dumps({"message": f"scripted {reply.error_type}"}).encode()
                self._send(reply.status, payload, "application/json", reply.error_type)
                return
            if reply.ending:
                self._broken(reply, request.session_id, fake.released)
                return
            self._send(
                200,
                b"".join(reply.frames),
                "application/vnd.amazon.eventstream",
                "",
                session=request.session_id,
            )

        def _send(
            self, status: int, payload: bytes, content_type: str, error_type: str, session: str = ""
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            if error_type:
                self.send_header("x-amzn-errortype", error_type)
            if session:
                self.send_header("x-amz-bedrock-agent-session-id", session)
                self.send_header("x-amzn-bedrock-agent-content-type", "application/json")
            self.end_headers()
            self.wfile.write(payload)

        def _broken(self, reply: Reply, session: str, released: threading.Event) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.amazon.eventstream")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("x-amz-bedrock-agent-session-id", session)
            self.send_header("x-amzn-bedrock-agent-content-type", "application/json")
            self.end_headers()
            for frame in reply.frames:
                self.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
            self.wfile.flush()
            if reply.ending == STALL:
                released.wait(STALL_S)
            elif reply.ending == RESET:
                # Linger 0: closing sends a TCP reset instead of an orderly end.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            self.close_connection = True
            self.connection.close()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def running() -> Iterator[FakeAgent]:
    """A fake agent runtime on a free port of 127.0.0.1, stopped on exit."""
    fake = FakeAgent()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
