"""AnalysisCompleted on EventBridge and the summary on SNS, against moto's server mode: one of
each per execution, none more on a redelivery (nor on a re-run that fails again; a final answer
after a failure is published once), a failed publish loses nothing, and a retry after one channel
failed publishes that channel only."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from opx.agents.roster import CHANGE, HISTORICAL, RISK, SIGNAL
from opx.delivery.publisher import DeliveryFailed, open_publisher
from opx.domain.errors import ErrorCode
from opx.durability.sqlite_store import SqliteExecutionStore
from opx.runtime.failure_handler import InfrastructureFailure
from tests.runtime.builders import ScriptedBackend
from tests.runtime.handler_builders import Harness, incident_event

_NAMES = itertools.count(1)


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


class Wiring:
    """A bus whose AnalysisCompleted events land in one queue, a topic feeding another."""

    def __init__(self, endpoint: str) -> None:
        n = next(_NAMES)
        self.events, self.sns, self.sqs = (client(s, endpoint) for s in ("events", "sns", "sqs"))
        self.bus = f"opx-analysis-{n}"
        self.events.create_event_bus(Name=self.bus)
        self.event_queue = self._queue(f"opx-events-{n}")
        self.events.put_rule(
            Name=f"opx-done-{n}",
            EventBusName=self.bus,
            EventPattern=json.dumps(
                {"source": ["opx.intelligence"], "detail-type": ["AnalysisCompleted"]}
            ),
        )
        self.events.put_targets(
            Rule=f"opx-done-{n}",
            EventBusName=self.bus,
            Targets=[{"Id": "q", "Arn": self._arn(self.event_queue)}],
        )
        self.topic = self.sns.create_topic(Name=f"opx-summary-{n}")["TopicArn"]
        self.topic_queue = self._queue(f"opx-summaries-{n}")
        self.sns.subscribe(
            TopicArn=self.topic, Protocol="sqs", Endpoint=self._arn(self.topic_queue)
        )

    def _queue(self, name: str) -> str:
        return str(self.sqs.create_queue(QueueName=name)["QueueUrl"])

    def _arn(self, url: str) -> str:
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attrs["Attributes"]["QueueArn"])

    def drain(self, url: str) -> list[dict[str, Any]]:
        bodies = []
        while True:
            got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                return bodies
            for m in messages:
                bodies.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def wiring(moto_endpoint: str) -> Wiring:
    return Wiring(moto_endpoint)


def run(harness: Harness, wiring: Wiring, endpoint: str) -> dict[str, Any]:
    publisher = open_publisher(wiring.bus, wiring.topic, endpoint_url=endpoint)
    return harness.run(incident_event(), publish=True, publisher=publisher)


def test_one_event_and_one_summary_per_execution(
    wiring: Wiring, moto_endpoint: str, tmp_path: Path
) -> None:
    harness = Harness(tmp_path)
    response = run(harness, wiring, moto_endpoint)
    (event,) = wiring.drain(wiring.event_queue)
    assert (event["source"], event["detail-type"]) == ("opx.intelligence", "AnalysisCompleted")
    detail = event["detail"]
    assert detail["status"] == "COMPLETED" and detail["incident_id"] == "INC-7"
    assert detail["execution_id"] == response["execution_id"] and detail["attempt"] == 1
    assert detail["root_cause"]["service"] == "db" and detail["confidence"] > 0.5
    assert detail["top_candidates"][0]["service"] == "db"
    assert detail["cost"]["budget_usd"] == 5.0 and detail["summary"] == response["summary"]
    (note,) = wiring.drain(wiring.topic_queue)
    assert note["TopicArn"] == wiring.topic and note["Message"] == response["summary"]
    assert "INC-7" in note["Subject"]

    # The same event again: the stored result is returned and nothing more is published.
    assert run(harness, wiring, moto_endpoint) == response
    assert wiring.drain(wiring.event_queue) == [] and wiring.drain(wiring.topic_queue) == []


def failing(kind: str, monkeypatch: pytest.MonkeyPatch) -> ScriptedBackend:
    """A backend (and, for FAILED, a broken consensus) that ends every run the same way."""
    if kind == "FAILED":

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise ZeroDivisionError("weights sum to zero")

        monkeypatch.setattr("opx.graph.build.build_consensus", broken)
        return ScriptedBackend()
    fatal = [(ErrorCode.BEDROCK_MODEL_ERROR, False)]
    return ScriptedBackend(scripts=dict.fromkeys((SIGNAL, HISTORICAL, CHANGE, RISK), fatal))


@pytest.mark.parametrize("kind", ["FAILED", "NO_RECOMMENDATION"])
def test_a_rerun_that_fails_again_publishes_nothing_more_and_the_answer_once(
    wiring: Wiring, moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    harness = Harness(tmp_path, backend=failing(kind, monkeypatch))
    first = run(harness, wiring, moto_endpoint)
    assert first["status"] == kind
    (event,) = wiring.drain(wiring.event_queue)
    assert event["detail"]["status"] == kind and event["detail"]["attempt"] == 1
    assert len(wiring.drain(wiring.topic_queue)) == 1
    # Redelivered: the execution runs again (not final), ends the same way, publishes nothing.
    calls = sum(harness.backend.calls.values())
    again = run(harness, wiring, moto_endpoint)
    assert again["status"] == kind and sum(harness.backend.calls.values()) > calls
    assert wiring.drain(wiring.event_queue) == [] and wiring.drain(wiring.topic_queue) == []
    # Redelivered once more, and this time it answers: the answer supersedes the notice, once.
    monkeypatch.undo()
    harness.backend = ScriptedBackend()
    answer = run(harness, wiring, moto_endpoint)
    assert answer["status"] == "COMPLETED" and answer["execution_id"] == first["execution_id"]
    (event,) = wiring.drain(wiring.event_queue)
    assert event["detail"]["status"] == "COMPLETED" and event["detail"]["attempt"] == 3
    (note,) = wiring.drain(wiring.topic_queue)
    assert note["Message"] == answer["summary"]
    assert run(harness, wiring, moto_endpoint) == answer
    assert wiring.drain(wiring.event_queue) == [] and wiring.drain(wiring.topic_queue) == []


def test_a_failed_publish_keeps_the_result_and_the_retry_publishes_it(
    wiring: Wiring, moto_endpoint: str, tmp_path: Path
) -> None:
    harness = Harness(tmp_path)
    missing_bus = open_publisher("no-such-bus", None, endpoint_url=moto_endpoint)
    with pytest.raises(InfrastructureFailure) as caught:
        harness.run(incident_event(), publish=True, publisher=missing_bus)
    assert isinstance(caught.value.__cause__, DeliveryFailed)
    (record,) = SqliteExecutionStore(tmp_path / "executions.sqlite").list()
    assert record.status == "COMPLETED" and record.result is not None
    # Lambda's retry delivers the event again: the stored result is published now, once.
    response = run(harness, wiring, moto_endpoint)
    assert response["execution_id"] == record.execution_id
    assert len(wiring.drain(wiring.event_queue)) == 1
    assert len(wiring.drain(wiring.topic_queue)) == 1
    assert sum(harness.backend.calls.values()) == 6  # the agents ran once, in the first call


def test_sns_failing_after_eventbridge_is_retried_alone(
    wiring: Wiring, moto_endpoint: str, tmp_path: Path
) -> None:
    harness = Harness(tmp_path)
    # The bus works; the topic does not exist (so SNS refuses the publish).
    gone_topic = open_publisher(wiring.bus, wiring.topic + "-gone", endpoint_url=moto_endpoint)
    with pytest.raises(InfrastructureFailure) as caught:
        harness.run(incident_event(), publish=True, publisher=gone_topic)
    assert isinstance(caught.value.__cause__, DeliveryFailed)
    assert "sns" in str(caught.value.__cause__)
    (record,) = SqliteExecutionStore(tmp_path / "executions.sqlite").list()
    assert record.status == "COMPLETED" and record.result is not None
    # Lambda's retry: only the summary is published; the event went out once, in the first call.
    response = run(harness, wiring, moto_endpoint)
    assert response["execution_id"] == record.execution_id
    (event,) = wiring.drain(wiring.event_queue)
    assert event["detail"]["execution_id"] == record.execution_id
    (note,) = wiring.drain(wiring.topic_queue)
    assert note["Message"] == response["summary"]
    # A further redelivery publishes nothing on either channel.
    assert run(harness, wiring, moto_endpoint) == response
    assert wiring.drain(wiring.event_queue) == [] and wiring.drain(wiring.topic_queue) == []
    assert sum(harness.backend.calls.values()) == 6


def test_eventbridge_failing_does_not_hold_back_sns(
    wiring: Wiring, moto_endpoint: str, tmp_path: Path
) -> None:
    harness = Harness(tmp_path)
    missing_bus = open_publisher("no-such-bus", wiring.topic, endpoint_url=moto_endpoint)
    with pytest.raises(InfrastructureFailure) as caught:
        harness.run(incident_event(), publish=True, publisher=missing_bus)
    assert "events" in str(caught.value.__cause__)
    # The summary went out although the event did not; the retry sends the event only.
    (note,) = wiring.drain(wiring.topic_queue)
    assert wiring.drain(wiring.event_queue) == []
    response = run(harness, wiring, moto_endpoint)
    assert note["Message"] == response["summary"]
    (event,) = wiring.drain(wiring.event_queue)
    assert event["detail"]["execution_id"] == response["execution_id"]
    assert wiring.drain(wiring.topic_queue) == []


def test_the_publisher_may_not_publish_elsewhere(wiring: Wiring, moto_endpoint: str) -> None:
    publisher = open_publisher(wiring.bus, wiring.topic, endpoint_url=moto_endpoint)
    with pytest.raises(Exception, match="may not"):
        publisher.events.put_events(
            Entries=[{"Source": "x", "DetailType": "y", "Detail": "{}", "EventBusName": "other"}]
        )
    with pytest.raises(Exception, match="may not"):
        publisher.sns.publish(TopicArn=wiring.topic + "-other", Message="m")
