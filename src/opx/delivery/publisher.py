"""Publishing a message on a channel: one EventBridge event on the configured bus, or, when a
topic is configured, one SNS message. The clients may call nothing else (the publisher policy)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from opx.delivery.message import DETAIL_TYPE, SOURCE, Message
from opx.domain.errors import OpxError
from opx.durability.store import DeliveryChannel
from opx.security.readonly import guard, publisher_policy

# botocore clients for EventBridge and SNS (no type stubs are installed for them).
Client = Any


class DeliveryFailed(Exception):
    """The message could not be published (the stored result is unaffected)."""


@dataclass(frozen=True)
class Publisher:
    events: Client
    sns: Client | None
    event_bus: str
    topic_arn: str | None

    @property
    def channels(self) -> tuple[DeliveryChannel, ...]:
        """The channels a message goes to, in publishing order: EventBridge, then SNS when a
        topic is configured."""
        if self.sns is not None and self.topic_arn:
            return (DeliveryChannel.EVENTS, DeliveryChannel.SNS)
        return (DeliveryChannel.EVENTS,)

    def publish(self, channel: DeliveryChannel, message: Message) -> None:
        """Publish ``message`` on one channel; :class:`DeliveryFailed` when that fails."""
        try:
            if channel is DeliveryChannel.EVENTS:
                self._put_event(message)
            elif self.sns is not None and self.topic_arn:
                self.sns.publish(
                    TopicArn=self.topic_arn, Subject=message.subject, Message=message.summary
                )
            else:
                raise DeliveryFailed("no SNS topic is configured")
        except (ClientError, BotoCoreError, OpxError) as exc:
            raise DeliveryFailed(f"publishing to {channel.value} failed: {exc}") from exc

    def _put_event(self, message: Message) -> None:
        entry = {
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(message.detail, separators=(",", ":"), sort_keys=True),
            "EventBusName": self.event_bus,
        }
        answer = self.events.put_events(Entries=[entry])
        if answer.get("FailedEntryCount", 0):
            failed = answer.get("Entries", [{}])[0]
            raise DeliveryFailed(
                f"EventBridge refused the event: {failed.get('ErrorCode')}: "
                f"{failed.get('ErrorMessage')}"
            )


def open_publisher(
    event_bus: str, topic_arn: str | None, endpoint_url: str | None = None
) -> Publisher:
    """Guarded clients for the configured bus and topic, with short timeouts. boto3 reads the
    region and credentials (and endpoints such as ``AWS_ENDPOINT_URL_EVENTS``) from the SDK's
    own configuration."""
    import boto3  # noqa: PLC0415 (only the Lambda home needs it)
    from botocore.config import Config  # noqa: PLC0415

    config = Config(
        connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"}
    )
    policy = publisher_policy(event_bus, topic_arn)
    events = guard(boto3.client("events", config=config, endpoint_url=endpoint_url), policy)
    sns = (
        guard(boto3.client("sns", config=config, endpoint_url=endpoint_url), policy)
        if topic_arn
        else None
    )
    return Publisher(events, sns, event_bus, topic_arn)
