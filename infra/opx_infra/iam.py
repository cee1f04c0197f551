"""The IAM vocabulary of the stack: the exact actions each role may call, and the explicit Deny
every role carries. Only names and statements here; the stacks attach them to their roles.

IAM action names are IAM's own, which differ from botocore's operation names in places
(``bedrock:InvokeAgent`` for the ``bedrock-agent-runtime`` client; there is no
``dynamodb:TransactWriteItems`` action: a transaction is authorised per item as PutItem,
UpdateItem, DeleteItem or ConditionCheckItem, which the Deny below covers)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_iam as iam

# What the store clients do on their two tables (opx.security.readonly STORE_READS/WRITES).
STORE_READ_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
)
STORE_WRITE_ACTIONS = (
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
)

# The telemetry clients' read operations (opx.security.readonly TELEMETRY_OPERATIONS), in IAM
# names, split by whether IAM lets a policy name the resource.
TELEMETRY_ANY_RESOURCE = (
    "cloudtrail:LookupEvents",
    "cloudwatch:GetMetricData",
    "cloudwatch:GetMetricStatistics",
    "cloudwatch:ListMetrics",
    "logs:DescribeLogGroups",
    "logs:GetQueryResults",
    "logs:StopQuery",
    "servicediscovery:GetService",
    "servicediscovery:ListNamespaces",
    "servicediscovery:ListServices",
    "tag:GetResources",
    "xray:BatchGetTraces",
    "xray:GetServiceGraph",
    "xray:GetTraceSummaries",
)
TELEMETRY_LOG_GROUP_ACTIONS = ("logs:FilterLogEvents", "logs:StartQuery")
HISTORY_READ_ACTIONS = ("dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:Query")
KNOWLEDGE_ACTIONS = ("bedrock:Retrieve",)

LOG_WRITE_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
TRACE_WRITE_ACTIONS = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")
KILL_SWITCH_ACTIONS = ("ssm:GetParameter", "ssm:GetParametersByPath")
# The executor reads telemetry only by invoking the tools function (opx.security.readonly
# tools_lambda_policy); the read permissions stay on the tools role.
TOOLS_INVOKE_ACTIONS = ("lambda:InvokeFunction",)

# Writes no role may make outside its own tables: every DynamoDB data and control-plane write.
DYNAMODB_WRITE_DENY = (
    "dynamodb:BatchWriteItem",
    "dynamodb:CreateTable",
    "dynamodb:DeleteItem",
    "dynamodb:DeleteTable",
    "dynamodb:PartiQLDelete",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PutItem",
    "dynamodb:RestoreTable*",
    "dynamodb:UpdateItem",
    "dynamodb:UpdateTable",
    "dynamodb:UpdateTimeToLive",
)
# Never, on anything.
ALWAYS_DENY = (
    "cloudwatch:PutMetricData",
    "ec2:*",
    "iam:*",
    "lambda:AddPermission",
    "lambda:CreateFunction",
    "lambda:DeleteFunction",
    "lambda:PublishVersion",
    "lambda:PutFunctionConcurrency",
    "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration",
)


def allow(actions: Sequence[str], resources: Sequence[str], sid: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid=sid, effect=iam.Effect.ALLOW, actions=sorted(actions), resources=list(resources)
    )


def deny_statements(own_tables: Sequence[str] = ()) -> list[iam.PolicyStatement]:
    """The explicit Deny: DynamoDB writes on every table except ``own_tables`` (on all when
    none), and the never-allowed actions everywhere. A Deny wins over any Allow, including one a
    later edit or a managed policy might add."""
    dynamodb = iam.PolicyStatement(
        sid="DenyDynamoDBWritesElsewhere", effect=iam.Effect.DENY, actions=list(DYNAMODB_WRITE_DENY)
    )
    if own_tables:
        dynamodb.add_not_resources(*own_tables)
    else:
        dynamodb.add_all_resources()
    never = iam.PolicyStatement(
        sid="DenyInfrastructureChanges",
        effect=iam.Effect.DENY,
        actions=list(ALWAYS_DENY),
        resources=["*"],
    )
    return [dynamodb, never]
