"""Delivering a stored result at most once per attempt: take the store's delivery marker,
publish, then record it published (or give the marker back when publishing failed, so that a
redelivery of the event publishes it)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from enum import StrEnum

from opx.delivery.message import DELIVERED_STATUSES, message_of
from opx.delivery.publisher import DeliveryFailed, Publisher
from opx.domain.result import ExecutionResult
from opx.durability.store import ExecutionStore, StoreUnavailable

# A delivery marker older than this is taken to belong to a worker that died while publishing.
STALE_AFTER_S = 300.0


class Delivery(StrEnum):
    PUBLISHED = "PUBLISHED"
    ALREADY = "ALREADY"  # published before, or being published by another worker
    NOT_DELIVERED = "NOT_DELIVERED"  # a status that is not delivered (e.g. INCOMPLETE)


def deliver(
    result: ExecutionResult,
    attempt: int,
    *,
    store: ExecutionStore,
    publisher: Publisher,
    clock: Callable[[], float],
) -> Delivery:
    """Publish ``result`` (the stored result of ``attempt``) unless it was published already.
    Raises :class:`DeliveryFailed` when publishing failed; the result stays stored."""
    if result.status not in DELIVERED_STATUSES or result.execution_id is None:
        return Delivery.NOT_DELIVERED
    execution_id = result.execution_id
    if not store.claim_delivery(execution_id, attempt, clock(), stale_after_s=STALE_AFTER_S):
        return Delivery.ALREADY
    try:
        publisher.publish(message_of(result, attempt))
    except DeliveryFailed:
        # If even that fails, the marker goes stale and a later delivery takes it over.
        with contextlib.suppress(StoreUnavailable):
            store.release_delivery(execution_id, attempt)
        raise
    store.finish_delivery(execution_id, attempt, clock())
    return Delivery.PUBLISHED
