"""One customer-managed KMS key for everything OPX stores or sends: tables, queue, topics, log
groups, Lambda environments and the Bedrock agents. Rotated yearly; the services that encrypt
with it on OPX's behalf are named in its key policy."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

# Service principals that encrypt with the key for us: alarms publishing to the encrypted
# topic, EventBridge delivering to the dead-letter queue.
_SERVICE_PRINCIPALS = ("cloudwatch.amazonaws.com", "events.amazonaws.com")


def make_key(scope: Construct, production: bool) -> kms.Key:
    stack = Stack.of(scope)
    key = kms.Key(
        scope,
        "Key",
        alias="alias/opx",
        description="OPX: executions, checkpoints, queues, topics, logs",
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.RETAIN if production else RemovalPolicy.DESTROY,
        pending_window=None,
    )
    for principal in _SERVICE_PRINCIPALS:
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"Allow{principal.split('.')[0].title()}",
                principals=[iam.ServicePrincipal(principal)],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
    # CloudWatch Logs encrypts only log groups of this account whose ARN names the context.
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowLogs",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=[
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:*"
                    )
                }
            },
        )
    )
    return key
