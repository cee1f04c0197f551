"""Read-only enforcement: a refused call raises before any request reaches a server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import boto3
import pytest
from botocore.config import Config

from opx.domain.errors import ErrorCode
from opx.security.readonly import (
    WriteRefused,
    guard,
    publisher_policy,
    reasoning_policy,
    store_policy,
    table_names,
    telemetry_policy,
    tools_lambda_policy,
)
from tests.tools.aws.local_http import CountingServer

CHECKPOINTS, RESULTS = "opx-checkpoints", "opx-results"


@pytest.fixture
def counting() -> Iterator[CountingServer]:
    with CountingServer() as server:
        yield server


def client(service: str, endpoint: str) -> Any:
    return boto3.session.Session().client(
        cast(Any, service),
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=2),
    )


def test_telemetry_write_never_reaches_the_server(counting: CountingServer) -> None:
    cloudwatch = guard(client("cloudwatch", counting.endpoint), telemetry_policy())
    logs = guard(client("logs", counting.endpoint), telemetry_policy())
    dynamodb = guard(client("dynamodb", counting.endpoint), telemetry_policy(["history"]))
    with pytest.raises(WriteRefused, match="PutMetricData") as refused:
        cloudwatch.put_metric_data(Namespace="X", MetricData=[{"MetricName": "m", "Value": 1.0}])
    assert refused.value.code is ErrorCode.WRITE_REFUSED
    with pytest.raises(WriteRefused, match="DeleteLogGroup"):
        logs.delete_log_group(logGroupName="/aws/lambda/checkout")
    with pytest.raises(WriteRefused, match="PutItem"):
        dynamodb.put_item(TableName="history", Item={"incident_id": {"S": "x"}})
    with pytest.raises(WriteRefused, match="read table other"):
        dynamodb.get_item(TableName="other", Key={"incident_id": {"S": "x"}})
    assert counting.hits == []
    # An allowed read does go out (and fails on the counting server's answer).
    with pytest.raises(Exception) as answered:
        dynamodb.get_item(TableName="history", Key={"incident_id": {"S": "x"}})
    assert not isinstance(answered.value, WriteRefused)
    assert counting.hits == ["DynamoDB_20120810.GetItem"]


def test_store_writes_only_to_its_tables(counting: CountingServer) -> None:
    dynamodb = guard(client("dynamodb", counting.endpoint), store_policy(CHECKPOINTS, RESULTS))
    with pytest.raises(WriteRefused, match="write table orders"):
        dynamodb.put_item(TableName="orders", Item={"k": {"S": "v"}})
    with pytest.raises(WriteRefused, match="write table orders"):
        dynamodb.batch_write_item(
            RequestItems={
                CHECKPOINTS: [{"PutRequest": {"Item": {"k": {"S": "v"}}}}],
                "orders": [{"DeleteRequest": {"Key": {"k": {"S": "v"}}}}],
            }
        )
    with pytest.raises(WriteRefused, match="write table orders"):
        dynamodb.transact_write_items(
            TransactItems=[{"Delete": {"TableName": "orders", "Key": {"k": {"S": "v"}}}}]
        )
    with pytest.raises(WriteRefused, match="DeleteTable"):
        dynamodb.delete_table(TableName=CHECKPOINTS)
    with pytest.raises(WriteRefused, match="ExecuteStatement"):
        dynamodb.execute_statement(Statement="DELETE FROM orders WHERE k = 'v'")
    assert counting.hits == []


def test_store_writes_land_on_dynalite_and_others_do_not(dynalite_endpoint: str) -> None:
    raw = client("dynamodb", dynalite_endpoint)
    for name in (CHECKPOINTS, "orders"):
        raw.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        raw.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.05})
    store = guard(client("dynamodb", dynalite_endpoint), store_policy(CHECKPOINTS, RESULTS))
    store.put_item(TableName=CHECKPOINTS, Item={"k": {"S": "ok"}})
    with pytest.raises(WriteRefused):
        store.put_item(TableName="orders", Item={"k": {"S": "bad"}})
    assert raw.scan(TableName=CHECKPOINTS)["Count"] == 1
    assert raw.scan(TableName="orders")["Count"] == 0
    raw.delete_table(TableName=CHECKPOINTS)
    raw.delete_table(TableName="orders")


def test_telemetry_write_to_moto_leaves_no_trace(moto_endpoint: str) -> None:
    raw = client("cloudwatch", moto_endpoint)
    guarded = guard(client("cloudwatch", moto_endpoint), telemetry_policy())
    with pytest.raises(WriteRefused):
        guarded.put_metric_data(
            Namespace="OpxReadonly", MetricData=[{"MetricName": "planted", "Value": 1.0}]
        )
    assert raw.list_metrics(Namespace="OpxReadonly")["Metrics"] == []
    assert guarded.list_metrics(Namespace="OpxReadonly")["Metrics"] == []


def test_reasoning_and_publisher_roles(counting: CountingServer) -> None:
    agent = guard(client("bedrock-agent-runtime", counting.endpoint), reasoning_policy())
    with pytest.raises(WriteRefused, match="InvokeFlow"):
        agent.invoke_flow(
            flowIdentifier="f",
            flowAliasIdentifier="a",
            inputs=[{"nodeName": "n", "content": {"document": "x"}}],
        )
    events = guard(client("events", counting.endpoint), publisher_policy("opx-bus", "arn:t"))
    with pytest.raises(WriteRefused, match="bus default"):
        events.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}"}])
    with pytest.raises(WriteRefused, match="bus other"):
        events.put_events(
            Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}", "EventBusName": "other"}]
        )
    with pytest.raises(WriteRefused, match="DeleteRule"):
        events.delete_rule(Name="r")
    sns = guard(client("sns", counting.endpoint), publisher_policy("opx-bus", "arn:t"))
    with pytest.raises(WriteRefused, match="topic arn:other"):
        sns.publish(TopicArn="arn:other", Message="m")
    with pytest.raises(WriteRefused, match="phone"):
        sns.publish(PhoneNumber="+14155550123", Message="m")
    no_topic = guard(client("sns", counting.endpoint), publisher_policy("opx-bus", None))
    with pytest.raises(WriteRefused, match="sns:Publish"):
        no_topic.publish(TopicArn="arn:t", Message="m")
    assert counting.hits == []
    with pytest.raises(Exception) as sent:
        events.put_events(
            Entries=[
                {
                    "Source": "s",
                    "DetailType": "d",
                    "Detail": "{}",
                    "EventBusName": "arn:aws:events:us-east-1:1:event-bus/opx-bus",
                }
            ]
        )
    assert not isinstance(sent.value, WriteRefused)
    assert len(counting.hits) == 1


TOOLS_ARN = "arn:aws:lambda:us-east-1:123456789012:function:opx-tools"


def test_tools_lambda_client_invokes_only_the_tools_function(counting: CountingServer) -> None:
    lam = guard(client("lambda", counting.endpoint), tools_lambda_policy(TOOLS_ARN))
    refused = {
        "invoke function payments": lambda: lam.invoke(FunctionName="payments", Payload=b"{}"),
        # The same name in another form could be another account's function.
        "invoke function opx-tools": lambda: lam.invoke(FunctionName="opx-tools", Payload=b"{}"),
        "qualifier 1": lambda: lam.invoke(FunctionName=TOOLS_ARN, Qualifier="1", Payload=b"{}"),
        "as Event": lambda: lam.invoke(FunctionName=TOOLS_ARN, InvocationType="Event"),
        "as DryRun": lambda: lam.invoke(FunctionName=TOOLS_ARN, InvocationType="DryRun"),
        "InvokeAsync": lambda: lam.invoke_async(FunctionName=TOOLS_ARN, InvokeArgs=b"{}"),
        "InvokeWithResponseStream": lambda: lam.invoke_with_response_stream(FunctionName=TOOLS_ARN),
        "GetFunction": lambda: lam.get_function(FunctionName=TOOLS_ARN),
        "ListFunctions": lam.list_functions,
        "UpdateFunctionCode": lambda: lam.update_function_code(
            FunctionName=TOOLS_ARN, ZipFile=b"PK"
        ),
        "UpdateFunctionConfiguration": lambda: lam.update_function_configuration(
            FunctionName=TOOLS_ARN, Environment={"Variables": {"X": "1"}}
        ),
        "DeleteFunction": lambda: lam.delete_function(FunctionName=TOOLS_ARN),
        "AddPermission": lambda: lam.add_permission(
            FunctionName=TOOLS_ARN, StatementId="s", Action="lambda:*", Principal="*"
        ),
    }
    for reason, call in refused.items():
        with pytest.raises(WriteRefused, match=reason) as raised:
            call()
        assert raised.value.code is ErrorCode.WRITE_REFUSED
    assert counting.hits == []
    # The one allowed call does go out (and fails on the counting server's answer).
    with pytest.raises(Exception) as sent:
        lam.invoke(FunctionName=TOOLS_ARN, InvocationType="RequestResponse", Payload=b"{}")
    assert not isinstance(sent.value, WriteRefused)
    assert counting.hits == [
        "/2015-03-31/functions/" + TOOLS_ARN.replace(":", "%3A") + "/invocations"
    ]


def test_guard_is_per_client(counting: CountingServer) -> None:
    guard(client("cloudwatch", counting.endpoint), telemetry_policy())
    free = client("cloudwatch", counting.endpoint)
    with pytest.raises(Exception) as sent:
        free.put_metric_data(Namespace="X", MetricData=[{"MetricName": "m", "Value": 1.0}])
    assert not isinstance(sent.value, WriteRefused)
    assert len(counting.hits) == 1


def test_table_names_cover_every_request_form() -> None:
    params = {
        "TableName": "a",
        "RequestItems": {"b": []},
        "TransactItems": [{"Put": {"TableName": "c"}}, {"ConditionCheck": {"TableName": "d"}}],
    }
    assert table_names(params) == {"a", "b", "c", "d"}
