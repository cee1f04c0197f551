"""Byte envelopes stored in DynamoDB: plain msgpack data, zlib-compressed, or a chunk reference.

An envelope is one codec byte and a body. The body is msgpack of plain data only (str, bytes,
int, lists, maps): LangGraph objects inside it are the ``(type, bytes)`` pairs of the graph's
serializer, decoded by the caller. Decoding never runs a constructor and refuses pickle.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import ormsgpack

RAW = 1
ZLIB = 2
CHUNKED = 3
DEFAULT_MAX_DECODED = 256 * 1024 * 1024

Typed = tuple[str, bytes]


class StoredDataError(ValueError):
    """Stored bytes are corrupt, unsafe (pickle) or larger than the decoding cap."""


@dataclass(frozen=True)
class ChunkRef:
    """Where an envelope too large for its item lives: ``parts`` chunk items of one digest."""

    digest: str
    parts: int
    length: int


def encode(data: object) -> bytes:
    return bytes([RAW]) + ormsgpack.packb(data)


def compressed(envelope: bytes) -> bytes:
    """The zlib form of a raw envelope (callers keep whichever costs less)."""
    if envelope[0] != RAW:
        return envelope
    return bytes([ZLIB]) + zlib.compress(envelope[1:], 6)


def is_reference(envelope: bytes) -> bool:
    return bool(envelope) and envelope[0] == CHUNKED


def decode(envelope: bytes, max_bytes: int = DEFAULT_MAX_DECODED) -> object:
    if not envelope:
        raise StoredDataError("empty stored value")
    codec, body = envelope[0], envelope[1:]
    if codec == ZLIB:
        body = _inflate(body, max_bytes)
    elif codec != RAW:
        raise StoredDataError(f"stored value has codec {codec}, expected inline data")
    try:
        return ormsgpack.unpackb(body)
    except (ValueError, TypeError) as exc:
        raise StoredDataError(f"stored value is not valid msgpack: {exc}") from exc


def _inflate(body: bytes, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(body, max_bytes)
    except zlib.error as exc:
        raise StoredDataError(f"stored value does not decompress: {exc}") from exc
    if inflater.unconsumed_tail:
        raise StoredDataError(f"stored value inflates beyond {max_bytes} bytes")
    if not inflater.eof:
        raise StoredDataError("stored value is truncated")
    return out


def reference(ref: ChunkRef) -> bytes:
    return bytes([CHUNKED]) + ormsgpack.packb([ref.digest, ref.parts, ref.length])


def parse_reference(envelope: bytes) -> ChunkRef:
    if not is_reference(envelope):
        raise StoredDataError("stored value is not a chunk reference")
    try:
        digest, parts, length = ormsgpack.unpackb(envelope[1:])
    except (ValueError, TypeError) as exc:
        raise StoredDataError(f"invalid chunk reference: {exc}") from exc
    if not (isinstance(digest, str) and isinstance(parts, int) and isinstance(length, int)):
        raise StoredDataError("invalid chunk reference")
    return ChunkRef(digest, parts, length)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def split(data: bytes, size: int) -> tuple[ChunkRef, list[bytes]]:
    parts = [data[i : i + size] for i in range(0, len(data), size)]
    return ChunkRef(digest(data), len(parts), len(data)), parts


def join(ref: ChunkRef, parts: Sequence[bytes]) -> bytes:
    data = b"".join(parts)
    if len(parts) != ref.parts or len(data) != ref.length or digest(data) != ref.digest:
        raise StoredDataError(f"chunks of {ref.digest} are missing or do not match")
    return data


def checked(pair: tuple[str, bytes]) -> Typed:
    """A serializer result about to be stored; pickle is refused so it is never loaded back."""
    kind, data = pair
    if kind == "pickle":
        raise StoredDataError("refusing to store pickled data: use a serializer without pickle")
    return kind, bytes(data)


def as_typed(value: object) -> Typed:
    """A stored ``[type, bytes]`` pair, checked before it reaches the serializer."""
    if not (isinstance(value, list | tuple) and len(value) == 2):
        raise StoredDataError("stored value is not a typed pair")
    kind, data = value
    if not isinstance(kind, str) or not isinstance(data, bytes):
        raise StoredDataError("stored value is not a typed pair")
    if kind == "pickle":
        raise StoredDataError("refusing to load pickled data")
    return kind, data
