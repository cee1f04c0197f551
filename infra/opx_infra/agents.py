"""The six Bedrock agents: their shared role (invoke the chosen model, apply the guardrail),
the guardrail, and per agent a ``CfnAgent`` with its prompt and action group, and an alias."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from opx.agents.roster import ROSTER
from opx.config import env_name
from opx_infra import iam as opx_iam
from opx_infra import prompts
from opx_infra.action_groups import action_group
from opx_infra.settings import InfraSettings

ALIAS_NAME = "live"
IDLE_SESSION_TTL_S = 600
# Personal data an agent must neither read nor repeat. Secrets block the exchange; contact
# details are masked, so an analysis that quotes a log line still goes through.
PII_BLOCK = (
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "CREDIT_DEBIT_CARD_NUMBER",
    "PASSWORD",
    "US_SOCIAL_SECURITY_NUMBER",
)
PII_ANONYMIZE = ("EMAIL", "NAME", "PHONE")
# No denied topics, word lists or VIOLENCE filter: "kill the process", "terminate the instance"
# and "roll back" are everyday SRE words, and a blocked answer is an analysis lost.
CONTENT_FILTERS = (("HATE", "HIGH"), ("INSULTS", "HIGH"), ("SEXUAL", "HIGH"))
BLOCKED_MESSAGE = "OPX_GUARDRAIL_BLOCKED"


@dataclass(frozen=True)
class DeployedAgent:
    agent_id: str
    agent: bedrock.CfnAgent
    alias: bedrock.CfnAgentAlias

    @property
    def env_suffix(self) -> str:
        return env_name(self.agent_id)

    @property
    def reference(self) -> str:
        """``<agentId>/<aliasId>``, the form OPX_BEDROCK_AGENT_<AGENT> takes."""
        return f"{self.agent.attr_agent_id}/{self.alias.attr_agent_alias_id}"


def make_guardrail(scope: Construct, key: kms.IKey) -> bedrock.CfnGuardrailVersion:
    guardrail = bedrock.CfnGuardrail(
        scope,
        "Guardrail",
        name="opx-agents",
        description="OPX agents: no secrets or personal data in or out",
        blocked_input_messaging=BLOCKED_MESSAGE,
        blocked_outputs_messaging=BLOCKED_MESSAGE,
        kms_key_arn=key.key_arn,
        sensitive_information_policy_config=bedrock.CfnGuardrail.SensitiveInformationPolicyConfigProperty(
            pii_entities_config=[
                bedrock.CfnGuardrail.PiiEntityConfigProperty(type=t, action="BLOCK")
                for t in PII_BLOCK
            ]
            + [
                bedrock.CfnGuardrail.PiiEntityConfigProperty(type=t, action="ANONYMIZE")
                for t in PII_ANONYMIZE
            ]
        ),
        content_policy_config=bedrock.CfnGuardrail.ContentPolicyConfigProperty(
            filters_config=[
                bedrock.CfnGuardrail.ContentFilterConfigProperty(
                    type=kind, input_strength=strength, output_strength=strength
                )
                for kind, strength in CONTENT_FILTERS
            ]
            # Telemetry is untrusted text: instructions hidden in it are filtered on input.
            + [
                bedrock.CfnGuardrail.ContentFilterConfigProperty(
                    type="PROMPT_ATTACK", input_strength="HIGH", output_strength="NONE"
                )
            ]
        ),
    )
    # Agents use a numbered version, never the editable DRAFT.
    return bedrock.CfnGuardrailVersion(
        scope,
        "GuardrailVersion",
        guardrail_identifier=guardrail.attr_guardrail_id,
        description="OPX agents guardrail",
    )


def make_agent_role(
    scope: Construct, settings: InfraSettings, guardrail: bedrock.CfnGuardrailVersion
) -> iam.Role:
    stack = Stack.of(scope)
    role = iam.Role(
        scope,
        "AgentRole",
        assumed_by=iam.ServicePrincipal(
            "bedrock.amazonaws.com",
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        ),
        description="OPX Bedrock agents: the model and the guardrail",
    )
    model = settings.base_model
    if settings.uses_inference_profile:
        # A cross-region profile routes to the model in any of its regions.
        models = [
            f"arn:{stack.partition}:bedrock:*::foundation-model/{model}",
            f"arn:{stack.partition}:bedrock:{stack.region}:{stack.account}:inference-profile/"
            f"{settings.foundation_model}",
        ]
        role.add_to_policy(
            opx_iam.allow(("bedrock:GetInferenceProfile",), models[1:], "InferenceProfile")
        )
    else:
        models = [f"arn:{stack.partition}:bedrock:{stack.region}::foundation-model/{model}"]
    role.add_to_policy(opx_iam.allow(("bedrock:InvokeModel",), models, "InvokeModel"))
    role.add_to_policy(
        opx_iam.allow(
            ("bedrock:ApplyGuardrail",),
            [
                f"arn:{stack.partition}:bedrock:{stack.region}:{stack.account}:guardrail/"
                f"{guardrail.guardrail_identifier}"
            ],
            "ApplyGuardrail",
        )
    )
    for statement in opx_iam.deny_statements():
        role.add_to_policy(statement)
    return role


def make_agents(
    scope: Construct,
    *,
    settings: InfraSettings,
    key: kms.IKey,
    tools_arn: str,
    role: iam.Role,
    guardrail: bedrock.CfnGuardrailVersion,
) -> list[DeployedAgent]:
    deployed = []
    for agent_id in sorted(ROSTER):
        prompt = prompts.load(agent_id)
        agent = bedrock.CfnAgent(
            scope,
            f"Agent-{agent_id}",
            agent_name=f"opx-{agent_id}",
            description=f"OPX {agent_id}: {ROSTER[agent_id].description}",
            agent_resource_role_arn=role.role_arn,
            foundation_model=settings.foundation_model,
            instruction=prompt.instruction,
            idle_session_ttl_in_seconds=IDLE_SESSION_TTL_S,
            customer_encryption_key_arn=key.key_arn,
            auto_prepare=True,
            action_groups=action_group(agent_id, tools_arn),
            guardrail_configuration=bedrock.CfnAgent.GuardrailConfigurationProperty(
                guardrail_identifier=guardrail.guardrail_identifier,
                guardrail_version=guardrail.attr_version,
            ),
        )
        # auto_prepare checks the role's permissions: create the agent after its policy (the
        # role itself is already ordered by the GetAtt of its ARN).
        agent.node.add_dependency(role.node.find_child("DefaultPolicy"))
        alias = bedrock.CfnAgentAlias(
            scope,
            f"Alias-{agent_id}",
            agent_id=agent.attr_agent_id,
            agent_alias_name=ALIAS_NAME,
            # A new description makes CloudFormation update the alias, which then points at a
            # new version of the prepared agent: a prompt change reaches the alias.
            description=f"prompt {prompt.version} sha256:{prompt.digest}",
        )
        deployed.append(DeployedAgent(agent_id, agent, alias))
    return deployed
