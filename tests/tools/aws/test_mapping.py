"""The service mapping: templates, X-Ray names, resources to services, and the TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from opx.tools.aws.mapping import (
    MappingError,
    ServiceEntry,
    ServiceMapping,
    node_name,
    render,
    resource_forms,
    split_node,
)
from opx.tools.aws.settings import load_aws_settings, parse_settings

EXAMPLE = """
name = "prod-eu"
[deadlines]
request_s = 1.5
[deadlines.tools]
search_logs = 8
[logs]
mode = "insights"
[history]
incidents_table = "opx-history"
recent_index = "record_type-opened_at"
[knowledge]
knowledge_base_id = "KB12345678"
min_score = 0.4
[mapping]
tag_keys = ["team:service"]
metric_directions = { OrderErrors = "up" }
[services.checkout]
log_groups = ["/shop/checkout"]
xray_names = ["checkout-api"]
resources = ["arn:aws:ecs:*:*:service/shop/checkout*"]
[[services.checkout.metrics]]
namespace = "Shop"
dimensions = { Service = "checkout" }
metrics = [{ name = "OrderErrors", stat = "Sum", unit = "Count" }]
"""


def test_settings_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "opx-aws.toml"
    path.write_text(EXAMPLE, encoding="utf-8")
    settings = load_aws_settings({"OPX_REDACTION_KEY": "k1"}, path)
    assert settings.source_name == "aws:prod-eu"
    assert settings.deadlines.request_s == 1.5
    assert settings.deadlines.total_for("search_logs") == 8.0
    assert settings.deadlines.total_for("get_metrics") == 5.0
    assert settings.logs_mode == "insights"
    assert settings.history.tables == ("opx-history",)
    assert settings.knowledge.min_score == 0.4
    assert settings.redaction_key == b"k1"
    mapping = settings.mapping
    assert mapping.metric_directions == {"OrderErrors": "up"}
    templates = mapping.metric_templates("checkout")
    assert templates[0][1] is True and templates[0][0].namespace == "Shop"
    assert any(t.namespace == "AWS/Lambda" for t, explicit in templates if not explicit)
    assert mapping.log_groups_for("checkout")[0] == ("/shop/checkout", True)
    assert ("/aws/lambda/checkout", False) in mapping.log_groups_for("checkout")
    assert load_aws_settings({"OPX_AWS_CONFIG": str(path)}).name == "prod-eu"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[logs]\nmode = "tail"', "logs.mode"),
        ("[services.a]\nlog_groups = ['/aws/*']", "not a valid name"),
        ('[mapping]\nmetric_directions = { a = "sideways" }', "up, down or both"),
        ("[limits]\nmax_pages = 0", "max_pages"),
        ('[knowledge]\nknowledge_base_id = "x"', "knowledge_base_id"),
        ("[[services.a.metrics]]\nnamespace = 'N'\nmetrics = []", "at least one metric"),
        ("name = 3", "name"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError, match=problem):
        load_aws_settings({}, path)


def test_unreadable_or_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot be read"):
        load_aws_settings({}, tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[", encoding="utf-8")
    with pytest.raises(MappingError, match="invalid TOML"):
        load_aws_settings({}, bad)


def test_names_split_and_render() -> None:
    assert split_node("PetSearch_AWS::ECS::Fargate") == ("PetSearch", "AWS::ECS::Fargate")
    assert split_node("lambda_step_readDDB") == ("lambda_step_readDDB", None)
    assert split_node("169.254.170.2_remote") == ("169.254.170.2", "remote")
    assert node_name("PetSite", None) == "PetSite"
    assert render("/aws/lambda/{name} {service}", "fn_AWS::Lambda") == (
        "/aws/lambda/fn fn_AWS::Lambda"
    )
    # A node name is never a valid log group name, so that default is skipped.
    groups = ServiceMapping().log_groups_for("PetSearch_AWS::ECS::Fargate")
    assert ("/ecs/PetSearch", False) in groups


def test_xray_nodes_to_services() -> None:
    mapping = ServiceMapping(services={"search": ServiceEntry("search", xray_names=("PetSearch",))})
    assert mapping.service_for_node("PetSearch", "AWS::ECS::Fargate", ()) == "search"
    assert mapping.service_for_node("PetSearch", "client", ()) == "PetSearch_client"
    assert mapping.service_for_node("cart", "AWS::Lambda", {"cart"}) == "cart"
    assert mapping.service_for_node("cart", "AWS::Lambda", ()) == "cart_AWS::Lambda"
    assert mapping.xray_names_for("other") == ("other",)


def test_resources_to_services() -> None:
    entry = ServiceEntry("orders", resources=("arn:aws:dynamodb:*:table/orders-*",))
    mapping = ServiceMapping(services={"orders": entry})
    known = {"checkout", "checkout-api", "orders"}
    table = "arn:aws:dynamodb:us-east-1:1:table/orders-v2"
    assert mapping.service_for_resource(table, {}, known) == "orders"
    assert mapping.service_for_resource("checkout-api-worker", {}, known) == "checkout-api"
    assert mapping.service_for_resource("/checkout/db-url", {}, known) == "checkout"
    tagged = "arn:aws:lambda:us-east-1:1:function:fn-17"
    assert mapping.service_for_resource(tagged, {"service": "checkout"}, known) == "checkout"
    assert mapping.service_for_resource(tagged, {"app": "billing"}, known) == "billing"
    assert mapping.service_for_resource(tagged, {}, known) is None
    assert resource_forms("arn:aws:ssm:us-east-1:1:parameter/shop/db-url") == (
        "arn:aws:ssm:us-east-1:1:parameter/shop/db-url",
        "shop",
        "db-url",
        "/shop/db-url",
    )


def test_parse_settings_defaults() -> None:
    settings = parse_settings({})
    assert settings.logs_mode == "filter"
    assert settings.history.incidents_table is None
    assert settings.mapping.configured == ()
