"""CloudTrail changes through the AWS source (Stubber, exact requests): the catalogue, resource
and service mapping (tags and naming rules), pacing at two requests a second, redaction."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from opx.domain.errors import ErrorCode
from opx.domain.tool_result import ToolStatus
from opx.tools.aws.cloudtrail import CHANGE_CATALOG, RateLimiter
from tests.tools.aws.conftest import T0, FakeClock, Stubs, make_source

ACCOUNT = "123456789012"
WINDOW = (T0, T0 + timedelta(hours=1))
LAMBDA_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:pay-handler"


def event(
    event_id: str,
    minute: int,
    source: str,
    name: str,
    params: dict[str, Any],
    *,
    resources: list[dict[str, str]] | None = None,
    who: str = f"arn:aws:sts::{ACCOUNT}:assumed-role/Deployer/jane@example.com",
) -> dict[str, Any]:
    detail = {
        "eventSource": source,
        "eventName": name,
        "userIdentity": {"type": "AssumedRole", "arn": who},
        "requestParameters": params,
    }
    return {
        "EventId": event_id,
        "EventName": name,
        "EventTime": T0 + timedelta(minutes=minute),
        "EventSource": source,
        "Username": "jane",
        "Resources": resources or [],
        "CloudTrailEvent": json.dumps(detail),
    }


def lookup(token: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "LookupAttributes": [{"AttributeKey": "ReadOnly", "AttributeValue": "false"}],
        "StartTime": WINDOW[0],
        "EndTime": WINDOW[1],
        "MaxResults": 50,
    }
    if token:
        request["NextToken"] = token
    return request


def stub_events(stubs: Stubs) -> None:
    trail = stubs["cloudtrail"]
    trail.add_response(
        "lookup_events",
        {
            "Events": [
                event(
                    "e3",
                    30,
                    "ssm.amazonaws.com",
                    "PutParameter",
                    {
                        "name": "/checkout/db-url",
                        "type": "String",
                        "value": "s3cret",
                        "overwrite": True,
                    },
                ),
                event(
                    "e1",
                    5,
                    "ecs.amazonaws.com",
                    "UpdateService",
                    {"cluster": "shop", "service": "checkout", "taskDefinition": "checkout:42"},
                ),
                event("e9", 7, "logs.amazonaws.com", "CreateLogStream", {"logStreamName": "x"}),
            ],
            "NextToken": "page2",
        },
        lookup(),
    )
    trail.add_response(
        "lookup_events",
        {
            "Events": [
                event(
                    "e2",
                    10,
                    "ecs.amazonaws.com",
                    "UpdateService",
                    {"cluster": "shop", "service": "checkout", "desiredCount": 2},
                ),
                event(
                    "e4",
                    40,
                    "lambda.amazonaws.com",
                    "UpdateFunctionCode20150331v2",
                    {"functionName": "pay-handler"},
                    resources=[
                        {"ResourceType": "AWS::Lambda::Function", "ResourceName": LAMBDA_ARN}
                    ],
                    who="codepipeline.amazonaws.com",
                ),
                event("e5", 61, "ssm.amazonaws.com", "PutParameter", {"name": "/late"}),
            ]
        },
        lookup("page2"),
    )
    stubs["resourcegroupstaggingapi"].add_response(
        "get_resources",
        {
            "ResourceTagMappingList": [
                {"ResourceARN": LAMBDA_ARN, "Tags": [{"Key": "service", "Value": "payments"}]}
            ]
        },
        {"ResourceARNList": [LAMBDA_ARN]},
    )


def test_changes_are_catalogued_mapped_and_paced(stubs: Stubs) -> None:
    stub_events(stubs)
    clock = FakeClock()
    source = make_source(stubs, services=("checkout", "payments"), clock=clock)
    deployments = source.list_deployments(*WINDOW)
    config = source.list_config_changes(*WINDOW)
    stubs.check()
    assert deployments.status is ToolStatus.SUCCESS and config.status is ToolStatus.SUCCESS
    assert [(c["change_id"], c["service"], c["resource"]) for c in deployments.data["changes"]] == [
        ("e1", "checkout", "checkout"),
        ("e4", "payments", LAMBDA_ARN),
    ]
    assert [(c["change_id"], c["kind"], c["service"]) for c in config.data["changes"]] == [
        ("e2", "CONFIG", "checkout"),
        ("e3", "CONFIG", "checkout"),
    ]
    first = deployments.data["changes"][0]
    assert first["actor"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/Deployer/<EMAIL:")
    assert first["description"] == (
        "UpdateService checkout (cluster=shop service=checkout taskDefinition=checkout:42)"
    )
    assert deployments.data["changes"][1]["actor"] == "codepipeline.amazonaws.com"
    assert "s3cret" not in json.dumps(config.data)
    # Two LookupEvents requests, the second half a second after the first.
    assert clock.sleeps == [0.5]
    only = source.list_config_changes(*WINDOW, service="payments")
    assert only.data["changes"] == []


def test_lookup_failure_on_the_second_page_is_partial(stubs: Stubs) -> None:
    trail = stubs["cloudtrail"]
    trail.add_response(
        "lookup_events",
        {
            "Events": [
                event("e1", 5, "ecs.amazonaws.com", "CreateService", {"serviceName": "checkout"})
            ],
            "NextToken": "p2",
        },
        lookup(),
    )
    trail.add_client_error(
        "lookup_events",
        service_error_code="ThrottlingException",
        http_status_code=400,
        expected_params=lookup("p2"),
    )
    source = make_source(stubs, services=("checkout",), clock=FakeClock())
    result = source.list_deployments(*WINDOW, service="checkout")
    assert result.status is ToolStatus.PARTIAL
    assert result.error is not None and result.error.code is ErrorCode.RATE_LIMIT_EXCEEDED
    assert [c["change_id"] for c in result.data["changes"]] == ["e1"]


def test_rate_limiter_spaces_requests_and_respects_the_budget() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2.0, clock=clock, sleep=clock.sleep)
    assert limiter.acquire(10.0) and limiter.acquire(10.0) and limiter.acquire(10.0)
    assert clock.sleeps == [0.5, 0.5]
    assert not limiter.acquire(0.2)
    assert clock.sleeps == [0.5, 0.5]


def test_catalogue_uses_real_event_names() -> None:
    names = {name for _, name in CHANGE_CATALOG}
    assert {
        "UpdateFunctionCode20150331v2",
        "PutParameter",
        "PutSecretValue",
        "CreateDeployment",
        "UpdateStack",
        "ExecuteChangeSet",
        "UpdateService",
    } <= names
    sources = {source for source, _ in CHANGE_CATALOG}
    assert {
        "ecs.amazonaws.com",
        "lambda.amazonaws.com",
        "cloudformation.amazonaws.com",
        "codedeploy.amazonaws.com",
        "ssm.amazonaws.com",
        "secretsmanager.amazonaws.com",
    } <= sources
