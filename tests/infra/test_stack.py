"""The synthesised stack, asserted with aws_cdk.assertions: tables, executor, trigger,
asynchronous safety net, kill switch, agents and their action groups."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template
from opx_infra import executor

from opx.agents.bedrock.prompt_files import load_prompt
from opx.agents.roster import ROSTER
from opx.config import load_settings
from opx.reasoning.pricing import load_pricing
from opx.tools.action_groups import function_schema
from tests.infra import cfn
from tests.infra.conftest import synth


def test_tables_keys_ttl_pitr_encryption(template: Template) -> None:
    for name, keys, attrs in (
        (
            "opx-langgraph-checkpoints",
            [
                {"AttributeName": "session_id", "KeyType": "HASH"},
                {"AttributeName": "checkpoint_id", "KeyType": "RANGE"},
            ],
            [
                {"AttributeName": "session_id", "AttributeType": "S"},
                {"AttributeName": "checkpoint_id", "AttributeType": "S"},
            ],
        ),
        (
            "opx-executions",
            [{"AttributeName": "execution_id", "KeyType": "HASH"}],
            [{"AttributeName": "execution_id", "AttributeType": "S"}],
        ),
    ):
        template.has_resource_properties(
            "AWS::DynamoDB::Table",
            {
                "TableName": name,
                "KeySchema": keys,
                "AttributeDefinitions": attrs,
                "BillingMode": "PAY_PER_REQUEST",
                "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {
                    "SSEEnabled": True,
                    "SSEType": "KMS",
                    "KMSMasterKeyId": Match.any_value(),
                },
            },
        )


def test_retain_in_production_destroy_otherwise(
    template: Template, prod_template: Template
) -> None:
    kinds = ("AWS::DynamoDB::Table", "AWS::Logs::LogGroup", "AWS::KMS::Key")
    for kind in kinds:
        dev = template.find_resources(kind)
        prod = prod_template.find_resources(kind)
        assert dev and {r["DeletionPolicy"] for r in dev.values()} == {"Delete"}, kind
        assert {r["DeletionPolicy"] for r in prod.values()} == {"Retain"}, kind
    prod_template.has_resource_properties(
        "AWS::DynamoDB::Table", {"DeletionProtectionEnabled": True}
    )


def test_executor_function(resources: dict[str, Any]) -> None:
    _, function = cfn.one(resources, "AWS::Lambda::Function", "Executor")
    props = function["Properties"]
    assert props["Handler"] == "opx.runtime.lambda_handler.handler"
    assert props["Runtime"] == "python3.12" and props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["ReservedConcurrentExecutions"] == 10
    assert props["MemorySize"] == 1024 and props["Timeout"] == 600
    assert "KmsKeyArn" in props
    # The runtime's lease must outlive one invocation, or a redelivery could take it over.
    assert props["Timeout"] < load_settings(env={}).lease_seconds
    log_id = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert resources[log_id]["Properties"]["RetentionInDays"] == 30
    assert resources[log_id]["Properties"]["LogGroupName"] == "/aws/lambda/opx-executor"


def test_executor_environment_is_what_the_runtime_reads(resources: dict[str, Any]) -> None:
    _, function = cfn.one(resources, "AWS::Lambda::Function", "Executor")
    env = cfn.resolve(function["Properties"]["Environment"]["Variables"], resources)
    assert not [k for k in env if any(w in k for w in ("SECRET", "PASSWORD", "TOKEN", "KEY"))]
    # Deployed agent ids are resolved at deploy time; stand in real-looking ids to load them.
    agents = {k: "AGENT12345/ALIAS12345" for k in env if k.startswith("OPX_BEDROCK_AGENT_")}
    # The executor reads telemetry through the tools function, named by its deployed name.
    tools_id, tools = cfn.one(resources, "AWS::Lambda::Function", "Tools")
    assert function["Properties"]["Environment"]["Variables"]["OPX_TOOLS_FUNCTION"] == {
        "Ref": tools_id
    }
    tools_name = {"OPX_TOOLS_FUNCTION": tools["Properties"]["FunctionName"]}
    settings = load_settings({**env, **agents, **tools_name})
    assert settings.store_backend == "dynamodb" and settings.agent_backend == "bedrock"
    # The budget check prices the model the agents were deployed with before any call.
    assert settings.bedrock_model == env["OPX_BEDROCK_MODEL"]
    assert load_pricing().price(settings.bedrock_model) is not None
    assert settings.telemetry_backend == "lambda" and settings.tools_function == "opx-tools"
    assert settings.kill_switch_source == "ssm"
    # No telemetry source configuration: the executor holds no telemetry read permission.
    assert "OPX_AWS_CONFIG" not in env
    assert settings.checkpoint_table == "opx-langgraph-checkpoints"
    assert settings.results_table == "opx-executions"
    assert settings.metrics_namespace == "Phase6"
    assert sorted(settings.bedrock_agents) == sorted(ROSTER)
    assert settings.summary_topic_arn and settings.event_bus == "opx-analysis"


def test_async_invocation_retries_and_dead_letter_queue(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": Match.string_like_regexp("^Executor")},
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": 3600,
            "DestinationConfig": {
                "OnFailure": {
                    "Destination": {"Fn::GetAtt": [Match.string_like_regexp("^DeadLetters"), "Arn"]}
                }
            },
        },
    )
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "KmsMasterKeyId": Match.any_value(),
            "MessageRetentionPeriod": 14 * 24 * 3600,
        },
    )


def test_rule_pattern_and_target(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": "opx-incident-created",
            "EventPattern": {"source": ["opx.incident"], "detail-type": ["IncidentCreated"]},
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [Match.string_like_regexp("^Executor"), "Arn"]},
                        "DeadLetterConfig": Match.any_value(),
                        "RetryPolicy": {
                            "MaximumRetryAttempts": 2,
                            "MaximumEventAgeInSeconds": 3600,
                        },
                    }
                )
            ],
        },
    )
    assert len(template.find_resources("AWS::Events::Rule")) == 1


def test_alarm_trigger_is_optional_and_skips_opx_alarms(tmp_path: Any) -> None:
    rules = synth(tmp_path, {"opx:alarm_trigger": "true"}).find_resources("AWS::Events::Rule")
    patterns = [r["Properties"]["EventPattern"] for r in rules.values()]
    assert {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {
            "state": {"value": ["ALARM"]},
            "alarmName": [{"anything-but": {"prefix": "opx-"}}],
        },
    } in patterns


def test_kill_switch_parameters(template: Template) -> None:
    params = template.find_resources("AWS::SSM::Parameter")
    values = {p["Properties"]["Name"]: p["Properties"]["Value"] for p in params.values()}
    expected = {"/opx/kill-switch": "off"} | {f"/opx/kill-switch/{a}": "off" for a in ROSTER}
    assert values == expected


def test_agents_prompts_and_action_groups(resources: dict[str, Any]) -> None:
    agents = cfn.of_type(resources, "AWS::Bedrock::Agent")
    by_name = {a["Properties"]["AgentName"]: a["Properties"] for a in agents.values()}
    assert sorted(by_name) == sorted(f"opx-{a}" for a in ROSTER)
    functions = {f["name"]: f for f in function_schema()["functions"]}
    for agent_id, spec in ROSTER.items():
        props = by_name[f"opx-{agent_id}"]
        assert props["Instruction"] == load_prompt(agent_id).instruction
        assert props["GuardrailConfiguration"]["GuardrailVersion"] == {
            "Fn::GetAtt": ["GuardrailVersion", "Version"]
        }
        groups = props.get("ActionGroups", [])
        if not spec.tools:
            assert groups == []
            continue
        [group] = groups
        deployed = group["FunctionSchema"]["Functions"]
        assert [f["Name"] for f in deployed] == list(spec.tools)
        for f in deployed:
            source = functions[f["Name"]]
            assert f["Description"] == source["description"]
            assert {
                k: {"type": v["Type"], "description": v["Description"], "required": v["Required"]}
                for k, v in f["Parameters"].items()
            } == (source["parameters"])
        assert group["ActionGroupExecutor"] == {
            "Lambda": {
                "Fn::GetAtt": [cfn.one(resources, "AWS::Lambda::Function", "Tools")[0], "Arn"]
            }
        }
    aliases = cfn.of_type(resources, "AWS::Bedrock::AgentAlias")
    assert len(aliases) == len(ROSTER)


def test_tools_invocable_only_by_the_agents(resources: dict[str, Any]) -> None:
    permissions = cfn.of_type(resources, "AWS::Lambda::Permission")
    tools_id, _ = cfn.one(resources, "AWS::Lambda::Function", "Tools")
    to_tools = [
        p["Properties"]
        for p in permissions.values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [tools_id, "Arn"]}
    ]
    assert len(to_tools) == len(ROSTER)
    assert all(p["Principal"] == "bedrock.amazonaws.com" and "SourceArn" in p for p in to_tools)


def test_guardrail_masks_personal_data_without_blocking_sre_words(
    resources: dict[str, Any],
) -> None:
    _, guardrail = cfn.one(resources, "AWS::Bedrock::Guardrail")
    props = guardrail["Properties"]
    pii = {
        e["Type"]: e["Action"]
        for e in props["SensitiveInformationPolicyConfig"]["PiiEntitiesConfig"]
    }
    assert pii["AWS_SECRET_KEY"] == "BLOCK" and pii["EMAIL"] == "ANONYMIZE"
    assert "TopicPolicyConfig" not in props and "WordPolicyConfig" not in props
    filters = {f["Type"] for f in props["ContentPolicyConfig"]["FiltersConfig"]}
    assert "VIOLENCE" not in filters and "PROMPT_ATTACK" in filters
    text = json.dumps(props).lower()
    for word in ("rollback", "terminate", "kill", "restart"):
        assert word not in text


def test_executor_constants_match_the_template(resources: dict[str, Any]) -> None:
    assert executor.INCIDENT_PATTERN["source"] == ["opx.incident"]
    _, rule = cfn.one(resources, "AWS::Events::Rule")
    assert rule["Properties"]["Name"] == executor.INCIDENT_RULE_NAME
