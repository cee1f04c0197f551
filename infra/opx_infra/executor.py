"""The executor: the Lambda that runs one execution per incident event, its trigger, its
asynchronous-invocation safety net and the only places it may write."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from opx_infra import iam as opx_iam
from opx_infra.functions import NO_VPC, FunctionSpec, make_function, role_for
from opx_infra.settings import InfraSettings

HANDLER = "opx.runtime.lambda_handler.handler"
FUNCTION_NAME = "opx-executor"
INCIDENT_RULE_NAME = "opx-incident-created"
ALARM_RULE_NAME = "opx-alarm-state-change"
INCIDENT_PATTERN = {"source": ["opx.incident"], "detail-type": ["IncidentCreated"]}
# 1 GB: LangGraph, pydantic and boto3 import in about a second at this size (Lambda gives CPU in
# proportion to memory), and the four core agents run in parallel threads; executions hold a few
# MB of state, so more memory would buy only CPU.
MEMORY_MB = 1024
# 10 minutes: four core agents in parallel, then knowledge and response in sequence, each bounded
# by the Bedrock deadline (90 s) with retries, plus storing and publishing. Below the runtime's
# 900 s lease, so a live invocation never loses its lease to a redelivery of the same event.
TIMEOUT = Duration.minutes(10)
# Lambda retries a failed asynchronous invocation twice; an event older than an hour is stale
# for incident response and goes to the dead-letter queue instead.
RETRY_ATTEMPTS = 2
MAX_EVENT_AGE = Duration.hours(1)
DLQ_RETENTION = Duration.days(14)


@dataclass(frozen=True)
class Messaging:
    dead_letters: sqs.Queue
    bus: events.EventBus
    summaries: sns.Topic


def make_messaging(scope: Construct, key: kms.IKey, settings: InfraSettings) -> Messaging:
    queue = sqs.Queue(
        scope,
        "DeadLetters",
        queue_name="opx-executor-dead-letters",
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=DLQ_RETENTION,
    )
    bus = events.EventBus(scope, "AnalysisBus", event_bus_name=settings.event_bus)
    topic = sns.Topic(
        scope,
        "Summaries",
        topic_name="opx-analysis-summaries",
        master_key=key,
        enforce_ssl=True,
    )
    return Messaging(queue, bus, topic)


def make_kill_switch(scope: Construct, settings: InfraSettings, agent_ids: Sequence[str]) -> None:
    """``off`` everywhere: set the global parameter, or one agent's, to ``on`` to stop it."""
    ssm.StringParameter(
        scope,
        "KillSwitch",
        parameter_name=settings.kill_switch_parameter,
        string_value="off",
        description="OPX kill switch for every execution: on or off",
    )
    for agent_id in agent_ids:
        ssm.StringParameter(
            scope,
            f"KillSwitch-{agent_id}",
            parameter_name=f"{settings.kill_switch_agent_path}{agent_id}",
            string_value="off",
            description=f"OPX kill switch for the {agent_id} agent: on or off",
        )


def environment(
    settings: InfraSettings,
    messaging: Messaging,
    agents: Mapping[str, str],
    tools_function: str,
) -> dict[str, str]:
    """The runtime's settings (opx.config); ``agents`` maps each agent's variable suffix to
    ``<agentId>/<aliasId>``; the local analysts read telemetry through ``tools_function``.
    Names and references only: no secret is ever put here."""
    env = {
        "OPX_STORE": "dynamodb",
        "OPX_TELEMETRY": "lambda",
        "OPX_TOOLS_FUNCTION": tools_function,
        "OPX_AGENT_BACKEND": "bedrock",
        "OPX_DATA_DIR": "/tmp/opx",
        "OPX_CHECKPOINT_TABLE": settings.checkpoint_table,
        "OPX_RESULTS_TABLE": settings.results_table,
        "OPX_EVENT_BUS": settings.event_bus,
        "OPX_SUMMARY_TOPIC_ARN": messaging.summaries.topic_arn,
        "OPX_KILL_SWITCH_SOURCE": "ssm",
        "OPX_KILL_SWITCH_PARAMETER": settings.kill_switch_parameter,
        "OPX_KILL_SWITCH_AGENT_PATH": settings.kill_switch_agent_path,
        "OPX_METRICS_NAMESPACE": settings.metrics_namespace,
        "OPX_DEADLINE_MARGIN_S": "20",
        "OPX_BEDROCK_DEADLINE_S": "90",
        "OPX_BEDROCK_MODEL": settings.foundation_model,
    }
    env.update({f"OPX_BEDROCK_AGENT_{suffix}": ref for suffix, ref in agents.items()})
    return env


def _grant(
    role: iam.Role,
    tables: Sequence[dynamodb.Table],
    messaging: Messaging,
    alias_arns: Sequence[str],
    settings: InfraSettings,
    kill_switch_arns: Sequence[str],
    tools_arn: str,
) -> None:
    table_arns = [t.table_arn for t in tables]
    role.add_to_policy(
        opx_iam.allow(
            opx_iam.STORE_READ_ACTIONS + opx_iam.STORE_WRITE_ACTIONS, table_arns, "OwnTables"
        )
    )
    role.add_to_policy(opx_iam.allow(("bedrock:InvokeAgent",), alias_arns, "InvokeOwnAgents"))
    role.add_to_policy(
        opx_iam.allow(("events:PutEvents",), [messaging.bus.event_bus_arn], "PublishAnalysis")
    )
    role.add_to_policy(
        opx_iam.allow(("sns:Publish",), [messaging.summaries.topic_arn], "PublishSummary")
    )
    role.add_to_policy(opx_iam.allow(opx_iam.KILL_SWITCH_ACTIONS, kill_switch_arns, "KillSwitch"))
    # The unqualified ARN only: the executor invokes $LATEST by name, never a version or alias.
    role.add_to_policy(opx_iam.allow(opx_iam.TOOLS_INVOKE_ACTIONS, [tools_arn], "ReadTelemetry"))


def kill_switch_arns(scope: Construct, settings: InfraSettings) -> list[str]:
    from aws_cdk import Stack  # noqa: PLC0415

    stack = Stack.of(scope)
    base = f"arn:{stack.partition}:ssm:{stack.region}:{stack.account}:parameter"
    path = settings.kill_switch_agent_path.rstrip("/")
    return [f"{base}{settings.kill_switch_parameter}", f"{base}{path}", f"{base}{path}/*"]


def make_executor(
    scope: Construct,
    *,
    code: lambda_.Code,
    key: kms.IKey,
    settings: InfraSettings,
    tables: Sequence[dynamodb.Table],
    messaging: Messaging,
    agents: Mapping[str, str],
    alias_arns: Sequence[str],
    tools: lambda_.IFunction,
) -> lambda_.Function:
    role = role_for(scope, "ExecutorRole", "OPX executor: its tables, agents, tools, bus and topic")
    _grant(
        role,
        tables,
        messaging,
        alias_arns,
        settings,
        kill_switch_arns(scope, settings),
        tools.function_arn,
    )
    function = make_function(
        scope,
        FunctionSpec(
            construct_id="Executor",
            name=FUNCTION_NAME,
            handler=HANDLER,
            description="OPX: advisory root-cause analysis of one incident",
            memory_mb=MEMORY_MB,
            timeout=TIMEOUT,
            reserved_concurrency=settings.executor_concurrency,
            environment=environment(settings, messaging, agents, tools.function_name),
            tracing=True,
            checkov_skips={
                "CKV_AWS_116": "asynchronous failures go to the SQS dead-letter queue through "
                "the EventInvokeConfig on-failure destination, which also keeps the error",
                "CKV_AWS_117": NO_VPC,
            },
        ),
        code=code,
        role=role,
        key=key,
        production=settings.production,
        own_tables=[t.table_arn for t in tables],
    )
    function.configure_async_invoke(
        retry_attempts=RETRY_ATTEMPTS,
        max_event_age=MAX_EVENT_AGE,
        on_failure=destinations.SqsDestination(messaging.dead_letters),
    )
    _trigger(scope, function, messaging.dead_letters, settings)
    return function


def _trigger(
    scope: Construct, function: lambda_.Function, dead_letters: sqs.Queue, settings: InfraSettings
) -> None:
    target = targets.LambdaFunction(
        function,
        dead_letter_queue=dead_letters,
        retry_attempts=RETRY_ATTEMPTS,
        max_event_age=MAX_EVENT_AGE,
    )
    events.Rule(
        scope,
        "IncidentCreated",
        rule_name=INCIDENT_RULE_NAME,
        description="Incidents from the OPX control plane",
        event_pattern=events.EventPattern(
            source=INCIDENT_PATTERN["source"], detail_type=INCIDENT_PATTERN["detail-type"]
        ),
        targets=[target],
    )
    if settings.alarm_trigger:
        events.Rule(
            scope,
            "AlarmStateChange",
            rule_name=ALARM_RULE_NAME,
            description="CloudWatch alarms entering ALARM, except OPX's own",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                detail={
                    "state": {"value": ["ALARM"]},
                    # OPX's own alarms watch OPX; analysing them would loop.
                    "alarmName": [{"anything-but": {"prefix": "opx-"}}],
                },
            ),
            targets=[target],
        )
