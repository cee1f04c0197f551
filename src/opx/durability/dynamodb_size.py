"""DynamoDB item sizes and write capacity units, by the service's published sizing rules."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# The service rejects items above 400 KB; stay clear of it for attribute-name overhead.
MAX_ITEM_BYTES = 400 * 1024
INLINE_LIMIT = 380_000
CHUNK_BYTES = 350_000


def attribute_size(value: Mapping[str, Any]) -> int:
    """Bytes one attribute value counts for (names are counted by the caller)."""
    if "S" in value:
        return len(str(value["S"]).encode())
    if "B" in value:
        return len(value["B"])
    if "N" in value:
        digits = str(value["N"]).lstrip("-").replace(".", "").strip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if "M" in value:
        inner = value["M"]
        return 3 + sum(len(k.encode()) + attribute_size(v) + 1 for k, v in inner.items())
    if "L" in value:
        return 3 + sum(attribute_size(v) + 1 for v in value["L"])
    return 1  # BOOL and NULL


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))
