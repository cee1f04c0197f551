"""Deployments and configuration changes from CloudTrail ``LookupEvents``: the write events of the
window (followed page by page at most two requests a second, CloudTrail's limit), kept when their
event name is in the change catalogue, each mapped to its resource and, through the mapping, to a
service. User identities and descriptions are redacted."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from opx.domain.errors import ErrorCode
from opx.security.redaction import Redactor
from opx.tools.aws.calls import Gatherer, as_dict
from opx.tools.aws.deadline import Clock
from opx.tools.records import Change, ChangeKind, JsonDict

PAGE_SIZE = 50  # LookupEvents' largest page
MAX_TAGGED_ARNS = 100  # GetResources' limit per request
MAX_DESCRIPTION_CHARS = 300
_D, _C, _I = ChangeKind.DEPLOYMENT, ChangeKind.CONFIG, ChangeKind.INFRASTRUCTURE


@dataclass(frozen=True)
class CatalogEntry:
    """A change event: its kind, and request parameters that make it a deployment instead
    (an ECS service update that changes the task definition ships new code; one that only
    changes the desired count does not)."""

    kind: ChangeKind
    deploy_when: tuple[str, ...] = ()


def _entries(source: str, kind: ChangeKind, *names: str) -> dict[tuple[str, str], CatalogEntry]:
    return {(f"{source}.amazonaws.com", n): CatalogEntry(kind) for n in names}


# (event source, event name) -> what kind of change it is. Lambda's event names carry the API
# version, exactly as CloudTrail records them.
CHANGE_CATALOG: Mapping[tuple[str, str], CatalogEntry] = {
    **_entries("ecs", _D, "CreateService", "CreateTaskSet", "UpdateServicePrimaryTaskSet"),
    ("ecs.amazonaws.com", "UpdateService"): CatalogEntry(
        _C, ("taskDefinition", "forceNewDeployment")
    ),
    **_entries(
        "lambda",
        _D,
        "UpdateFunctionCode20150331v2",
        "CreateFunction20150331",
        "PublishVersion20150331",
        "UpdateAlias20150331",
        "CreateAlias20150331",
    ),
    **_entries(
        "lambda",
        _C,
        "UpdateFunctionConfiguration20150331v2",
        "PutFunctionConcurrency20171031",
        "DeleteFunctionConcurrency20171031",
        "PutProvisionedConcurrencyConfig20190930",
        "UpdateEventSourceMapping20150331",
    ),
    **_entries("codedeploy", _D, "CreateDeployment"),
    **_entries("cloudformation", _D, "CreateStack", "UpdateStack", "ExecuteChangeSet"),
    **_entries("cloudformation", _I, "DeleteStack"),
    **_entries("apigateway", _D, "CreateDeployment"),
    **_entries("apigateway", _C, "UpdateStage", "UpdateMethod", "UpdateIntegration"),
    **_entries("elasticbeanstalk", _D, "UpdateEnvironment"),
    **_entries("apprunner", _D, "StartDeployment", "UpdateService"),
    **_entries("amplify", _D, "StartDeployment", "StartJob"),
    **_entries("states", _D, "UpdateStateMachine"),
    **_entries("ssm", _C, "PutParameter", "DeleteParameter", "DeleteParameters"),
    **_entries("ssm", _C, "LabelParameterVersion"),
    **_entries(
        "secretsmanager",
        _C,
        "PutSecretValue",
        "UpdateSecret",
        "RotateSecret",
        "UpdateSecretVersionStage",
        "DeleteSecret",
    ),
    **_entries("appconfig", _C, "StartDeployment"),
    **_entries("evidently", _C, "UpdateFeature", "UpdateLaunch", "StartLaunch", "StopLaunch"),
    **_entries("events", _C, "PutRule", "DisableRule", "PutTargets", "RemoveTargets"),
    **_entries("sqs", _C, "SetQueueAttributes"),
    **_entries("sns", _C, "SetTopicAttributes", "SetSubscriptionAttributes"),
    **_entries("iam", _C, "PutRolePolicy", "AttachRolePolicy", "DetachRolePolicy"),
    **_entries("iam", _C, "DeleteRolePolicy", "UpdateAssumeRolePolicy"),
    **_entries("application-autoscaling", _C, "RegisterScalableTarget", "PutScalingPolicy"),
    **_entries("autoscaling", _C, "PutScalingPolicy"),
    **_entries("autoscaling", _I, "UpdateAutoScalingGroup", "SetDesiredCapacity"),
    **_entries("dynamodb", _I, "UpdateTable", "UpdateTimeToLive"),
    **_entries("rds", _C, "ModifyDBParameterGroup", "ModifyDBClusterParameterGroup"),
    **_entries("rds", _I, "ModifyDBInstance", "RebootDBInstance", "ModifyDBCluster"),
    **_entries("rds", _I, "FailoverDBCluster"),
    **_entries("elasticache", _I, "ModifyReplicationGroup", "ModifyCacheCluster"),
    **_entries(
        "elasticloadbalancing",
        _I,
        "ModifyListener",
        "ModifyRule",
        "ModifyTargetGroup",
        "ModifyTargetGroupAttributes",
        "ModifyLoadBalancerAttributes",
        "RegisterTargets",
        "DeregisterTargets",
        "DeleteListener",
    ),
    **_entries(
        "ec2",
        _I,
        "AuthorizeSecurityGroupIngress",
        "AuthorizeSecurityGroupEgress",
        "RevokeSecurityGroupIngress",
        "RevokeSecurityGroupEgress",
        "ModifyInstanceAttribute",
        "StopInstances",
        "TerminateInstances",
        "RebootInstances",
        "CreateRoute",
        "ReplaceRoute",
        "DeleteRoute",
    ),
    **_entries("route53", _I, "ChangeResourceRecordSets"),
}
# Request parameters that name the changed resource, most specific first.
RESOURCE_PARAMETERS = (
    "functionName",
    "service",
    "serviceName",
    "stackName",
    "stateMachineArn",
    "name",
    "secretId",
    "tableName",
    "queueUrl",
    "topicArn",
    "loadBalancerArn",
    "targetGroupArn",
    "listenerArn",
    "ruleArn",
    "groupId",
    "dBInstanceIdentifier",
    "dBClusterIdentifier",
    "restApiId",
    "applicationName",
    "environmentName",
    "feature",
    "launch",
    "autoScalingGroupName",
    "resourceId",
    "roleName",
    "replicationGroupId",
    "cacheClusterId",
    "hostedZoneId",
)
# Request parameters never shown in a description: they may hold the new secret or value.
_HIDDEN_PARAMETER = re.compile(r"(?i)value|secret|password|token|credential|key$|policy")


class RateLimiter:
    """At most ``per_second`` requests a second, shared by every tool call of one source (the
    limit is per account and region). A wait that would outlast the budget is not taken."""

    def __init__(
        self,
        per_second: float,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / per_second
        self._clock, self._sleep = clock, sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def acquire(self, time_left: float) -> bool:
        with self._lock:
            delay = max(0.0, self._next - self._clock())
            if delay >= time_left:
                return False
            if delay > 0:
                self._sleep(delay)
            self._next = self._clock() + self._interval
            return True


def write_events(
    client: Any,
    gatherer: Gatherer,
    window: tuple[datetime, datetime],
    limiter: RateLimiter,
    *,
    max_pages: int,
) -> list[JsonDict]:
    """The management write events of ``[start, end)`` (CloudTrail includes its end time)."""
    events: list[JsonDict] = []
    token: str | None = None
    for _ in range(max_pages):
        if not limiter.acquire(gatherer.budget.remaining()):
            gatherer.dropped = True
            gatherer.fail(ErrorCode.TIMEOUT, "LookupEvents: no time left within the rate limit")
            return events
        params: JsonDict = {
            "LookupAttributes": [{"AttributeKey": "ReadOnly", "AttributeValue": "false"}],
            "StartTime": window[0],
            "EndTime": window[1],
            "MaxResults": PAGE_SIZE,
        }
        if token:
            params["NextToken"] = token
        page = gatherer.call(partial(client.lookup_events, **params), "LookupEvents")
        if page is None:
            return events
        events += [e for e in page.get("Events", []) if _in_window(e, window)]
        token = page.get("NextToken")
        if not token:
            return events
    gatherer.dropped = True
    return events


def _in_window(event: JsonDict, window: tuple[datetime, datetime]) -> bool:
    stamp = event.get("EventTime")
    return isinstance(stamp, datetime) and window[0] <= stamp.astimezone(UTC) < window[1]


@dataclass(frozen=True)
class RawChange:
    """A catalogued change before it is mapped to a service."""

    change_id: str
    timestamp: datetime
    kind: ChangeKind
    event_source: str
    event_name: str
    resource: str
    actor: str
    parameters: tuple[tuple[str, str], ...]


def catalogued(events: Iterable[JsonDict]) -> list[RawChange]:
    """The events that are changes, in (time, id) order."""
    found = []
    for event in events:
        detail = _detail(event)
        source = str(detail.get("eventSource") or event.get("EventSource") or "")
        name = str(event.get("EventName") or "")
        entry = CHANGE_CATALOG.get((source, name))
        if entry is None or not event.get("EventId"):
            continue
        params = as_dict(detail.get("requestParameters"))
        kind = ChangeKind.DEPLOYMENT if any(params.get(k) for k in entry.deploy_when) else None
        found.append(
            RawChange(
                change_id=str(event["EventId"]),
                timestamp=event["EventTime"].astimezone(UTC),
                kind=kind or entry.kind,
                event_source=source,
                event_name=name,
                resource=_resource(event, params),
                actor=_actor(event, detail),
                parameters=_shown(params),
            )
        )
    found.sort(key=lambda c: (c.timestamp, c.change_id))
    return found


def _detail(event: JsonDict) -> JsonDict:
    text = event.get("CloudTrailEvent")
    if not isinstance(text, str):
        return {}
    try:
        return as_dict(json.loads(text))
    except ValueError:
        return {}


def _resource(event: JsonDict, params: JsonDict) -> str:
    named = [
        str(r.get("ResourceName")) for r in event.get("Resources") or () if r.get("ResourceName")
    ]
    arns = [n for n in named if n.startswith("arn:")]
    if arns or named:
        return (arns or named)[0]
    for key in RESOURCE_PARAMETERS:
        value = params.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _actor(event: JsonDict, detail: JsonDict) -> str:
    identity = as_dict(detail.get("userIdentity"))
    for value in (identity.get("invokedBy"), identity.get("arn"), event.get("Username")):
        if isinstance(value, str) and value:
            return value
    return ""


def _shown(params: JsonDict) -> tuple[tuple[str, str], ...]:
    return tuple(
        (key, str(value)[:80])
        for key, value in sorted(params.items())
        if isinstance(value, str | int | float | bool) and not _HIDDEN_PARAMETER.search(key)
    )


def resource_tags(
    client: Any, gatherer: Gatherer, arns: Iterable[str]
) -> dict[str, dict[str, str]]:
    """Tags of the resources named by ARN (at most 100). Tags only refine the mapping, so a
    failure to read them is not an error of the tool: the naming rules still apply."""
    wanted = sorted({a for a in arns if a.startswith("arn:")})[:MAX_TAGGED_ARNS]
    if not wanted:
        return {}
    answer = gatherer.quiet(partial(client.get_resources, ResourceARNList=wanted))
    tags: dict[str, dict[str, str]] = {}
    for mapping in as_dict(answer).get("ResourceTagMappingList", []):
        pairs = {str(t.get("Key")): str(t.get("Value")) for t in mapping.get("Tags", [])}
        tags[str(mapping.get("ResourceARN"))] = pairs
    return tags


def to_change(raw: RawChange, service: str | None, redactor: Redactor) -> Change:
    shown = " ".join(f"{k}={v}" for k, v in raw.parameters)
    description = f"{raw.event_name} {raw.resource}".strip()
    if shown:
        description = f"{description} ({shown})"
    if len(description) > MAX_DESCRIPTION_CHARS:
        description = description[: MAX_DESCRIPTION_CHARS - 1] + "…"
    return Change(
        change_id=raw.change_id,
        timestamp=raw.timestamp,
        kind=raw.kind,
        event_source=raw.event_source,
        event_name=raw.event_name,
        resource=raw.resource,
        service=service,
        actor=redactor.identity(raw.actor),
        description=redactor.text(description),
    )
