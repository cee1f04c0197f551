"""The change feed of the PetShop evaluation: CloudTrail-style changes for an issue's
reproducing command, and decoys.

Change feed (``with_changes``). The account's resources carry a ``service`` tag naming the graph
node they belong to; :data:`ACCOUNT_RESOURCES` is that tag inventory, one entry per resource (an
SSM parameter belongs to the service that reads it, a Lambda function or an ECS service to its
own node). A change event takes its service from the tag of the resource it changed, never from
an issue's label. An issue's reproducing command decides only *which* resource changed:

- ``aws ssm put-parameter --name P`` is an SSM ``PutParameter`` on parameter ``P``;
- ``sed … DIR/FILE && cdk deploy …`` that edits the source of a Lambda function (its code folder
  is in the inventory) is a Lambda ``UpdateFunctionCode`` on that function;
- any other ``cdk deploy … STACK`` is a CloudFormation ``UpdateStack`` on ``STACK``;
- anything else, such as a load generator (``python -m issue_dynamo_db_requests``), makes no
  change event.

The change happens at a seeded time 5 to 20 minutes before the fault onset, taken as the
dataset's alarm time (the issues' rows show the deviation starting within a period of it, 5 to
10 minutes after the window start), so it falls shortly before or early in the window. Three to
five decoy changes on resources tagged with *other* services (neither the changed resource's nor
the true root cause's) are added at seeded times in the two hours before the alarm. Change ids
number the changes in time order, so they tell nothing about which is real. Healthy windows get
decoys only.
"""

from __future__ import annotations

import random
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from opx.eval.petshop_data import Issue
from opx.tools.records import Change, ChangeKind, ServiceGraph

ACCOUNT = "123456789012"
REGION = "us-west-2"
ACTOR = f"arn:aws:sts::{ACCOUNT}:assumed-role/observabilityworkshop-admin/operator"
CHANGE_LEAD = (timedelta(minutes=5), timedelta(minutes=20))
DECOY_SPAN = timedelta(hours=2)
DECOY_COUNT = (3, 5)


@dataclass(frozen=True)
class TaggedResource:
    """A resource of the account with its ``service`` tag (a graph node, or None when the
    resource serves several services) and the CloudTrail event that changes it."""

    arn: str
    name: str
    event_source: str
    event_name: str
    kind: ChangeKind
    service: str | None
    code_dir: str | None = None


def _ssm(name: str, service: str) -> TaggedResource:
    return TaggedResource(
        f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}",
        name,
        "ssm.amazonaws.com",
        "PutParameter",
        ChangeKind.CONFIG,
        service,
    )


def _function(name: str, service: str, code_dir: str | None = None) -> TaggedResource:
    return TaggedResource(
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        name,
        "lambda.amazonaws.com",
        "UpdateFunctionCode20150331v2",
        ChangeKind.DEPLOYMENT,
        service,
        code_dir,
    )


def _ecs(name: str, service: str) -> TaggedResource:
    return TaggedResource(
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/PetSite/{name}",
        name,
        "ecs.amazonaws.com",
        "UpdateService",
        ChangeKind.DEPLOYMENT,
        service,
    )


def _stack(name: str) -> TaggedResource:
    return TaggedResource(
        f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}",
        name,
        "cloudformation.amazonaws.com",
        "UpdateStack",
        ChangeKind.INFRASTRUCTURE,
        None,
    )


# The PetShop account's tag inventory, as the PetAdoptions workshop deploys it.
ACCOUNT_RESOURCES: tuple[TaggedResource, ...] = (
    _ssm("/petstore/searchdelay", "PetSearch_AWS::ECS::Fargate"),
    _ssm("/petstore/searcherrorpercent", "PetSearch_AWS::ECS::Fargate"),
    _ssm("/petstore/petlisterrorpercent", "petlistadoptions_AWS::ECS::Fargate"),
    _ssm("/petstore/errormode1", "payforadoption_AWS::ECS::Container"),
    _ssm("/petstore/delaymode1", "payforadoption_AWS::ECS::Container"),
    _function(
        "lambdastatusupdater", "lambdastatusupdater_AWS::Lambda::Function", "petstatusupdater"
    ),
    _function("lambda_step_readDDB", "lambda_step_readDDB_AWS::Lambda::Function"),
    _function(
        "lambda_step_priceGreaterThan55", "lambda_step_priceGreaterThan55_AWS::Lambda::Function"
    ),
    _function("lambda_step_priceLessThan55", "lambda_step_priceLessThan55_AWS::Lambda::Function"),
    _ecs("PetSearch-service", "PetSearch_AWS::ECS::Fargate"),
    _ecs("petlistadoptions-service", "petlistadoptions_AWS::ECS::Fargate"),
    _ecs("payforadoption-service", "payforadoption_AWS::ECS::Container"),
    TaggedResource(
        f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/petInfo",
        "petInfo",
        "dynamodb.amazonaws.com",
        "UpdateTable",
        ChangeKind.INFRASTRUCTURE,
        "petInfo_AWS::DynamoDB::Table",
    ),
    TaggedResource(
        f"arn:aws:sqs:{REGION}:{ACCOUNT}:Services-sqspetadoption",
        "Services-sqspetadoption",
        "sqs.amazonaws.com",
        "SetQueueAttributes",
        ChangeKind.CONFIG,
        "https://sqs.us-west-2.amazonaws.com/Services-sqspetadoption_AWS::SQS::Queue",
    ),
    TaggedResource(
        f"arn:aws:rds:{REGION}:{ACCOUNT}:db:services-database",
        "services-database",
        "rds.amazonaws.com",
        "ModifyDBInstance",
        ChangeKind.INFRASTRUCTURE,
        "adoptions@services-database.us-west-2.rds.amazonaws.com_Database::SQL",
    ),
    TaggedResource(
        f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:StepFnStateMachine76D362E8-T67Tg48ke8oK",
        "StepFnStateMachine76D362E8-T67Tg48ke8oK",
        "states.amazonaws.com",
        "UpdateStateMachine",
        ChangeKind.DEPLOYMENT,
        "AWS::StepFunctions::StateMachine",
    ),
    _stack("Services"),
)


def changed_resource(
    command: str, resources: Sequence[TaggedResource] = ACCOUNT_RESOURCES
) -> TaggedResource | None:
    """The resource an issue's reproducing command changes, or None when it changes none."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if words[:3] == ["aws", "ssm", "put-parameter"]:
        name = _option(words, "--name")
        return next(
            (r for r in resources if r.event_name == "PutParameter" and r.name == name), None
        )
    if "cdk" in words and "deploy" in words:
        return _deployed(words, resources)
    return None


def _option(words: Sequence[str], flag: str) -> str | None:
    for index, word in enumerate(words):
        if word == flag and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    return None


def _deployed(words: Sequence[str], resources: Sequence[TaggedResource]) -> TaggedResource | None:
    """A function whose code folder a ``sed`` before the deploy edited, else the stack."""
    deploy = words.index("deploy")
    edited = {part for w in words[:deploy] if "/" in w for part in Path(w).parts}
    for resource in resources:
        if resource.code_dir is not None and resource.code_dir in edited:
            return resource
    stacks = [w for w in words[deploy + 1 :] if not w.startswith("-")]
    # A word after an option is that option's value; the stack is the first word that is not.
    values = {
        words[i + 1]
        for i in range(deploy + 1, len(words) - 1)
        if words[i].startswith("--") and "=" not in words[i]
    }
    stack = next((w for w in stacks if w not in values), None)
    if stack is None:
        return None
    tagged = next((r for r in resources if r.event_name == "UpdateStack" and r.name == stack), None)
    return tagged or _stack(stack)


# CloudTrail suffixes some event names with an API version (UpdateFunctionCode20150331v2).
_VERSION_SUFFIX = re.compile(r"\d{8}v\d+$")


def _change(resource: TaggedResource, stamp: datetime) -> Change:
    return Change(
        change_id="",
        timestamp=stamp,
        kind=resource.kind,
        event_source=resource.event_source,
        event_name=resource.event_name,
        resource=resource.arn,
        service=resource.service,
        actor=ACTOR,
        description=f"{_VERSION_SUFFIX.sub('', resource.event_name)} {resource.name}",
    )


def _seconds(rng: random.Random, low: timedelta, high: timedelta) -> timedelta:
    return timedelta(seconds=rng.randint(int(low.total_seconds()), int(high.total_seconds())))


def decoy_changes(
    graph: ServiceGraph,
    excluded: set[str | None],
    alarm_at: datetime,
    rng: random.Random,
    resources: Sequence[TaggedResource] = ACCOUNT_RESOURCES,
) -> list[Change]:
    """Three to five changes on tagged resources of services in the graph and not in
    ``excluded``, at seeded times in the two hours before the alarm."""
    nodes = {n.name for n in graph.nodes}
    pool = sorted(
        (
            r
            for r in resources
            if r.service is not None and r.service in nodes and r.service not in excluded
        ),
        key=lambda r: r.arn,
    )
    count = min(rng.randint(*DECOY_COUNT), len(pool))
    return [
        _change(r, alarm_at - _seconds(rng, timedelta(seconds=1), DECOY_SPAN))
        for r in rng.sample(pool, count)
    ]


def issue_changes(issue: Issue, graph: ServiceGraph, rng: random.Random) -> list[Change]:
    """The issue's change event (if its command makes one) and the decoys, numbered in time
    order."""
    resource = changed_resource(issue.target.command)
    feed = []
    if resource is not None:
        feed.append(_change(resource, issue.target.alarm_at - _seconds(rng, *CHANGE_LEAD)))
    excluded = {issue.target.root_cause, None if resource is None else resource.service}
    feed.extend(decoy_changes(graph, excluded, issue.target.alarm_at, rng))
    return numbered(feed, "ct")


def numbered(changes: Sequence[Change], prefix: str) -> list[Change]:
    ordered = sorted(changes, key=lambda c: (c.timestamp, c.resource))
    return [replace(c, change_id=f"{prefix}-{i:03d}") for i, c in enumerate(ordered, start=1)]
