"""Checkpoint and write items: stored checkpoints, metadata and task writes as DynamoDB
attributes, and back (values stay serializer ``(type, bytes)`` pairs here)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opx.durability.dynamodb_codec import StoredDataError, Typed, as_typed, encode
from opx.durability.dynamodb_io import Item, key, string
from opx.durability.dynamodb_keys import checkpoint_key
from opx.durability.dynamodb_placement import Ref

HEAD = "head"
VALS = "vals"
PARENT = "parent"
RUN_ID = "run_id"
TTL = "ttl"
INCIDENT = "incident_id"
TASK_PATH = "tp"
_WRITE_ATTR = re.compile(r"^([ws])(\d+)$")
# Keeps each UpdateExpression well under DynamoDB's 4 KB expression limit.
_ATTRS_PER_UPDATE = 50


def common(ttl: int, incident_id: str | None) -> Item:
    """Attributes every item carries."""
    attrs: Item = {TTL: {"N": str(ttl)}}
    if incident_id:
        attrs[INCIDENT] = {"S": incident_id}
    return attrs


def checkpoint_item(
    thread: str,
    ns: str,
    checkpoint_id: str,
    *,
    head: bytes,
    vals: bytes | None,
    parent_id: str | None,
    run_id: str | None,
    extra: Item,
) -> Item:
    item: Item = {**key(thread, checkpoint_key(ns, checkpoint_id)), HEAD: {"B": head}, **extra}
    if vals is not None:
        item[VALS] = {"B": vals}
    if parent_id:
        item[PARENT] = {"S": parent_id}
    if run_id:
        item[RUN_ID] = {"S": run_id}
    return item


def encode_head(checkpoint: Typed, metadata: Typed, refs: Sequence[Ref]) -> bytes:
    return encode(
        {
            "c": list(checkpoint),
            "m": list(metadata),
            "r": [[r.checkpoint_id, r.ttl, list(r.channels)] for r in refs],
        }
    )


def encode_vals(values: Mapping[str, Typed]) -> bytes:
    return encode({ch: list(values[ch]) for ch in sorted(values)})


@dataclass(frozen=True)
class Head:
    checkpoint: Typed
    metadata: Typed
    refs: tuple[Ref, ...]


def parse_head(data: object) -> Head:
    if not isinstance(data, dict):
        raise StoredDataError("checkpoint head is not a map")
    refs: list[Ref] = []
    for entry in data.get("r") or []:
        if not (isinstance(entry, list) and len(entry) == 3):
            raise StoredDataError("invalid value reference in checkpoint head")
        cid, ttl, channels = entry
        if not (isinstance(cid, str) and isinstance(ttl, int) and isinstance(channels, list)):
            raise StoredDataError("invalid value reference in checkpoint head")
        refs.append(Ref(cid, ttl, tuple(str(ch) for ch in channels)))
    return Head(as_typed(data.get("c")), as_typed(data.get("m")), tuple(refs))


def parse_vals(data: object) -> dict[str, Typed]:
    if not isinstance(data, dict):
        raise StoredDataError("checkpoint values are not a map")
    return {str(ch): as_typed(pair) for ch, pair in data.items()}


def write_attr(idx: int) -> str:
    return f"w{idx}" if idx >= 0 else f"s{-idx}"


def write_index(name: str) -> int | None:
    match = _WRITE_ATTR.match(name)
    if match is None:
        return None
    number = int(match.group(2))
    return number if match.group(1) == "w" else -number


def encode_write(channel: str, value: Typed) -> bytes:
    return encode([channel, *value])


@dataclass(frozen=True)
class StoredWrite:
    task_path: str
    task_id: str
    idx: int
    channel: str
    value: Typed


def parse_write(data: object, *, task_path: str, task_id: str, idx: int) -> StoredWrite:
    if not (isinstance(data, list) and len(data) == 3 and isinstance(data[0], str)):
        raise StoredDataError("invalid stored write")
    return StoredWrite(task_path, task_id, idx, data[0], as_typed(data[1:]))


def task_path(item: Mapping[str, object]) -> str:
    return string(item, TASK_PATH) or ""


@dataclass(frozen=True)
class Update:
    expression: str
    names: dict[str, str]
    values: Item


def write_updates(item: Item, regular: set[str]) -> list[Update]:
    """UpdateItem requests that store a writes item's attributes: regular writes only if absent
    (the first writer wins), special writes and bookkeeping attributes always."""
    keys = {"session_id", "checkpoint_id"}
    names = sorted(n for n in item if n not in keys)
    updates: list[Update] = []
    for start in range(0, len(names), _ATTRS_PER_UPDATE):
        group = names[start : start + _ATTRS_PER_UPDATE]
        parts = [
            f"#a{i} = if_not_exists(#a{i}, :a{i})" if name in regular else f"#a{i} = :a{i}"
            for i, name in enumerate(group)
        ]
        updates.append(
            Update(
                "SET " + ", ".join(parts),
                {f"#a{i}": name for i, name in enumerate(group)},
                {f":a{i}": item[name] for i, name in enumerate(group)},
            )
        )
    return updates
