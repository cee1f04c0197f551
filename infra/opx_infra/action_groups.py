"""The telemetry tools Lambda that every agent's action group calls, its read-only role, and each
agent's function schema, built from the tool schemas the runtime exports."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from opx.agents.roster import ROSTER
from opx.tools.action_groups import function_schema
from opx.tools.aws.settings import AwsSettings, load_aws_settings
from opx_infra import iam as opx_iam
from opx_infra.functions import ARCHITECTURE, NO_VPC, RUNTIME, FunctionSpec, make_function, role_for
from opx_infra.settings import InfraSettings

HANDLER = "opx.tools.action_groups.handler"
FUNCTION_NAME = "opx-tools"
ACTION_GROUP_NAME = "telemetry"
CONFIG_IN_LAYER = "/opt/opx/aws.toml"
# 512 MB: one tool call parses at most a few MB of telemetry (bounded pages and events).
MEMORY_MB = 512
# Each tool stops itself at its deadline (5 s total by default, 900 s at most by settings);
# the Lambda allows the longest configured tool deadline plus the cold start.
COLD_START_S = 15


def agent_functions(agent_id: str) -> list[dict[str, Any]]:
    """The exported function schemas of the tools ``agent_id`` uses (roster order)."""
    by_name = {f["name"]: f for f in function_schema()["functions"]}
    return [by_name[name] for name in ROSTER[agent_id].tools]


def function_properties(agent_id: str) -> list[bedrock.CfnAgent.FunctionProperty]:
    return [
        bedrock.CfnAgent.FunctionProperty(
            name=f["name"],
            description=f["description"],
            require_confirmation=f["requireConfirmation"],
            parameters={
                name: bedrock.CfnAgent.ParameterDetailProperty(
                    type=p["type"], description=p["description"], required=p["required"]
                )
                for name, p in f["parameters"].items()
            },
        )
        for f in agent_functions(agent_id)
    ]


def action_group(agent_id: str, tools_arn: str) -> list[bedrock.CfnAgent.AgentActionGroupProperty]:
    """The agent's one action group, or none for an agent without tools."""
    if not ROSTER[agent_id].tools:
        return []
    return [
        bedrock.CfnAgent.AgentActionGroupProperty(
            action_group_name=ACTION_GROUP_NAME,
            description="Read-only, bounded telemetry tools",
            action_group_executor=bedrock.CfnAgent.ActionGroupExecutorProperty(lambda_=tools_arn),
            function_schema=bedrock.CfnAgent.FunctionSchemaProperty(
                functions=function_properties(agent_id)
            ),
            action_group_state="ENABLED",
        )
    ]


def read_aws_config(path: str | None) -> AwsSettings:
    """The tools' AWS settings (validated now, so a bad file fails the synth, not a call)."""
    return load_aws_settings({}, Path(path) if path else None)


def _config_layer(scope: Construct, path: str) -> lambda_.LayerVersion:
    staging = Path(tempfile.mkdtemp(prefix="opx-aws-config-"))
    (staging / "opx").mkdir()
    shutil.copyfile(path, staging / "opx" / "aws.toml")
    return lambda_.LayerVersion(
        scope,
        "ToolsConfig",
        code=lambda_.Code.from_asset(str(staging)),
        compatible_architectures=[ARCHITECTURE],
        compatible_runtimes=[RUNTIME],
        description="OPX telemetry source settings (aws.toml)",
    )


def _read_grants(scope: Construct, aws: AwsSettings) -> list[Any]:
    stack = Stack.of(scope)

    def arn(service: str, resource: str) -> str:
        return f"arn:{stack.partition}:{service}:{stack.region}:{stack.account}:{resource}"

    statements = [
        opx_iam.allow(opx_iam.TELEMETRY_ANY_RESOURCE, ["*"], "TelemetryReads"),
        opx_iam.allow(
            opx_iam.TELEMETRY_LOG_GROUP_ACTIONS,
            [arn("logs", "log-group:*")],
            "LogReads",
        ),
    ]
    tables = aws.history.tables
    if tables:
        arns = [arn("dynamodb", f"table/{t}") for t in tables]
        arns += [f"{a}/index/*" for a in arns]
        statements.append(opx_iam.allow(opx_iam.HISTORY_READ_ACTIONS, arns, "HistoryReads"))
    if aws.knowledge.knowledge_base_id:
        kb = arn("bedrock", f"knowledge-base/{aws.knowledge.knowledge_base_id}")
        statements.append(opx_iam.allow(opx_iam.KNOWLEDGE_ACTIONS, [kb], "KnowledgeReads"))
    return statements


def make_tools_function(
    scope: Construct, *, code: lambda_.Code, key: kms.IKey, settings: InfraSettings
) -> lambda_.Function:
    aws = read_aws_config(settings.aws_config)
    role = role_for(scope, "ToolsRole", "OPX telemetry tools: read-only")
    for statement in _read_grants(scope, aws):
        role.add_to_policy(statement)
    layers = [_config_layer(scope, settings.aws_config)] if settings.aws_config else []
    env: Mapping[str, str] = {"OPX_AWS_CONFIG": CONFIG_IN_LAYER} if layers else {}
    longest = max([aws.deadlines.total_s, *(s for _, s in aws.deadlines.per_tool)])
    return make_function(
        scope,
        FunctionSpec(
            construct_id="Tools",
            name=FUNCTION_NAME,
            handler=HANDLER,
            description="OPX: read-only telemetry tools for the Bedrock agents",
            memory_mb=MEMORY_MB,
            timeout=Duration.seconds(min(900, int(longest) + COLD_START_S)),
            reserved_concurrency=settings.tools_concurrency,
            environment=env,
            tracing=True,
            # Its environment holds at most a file path; a KMS grant would be the role's only
            # non-read permission, and the tools role holds read actions only.
            encrypt_environment=False,
            checkov_skips={
                "CKV_AWS_116": "invoked synchronously by Bedrock agents, never asynchronously: "
                "a dead-letter queue would never receive anything; errors go back to the agent",
                "CKV_AWS_117": NO_VPC,
            },
        ),
        code=code,
        role=role,
        key=key,
        production=settings.production,
        layers=layers,
    )


def allow_agents(
    scope: Construct, function: lambda_.IFunction, agent_arns: Sequence[tuple[str, str]]
) -> None:
    """Let each agent (and only it) invoke the tools."""
    for agent_id, arn in agent_arns:
        lambda_.CfnPermission(
            scope,
            f"ToolsInvokedBy-{agent_id}",
            action="lambda:InvokeFunction",
            function_name=function.function_arn,
            principal="bedrock.amazonaws.com",
            source_arn=arn,
            source_account=Stack.of(scope).account,
        )
