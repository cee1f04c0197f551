"""Delivering a stored result at most once per attempt and per channel: for each channel, take
the store's delivery marker, publish, then record it published (or give the marker back when
publishing failed, so that a redelivery of the event publishes it). A retry after a partial
failure thus publishes only the channels that were not published yet. A later attempt (a re-run
after a non-final result) publishes only when its result is final: the failure notice goes out
once, and the answer that supersedes it once (:func:`~opx.durability.store.may_claim_delivery`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from enum import StrEnum

from opx.delivery.message import DELIVERED_STATUSES, Message, message_of
from opx.delivery.publisher import DeliveryFailed, Publisher
from opx.domain.result import ExecutionResult
from opx.durability.store import DeliveryChannel, ExecutionStore, StoreUnavailable
from opx.observability import logs

# A delivery marker older than this is taken to belong to a worker that died while publishing.
STALE_AFTER_S = 300.0


class Delivery(StrEnum):
    PUBLISHED = "PUBLISHED"  # at least one channel was published now
    ALREADY = "ALREADY"  # every channel published before, or being published by another worker
    NOT_DELIVERED = "NOT_DELIVERED"  # a status that is not delivered (e.g. INCOMPLETE)


def deliver(
    result: ExecutionResult,
    attempt: int,
    *,
    store: ExecutionStore,
    publisher: Publisher,
    clock: Callable[[], float],
) -> Delivery:
    """Publish ``result`` (the stored result of ``attempt``) on every channel where it was not
    published already. A failed channel does not stop the others (each is worth having on its
    own); :class:`DeliveryFailed` is raised at the end if any failed. The result stays stored."""
    if result.status not in DELIVERED_STATUSES or result.execution_id is None:
        return Delivery.NOT_DELIVERED
    message = message_of(result, attempt)
    published = False
    failures: list[DeliveryFailed] = []
    for channel in publisher.channels:
        try:
            published |= _deliver_on(channel, message, result, attempt, store, publisher, clock)
        except DeliveryFailed as exc:
            failures.append(exc)
    if failures:
        raise DeliveryFailed("; ".join(str(f) for f in failures)) from failures[0]
    return Delivery.PUBLISHED if published else Delivery.ALREADY


def _deliver_on(
    channel: DeliveryChannel,
    message: Message,
    result: ExecutionResult,
    attempt: int,
    store: ExecutionStore,
    publisher: Publisher,
    clock: Callable[[], float],
) -> bool:
    """Whether ``channel`` was published now (False: published before or by another worker)."""
    execution_id, final = str(result.execution_id), result.final
    if not store.claim_delivery(
        execution_id, attempt, channel, clock(), stale_after_s=STALE_AFTER_S, final=final
    ):
        logs.info("delivery", channel=channel.value, outcome=Delivery.ALREADY.value)
        return False
    try:
        publisher.publish(channel, message)
    except DeliveryFailed:
        logs.warning("delivery failed", channel=channel.value)
        # If even that fails, the marker goes stale and a later delivery takes it over.
        with contextlib.suppress(StoreUnavailable):
            store.release_delivery(execution_id, attempt, channel)
        raise
    store.finish_delivery(execution_id, attempt, channel, clock())
    logs.info("delivery", channel=channel.value, outcome=Delivery.PUBLISHED.value)
    return True
