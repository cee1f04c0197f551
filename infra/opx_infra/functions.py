"""What both OPX Lambdas share: arm64 Python, the packaged asset, an encrypted log group with a
retention, a role that holds nothing but what the caller adds, and the explicit Deny."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import CfnResource, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from opx_infra import iam as opx_iam

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
# Replays need the results and checkpoints (30 days); logs are kept as long as that trail.
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
# Both functions call only AWS APIs (Bedrock, DynamoDB, CloudWatch, ...). In a VPC they would
# need a NAT gateway or a dozen interface endpoints and gain no isolation: IAM, not the network,
# bounds what they can reach.
NO_VPC = "calls only AWS APIs; IAM, not the network, bounds what it can reach"


@dataclass(frozen=True)
class FunctionSpec:
    construct_id: str
    name: str
    handler: str
    description: str
    memory_mb: int
    timeout: Duration
    reserved_concurrency: int
    environment: Mapping[str, str]
    tracing: bool
    # Encrypt the environment with the OPX key (the role then needs kms:Decrypt on it).
    encrypt_environment: bool = True
    checkov_skips: Mapping[str, str] = field(default_factory=dict)


def role_for(scope: Construct, construct_id: str, description: str) -> iam.Role:
    """A Lambda role with no managed policy: every permission is an inline statement."""
    return iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=description,
    )


def make_function(
    scope: Construct,
    spec: FunctionSpec,
    *,
    code: lambda_.Code,
    role: iam.Role,
    key: kms.IKey,
    production: bool,
    own_tables: Sequence[str] = (),
    layers: Sequence[lambda_.ILayerVersion] = (),
) -> lambda_.Function:
    log_group = logs.LogGroup(
        scope,
        f"{spec.construct_id}Logs",
        log_group_name=f"/aws/lambda/{spec.name}",
        retention=LOG_RETENTION,
        encryption_key=key,
        removal_policy=RemovalPolicy.RETAIN if production else RemovalPolicy.DESTROY,
    )
    role.add_to_policy(
        opx_iam.allow(opx_iam.LOG_WRITE_ACTIONS, [f"{log_group.log_group_arn}:*"], "WriteOwnLogs")
    )
    for statement in opx_iam.deny_statements(own_tables):
        role.add_to_policy(statement)
    function = lambda_.Function(
        scope,
        spec.construct_id,
        function_name=spec.name,
        description=spec.description,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=spec.handler,
        code=code,
        role=role,
        memory_size=spec.memory_mb,
        timeout=spec.timeout,
        reserved_concurrent_executions=spec.reserved_concurrency,
        environment=dict(spec.environment),
        environment_encryption=key if spec.encrypt_environment else None,
        log_group=log_group,
        layers=list(layers),
        tracing=lambda_.Tracing.ACTIVE if spec.tracing else lambda_.Tracing.DISABLED,
    )
    skip_checks(function, dict(spec.checkov_skips))
    return function


def skip_checks(construct: Construct, reasons: Mapping[str, str]) -> None:
    """checkov suppressions on the construct's CloudFormation resource, each with its reason
    (checkov reads them from the resource's Metadata)."""
    if not reasons:
        return
    resource = construct.node.default_child
    assert isinstance(resource, CfnResource)
    resource.add_metadata(
        "checkov",
        {"skip": [{"id": check, "comment": reason} for check, reason in sorted(reasons.items())]},
    )
