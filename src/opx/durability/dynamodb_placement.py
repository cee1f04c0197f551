"""Which channel values a checkpoint stores itself and which it references in an older checkpoint.

A put stores a channel value again only when its version changed, when this process does not
know where the parent keeps it, or when the stored copy would expire more than ``refresh``
seconds before the new item (copy-forward): a checkpoint therefore never depends on data that
expires much earlier than itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Version = str | int | float


@dataclass(frozen=True)
class Source:
    """The checkpoint item that holds one channel value, at which version, until when."""

    checkpoint_id: str
    version: Version | None
    ttl: int


@dataclass(frozen=True)
class Ref:
    """Channels whose values a checkpoint reads from an older checkpoint item."""

    checkpoint_id: str
    ttl: int
    channels: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    inline: tuple[str, ...]
    refs: tuple[Ref, ...]


def plan(
    values: Mapping[str, Any],
    versions: Mapping[str, Version],
    new_versions: Mapping[str, Version],
    parent: Mapping[str, Source] | None,
    *,
    ttl: int,
    refresh: int,
) -> Plan:
    inline: list[str] = []
    shared: defaultdict[tuple[str, int], list[str]] = defaultdict(list)
    for channel in sorted(values):
        source = parent.get(channel) if parent else None
        version = versions.get(channel)
        if (
            source is not None
            and version is not None
            and source.version == version
            and channel not in new_versions
            and source.ttl >= ttl - refresh
        ):
            shared[(source.checkpoint_id, source.ttl)].append(channel)
        else:
            inline.append(channel)
    refs = tuple(Ref(cid, when, tuple(chs)) for (cid, when), chs in sorted(shared.items()))
    return Plan(tuple(inline), refs)


def placement(
    checkpoint_id: str,
    ttl: int,
    versions: Mapping[str, Version],
    inline: tuple[str, ...] | list[str],
    refs: tuple[Ref, ...] | list[Ref],
) -> dict[str, Source]:
    """Where each channel value of a stored checkpoint lives (what its children may reference)."""
    found = {ch: Source(checkpoint_id, versions.get(ch), ttl) for ch in inline}
    for ref in refs:
        for ch in ref.channels:
            found[ch] = Source(ref.checkpoint_id, versions.get(ch), ref.ttl)
    return found
