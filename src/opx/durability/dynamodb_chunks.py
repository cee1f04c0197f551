"""Value envelopes and item size: compress when it saves write units, and move values too large
for a 400 KB item into chunk items (written before the item that references them)."""

from __future__ import annotations

from collections.abc import Sequence

from opx.durability.dynamodb_codec import (
    ChunkRef,
    compressed,
    is_reference,
    join,
    reference,
    split,
)
from opx.durability.dynamodb_io import SK, Item, binary, key, string
from opx.durability.dynamodb_keys import chunk_key, chunk_partition
from opx.durability.dynamodb_size import CHUNK_BYTES, INLINE_LIMIT, item_size, write_units

DATA = "data"


class ItemTooLarge(ValueError):
    """An item stays above the size limit even with every value moved to chunks."""


def shrink(
    item: Item,
    blobs: Sequence[str],
    *,
    thread: str,
    ns: str,
    checkpoint_id: str,
    extra: Item,
    limit: int = INLINE_LIMIT,
) -> list[Item]:
    """Pick compression for the item's envelopes, then chunk the largest until the item fits.
    Returns the chunk items, which must be stored before the item."""
    _compress_if_cheaper(item, [name for name in blobs if name in item], limit)
    chunks: list[Item] = []
    while item_size(item) > limit:
        movable = [n for n in blobs if n in item and not is_reference(item[n]["B"])]
        if not movable:
            if item_size(item) > INLINE_LIMIT:
                raise ItemTooLarge(f"item {item[SK]['S']!r} is too large to store")
            break
        name = max(movable, key=lambda n: (len(item[n]["B"]), n))
        ref, parts = split(item[name]["B"], CHUNK_BYTES)
        chunks += [
            {
                **key(chunk_partition(thread), chunk_key(ns, checkpoint_id, ref.digest, i)),
                DATA: {"B": part},
                **extra,
            }
            for i, part in enumerate(parts)
        ]
        item[name] = {"B": reference(ref)}
    return chunks


def _compress_if_cheaper(item: Item, names: list[str], limit: int) -> None:
    size = item_size(item)
    smaller: dict[str, bytes] = {}
    for name in names:
        envelope = item[name]["B"]
        packed = compressed(envelope)
        if len(packed) < len(envelope):
            smaller[name] = packed
    saved = sum(len(item[n]["B"]) - len(p) for n, p in smaller.items())
    # Compression costs CPU on every read: keep it only when it saves capacity (or must fit).
    if write_units(size - saved) < write_units(size) or size > limit:
        for name, packed in smaller.items():
            item[name] = {"B": packed}


def chunk_keys(thread: str, ns: str, checkpoint_id: str, ref: ChunkRef) -> list[Item]:
    partition = chunk_partition(thread)
    return [key(partition, chunk_key(ns, checkpoint_id, ref.digest, i)) for i in range(ref.parts)]


def assemble(ref: ChunkRef, items: Sequence[Item]) -> bytes:
    """The envelope stored in chunk items (fetched in any order), checked against its digest."""
    ordered = sorted(items, key=lambda it: string(it, SK) or "")
    return join(ref, [binary(it, DATA) or b"" for it in ordered])
