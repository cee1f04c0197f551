"""The synthesised IAM policies, evaluated: each role may do what OPX needs and nothing that
changes the systems it analyses; every action named is a real IAM action."""

from __future__ import annotations

from typing import Any

import pytest
from policy_sentry.querying.actions import get_action_data
from policy_sentry.querying.all import get_all_actions

from tests.infra import cfn
from tests.infra.policy_eval import allowed, evaluate, matches

READ_LEVELS = {"Read", "List"}
OTHER_TABLE = f"arn:aws:dynamodb:{cfn.REGION}:{cfn.ACCOUNT}:table/orders"
SAMPLE_RESOURCES = (
    "*",
    OTHER_TABLE,
    f"arn:aws:ec2:{cfn.REGION}:{cfn.ACCOUNT}:instance/i-0123456789abcdef0",
    f"arn:aws:lambda:{cfn.REGION}:{cfn.ACCOUNT}:function:payments",
    f"arn:aws:iam::{cfn.ACCOUNT}:role/admin",
)


@pytest.fixture(scope="module")
def catalogue() -> dict[str, str]:
    """Every IAM action (lower case) → its access level."""
    return {a.lower(): a for a in get_all_actions()}


def access_level(action: str) -> str:
    service, name = action.split(":")
    data = get_action_data(service, name)
    assert data, f"{action} is not in the IAM catalogue"
    return str(data[service][0]["access_level"])


def _actions(catalogue: dict[str, str], prefix: str, level: str | None = None) -> list[str]:
    found = [a for a in catalogue.values() if a.lower().startswith(prefix.lower())]
    if level is not None:
        found = [a for a in found if access_level(a) == level]
    return sorted(found)


@pytest.fixture(scope="module")
def roles(resources: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Role logical id → its statements (inline and attached policies), resolved."""
    out: dict[str, list[dict[str, Any]]] = {}
    for role_id, role in cfn.of_type(resources, "AWS::IAM::Role").items():
        assert not role["Properties"].get("ManagedPolicyArns"), f"{role_id} has managed policies"
        statements = [
            s
            for p in role["Properties"].get("Policies", [])
            for s in p["PolicyDocument"]["Statement"]
        ]
        out[role_id] = statements
    for policy in cfn.of_type(resources, "AWS::IAM::Policy").values():
        for role_ref in policy["Properties"]["Roles"]:
            out[role_ref["Ref"]] += policy["Properties"]["PolicyDocument"]["Statement"]
    return {k: cfn.resolve(v, resources) for k, v in out.items()}


def role_id(roles: dict[str, Any], prefix: str) -> str:
    [found] = [r for r in roles if r.startswith(prefix)]
    return found


def own_tables(resources: dict[str, Any]) -> list[str]:
    return sorted(cfn.arn_of(resources, k) for k in cfn.of_type(resources, "AWS::DynamoDB::Table"))


def test_three_roles_each_with_the_explicit_deny(roles: dict[str, Any]) -> None:
    assert sorted(r.rstrip("0123456789ABCDEF") for r in roles) == [
        "AgentRole",
        "ExecutorRole",
        "ToolsRole",
    ]
    for statements in roles.values():
        sids = {s.get("Sid") for s in statements if s["Effect"] == "Deny"}
        assert sids == {"DenyDynamoDBWritesElsewhere", "DenyInfrastructureChanges"}


def test_executor_writes_only_its_own_tables(
    roles: dict[str, Any], resources: dict[str, Any], catalogue: dict[str, str]
) -> None:
    executor = roles[role_id(roles, "ExecutorRole")]
    tables = own_tables(resources)
    assert [t.rsplit("/", 1)[1] for t in tables] == ["opx-executions", "opx-langgraph-checkpoints"]
    writes = _actions(catalogue, "dynamodb:", "Write")
    assert "dynamodb:PartiQLInsert" in writes and "dynamodb:BatchWriteItem" in writes
    needed = {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
    }
    for action in writes:
        for table in tables:
            assert allowed(executor, action, table) == (action in needed), (action, table)
        for resource in (OTHER_TABLE, "*", f"{tables[0]}-copy"):
            assert not allowed(executor, action, resource), (action, resource)
        # The Deny, not only the missing Allow, stops writes to other tables.
        if action in needed:
            assert evaluate(executor, action, OTHER_TABLE).denied_explicitly


def test_no_role_can_change_what_it_analyses(
    roles: dict[str, Any], catalogue: dict[str, str]
) -> None:
    forbidden = (
        _actions(catalogue, "dynamodb:", "Write")
        + _actions(catalogue, "ec2:")
        + _actions(catalogue, "iam:")
        + ["lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration"]
    )
    assert len(forbidden) > 500
    for name, statements in roles.items():
        for action in forbidden:
            for resource in SAMPLE_RESOURCES:
                assert not allowed(statements, action, resource), (name, action, resource)
    # Denied explicitly, so an Allow added to a role later cannot reopen them.
    for name, statements in roles.items():
        widened = [*statements, {"Effect": "Allow", "Action": "*", "Resource": "*"}]
        for action in (
            "dynamodb:PutItem",
            "dynamodb:PartiQLUpdate",
            "ec2:TerminateInstances",
            "iam:CreateAccessKey",
            "lambda:UpdateFunctionCode",
            "cloudwatch:PutMetricData",
        ):
            assert not allowed(widened, action, OTHER_TABLE), (name, action)


def _allowed_actions(statements: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for s in statements:
        if s["Effect"] == "Allow":
            assert "NotAction" not in s
            actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
            assert not any("*" in a for a in actions if not a.startswith("kms:")), actions
            out.update(actions)
    return out


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _resources_allowed(statements: list[dict[str, Any]], action: str) -> list[str]:
    found: list[str] = []
    for s in statements:
        if s["Effect"] == "Allow" and any(
            matches(a, action, ignore_case=True) for a in _as_list(s["Action"])
        ):
            found += _as_list(s["Resource"])
    return sorted(found)


def test_tools_role_reads_only(roles: dict[str, Any], resources: dict[str, Any]) -> None:
    tools = roles[role_id(roles, "ToolsRole")]
    log_group, _ = cfn.one(resources, "AWS::Logs::LogGroup", "ToolsLogs")
    own_logs = f"{cfn.arn_of(resources, log_group)}:*"
    for action in sorted(_allowed_actions(tools)):
        level = access_level(action)
        if level in READ_LEVELS:
            continue
        # Its own logs and trace segments are the only writes.
        if action in ("logs:CreateLogStream", "logs:PutLogEvents"):
            assert _resources_allowed(tools, action) == [own_logs]
        else:
            assert action in ("xray:PutTraceSegments", "xray:PutTelemetryRecords"), action


def test_executor_writes_are_the_listed_ones(
    roles: dict[str, Any], resources: dict[str, Any]
) -> None:
    executor = roles[role_id(roles, "ExecutorRole")]
    ref = lambda prefix, attr="Arn": cfn.arn_of(resources, cfn.one(resources, *prefix)[0], attr)  # noqa: E731
    expected = {
        "dynamodb:PutItem": own_tables(resources),
        "events:PutEvents": [ref(("AWS::Events::EventBus", "AnalysisBus"))],
        "sns:Publish": [ref(("AWS::SNS::Topic", "Summaries"), "Ref")],
        "sqs:SendMessage": [ref(("AWS::SQS::Queue", "DeadLetters"))],
        "logs:PutLogEvents": [f"{ref(('AWS::Logs::LogGroup', 'ExecutorLogs'))}:*"],
        "kms:Encrypt": [ref(("AWS::KMS::Key", "Key"))],
        "lambda:InvokeFunction": [ref(("AWS::Lambda::Function", "Tools"))],
    }
    for action, where in expected.items():
        assert _resources_allowed(executor, action) == sorted(where), action
    writes = {
        a for a in _allowed_actions(executor) if "*" not in a and access_level(a) not in READ_LEVELS
    }
    assert writes == {
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "events:PutEvents",
        "sns:Publish",
        "sqs:SendMessage",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "kms:Decrypt",
        "kms:Encrypt",
        # IAM files invoking under Write; it is how the executor reads telemetry (below).
        "lambda:InvokeFunction",
    }
    assert "cloudwatch:PutMetricData" not in _allowed_actions(executor)
    # Reads of telemetry live on the tools role, not here.
    assert not any(
        a.split(":")[0] in ("cloudwatch", "xray", "cloudtrail", "tag")
        and access_level(a) in READ_LEVELS
        for a in _allowed_actions(executor)
    )


def test_executor_invokes_only_its_agent_aliases(
    roles: dict[str, Any], resources: dict[str, Any]
) -> None:
    executor = roles[role_id(roles, "ExecutorRole")]
    aliases = sorted(
        cfn.arn_of(resources, k, "AgentAliasArn")
        for k in cfn.of_type(resources, "AWS::Bedrock::AgentAlias")
    )
    assert len(aliases) == 6
    assert _resources_allowed(executor, "bedrock:InvokeAgent") == aliases
    assert not allowed(executor, "bedrock:InvokeAgent", "*")
    assert not allowed(executor, "bedrock:InvokeModel", "*")


def test_executor_invokes_only_the_tools_function(
    roles: dict[str, Any], resources: dict[str, Any], catalogue: dict[str, str]
) -> None:
    executor = roles[role_id(roles, "ExecutorRole")]
    tools_id, _ = cfn.one(resources, "AWS::Lambda::Function", "Tools")
    tools = cfn.arn_of(resources, tools_id)
    executor_fn = cfn.arn_of(resources, cfn.one(resources, "AWS::Lambda::Function", "Executor")[0])
    assert _resources_allowed(executor, "lambda:InvokeFunction") == [tools]
    assert allowed(executor, "lambda:InvokeFunction", tools)
    others = (
        "*",
        executor_fn,
        f"{tools}:1",  # a published version
        f"{tools}:live",  # an alias
        f"arn:aws:lambda:{cfn.REGION}:{cfn.ACCOUNT}:function:payments",
    )
    for resource in others:
        assert not allowed(executor, "lambda:InvokeFunction", resource), resource
    # No other Lambda action at all, on the tools function or anywhere.
    lambda_actions = _actions(catalogue, "lambda:")
    assert len(lambda_actions) > 50
    for action in lambda_actions:
        if action == "lambda:InvokeFunction":
            continue
        for resource in (tools, *others):
            assert not allowed(executor, action, resource), (action, resource)
    # Reading telemetry is the tools role's permission, not the executor's.
    tools_role = roles[role_id(roles, "ToolsRole")]
    reads = sorted(a for a in _allowed_actions(tools_role) if access_level(a) in READ_LEVELS)
    assert "cloudwatch:GetMetricData" in reads and "logs:FilterLogEvents" in reads
    for action in reads:
        for resource in ("*", f"arn:aws:logs:{cfn.REGION}:{cfn.ACCOUNT}:log-group:app"):
            assert not allowed(executor, action, resource), action
    for action in _actions(catalogue, "bedrock:Retrieve"):
        assert not allowed(executor, action, "*"), action


def _all_statements(resources: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "Effect" in value and ("Action" in value or "NotAction" in value):
                found.append(value)
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(resources)
    return found


def test_every_action_is_a_real_iam_action(
    resources: dict[str, Any], catalogue: dict[str, str]
) -> None:
    statements = _all_statements(resources)
    assert len(statements) > 20
    for statement in statements:
        actions = statement.get("Action", statement.get("NotAction"))
        for action in [actions] if isinstance(actions, str) else actions:
            if "*" in action or "?" in action:
                assert any(matches(action, a, ignore_case=True) for a in catalogue), action
            else:
                assert action.lower() in catalogue, action
