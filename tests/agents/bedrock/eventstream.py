"""Encoder for the AWS event stream binary framing (application/vnd.amazon.eventstream).

A message is: total length (4 bytes), headers length (4), CRC32 of those 8 bytes (4), the
headers, the payload, and a CRC32 of everything before it (4); all integers big-endian. A header
is: name length (1), name, value type (1; 7 = string), value length (2), value.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Mapping
from typing import Any

_STRING = 7


def header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
    return (
        struct.pack(">B", len(raw_name))
        + raw_name
        + struct.pack(">BH", _STRING, len(raw_value))
        + raw_value
    )


def message(headers: Mapping[str, str], payload: bytes) -> bytes:
    encoded = b"".join(header(k, v) for k, v in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + encoded + payload
    return body + struct.pack(">I", binascii.crc32(body) & 0xFFFFFFFF)


def event(event_type: str, body: Mapping[str, Any]) -> bytes:
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return message(headers, json.dumps(body).encode("utf-8"))


def chunk(text: str) -> bytes:
    data = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return event("chunk", {"bytes": data})


def trace(body: Mapping[str, Any], *, agent_id: str, session_id: str) -> bytes:
    return event("trace", {"agentId": agent_id, "sessionId": session_id, "trace": body})


def exception(name: str, text: str) -> bytes:
    headers = {
        ":exception-type": name,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return message(headers, json.dumps({"message": text}).encode("utf-8"))
