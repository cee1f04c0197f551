"""The OPX stack: every construct of the deployment, composed in dependency order."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from opx.agents.roster import ROSTER
from opx_infra import action_groups, agents, executor, observability, tables
from opx_infra.encryption import make_key
from opx_infra.settings import InfraSettings


class OpxStack(Stack):
    """Tables, executor, tools, agents, kill switch, alarms and dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: InfraSettings,
        code: lambda_.Code,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        key = make_key(self, settings.production)
        stores = [
            tables.checkpoint_table(self, settings.checkpoint_table, key, settings.production),
            tables.results_table(self, settings.results_table, key, settings.production),
        ]
        messaging = executor.make_messaging(self, key, settings)
        executor.make_kill_switch(self, settings, sorted(ROSTER))
        tools = action_groups.make_tools_function(self, code=code, key=key, settings=settings)
        guardrail = agents.make_guardrail(self, key)
        agent_role = agents.make_agent_role(self, settings, guardrail)
        key.grant_encrypt_decrypt(agent_role)
        deployed = agents.make_agents(
            self,
            settings=settings,
            key=key,
            tools_arn=tools.function_arn,
            role=agent_role,
            guardrail=guardrail,
        )
        action_groups.allow_agents(
            self, tools, [(a.agent_id, a.agent.attr_agent_arn) for a in deployed]
        )
        function = executor.make_executor(
            self,
            code=code,
            key=key,
            settings=settings,
            tables=stores,
            messaging=messaging,
            agents={a.env_suffix: a.reference for a in deployed},
            alias_arns=[a.alias.attr_agent_alias_arn for a in deployed],
            tools=tools,
        )
        watched = observability.Watched(executor.INCIDENT_RULE_NAME, sorted(ROSTER))
        observability.make_alarms(self, settings, key, watched)
        observability.make_dashboard(self, settings, watched)
        CfnOutput(self, "ExecutorName", value=function.function_name)
        CfnOutput(self, "AnalysisBusName", value=messaging.bus.event_bus_name)
        CfnOutput(self, "SummaryTopicArn", value=messaging.summaries.topic_arn)
        CfnOutput(self, "DeadLetterQueueUrl", value=messaging.dead_letters.queue_url)
