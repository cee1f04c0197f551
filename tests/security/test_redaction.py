"""Redaction keeps resource names intact and replaces personal data and secrets in free text."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from opx.security.redaction import Redactor, protected_forms

PETSHOP = Path(__file__).resolve().parents[3] / "shared" / "data" / "petshop"
# Node names in the PetShop service graph that look like personal data, kept here so the test
# also runs without the dataset beside the repository.
TRICKY_NODES = (
    "adoptions@services-database.us-west-2.rds.amazonaws.com_Database::SQL",
    "169.254.170.2_remote",
    "PetSearch_AWS::ECS::Fargate",
    "StepFnStateMachine76D362E8-T67Tg48ke8oK_client",
    "https://sqs.us-west-2.amazonaws.com/Services-sqspetadoption_AWS::SQS::Queue",
)
PLACEHOLDER = re.compile(r"<([A-Z_]+):([0-9a-f]{8})>")


def petshop_nodes() -> list[str]:
    names: set[str] = set(TRICKY_NODES)
    for graph in sorted(PETSHOP.glob("*/graph.csv")):
        with graph.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle))
        names.update(n for n in header if n)
    return sorted(names)


def kinds(text: str) -> list[str]:
    return [m.group(1) for m in PLACEHOLDER.finditer(text)]


def test_petshop_node_names_survive_in_free_text() -> None:
    nodes = petshop_nodes()
    redactor = Redactor(b"k", protected=nodes)
    for node in nodes:
        message = f"call to {node} failed after 3 retries"
        assert redactor.text(message) == message
        bare = next(iter(sorted(protected_forms(node), key=len)))
        assert redactor.text(f"upstream {bare} timed out") == f"upstream {bare} timed out"


def test_planted_personal_data_is_replaced_next_to_node_names() -> None:
    redactor = Redactor(b"k", protected=TRICKY_NODES)
    message = (
        "adoptions@services-database.us-west-2.rds.amazonaws.com refused user "
        "jane.doe@example.com from 10.1.2.3 via 169.254.170.2 key AKIAABCDEFGHIJKLMNOP "
        "password=hunter2 phone +14155550123"
    )
    out = redactor.text(message)
    assert "adoptions@services-database.us-west-2.rds.amazonaws.com refused" in out
    assert "via 169.254.170.2 key" in out
    for secret in (
        "jane.doe@example.com",
        "10.1.2.3",
        "AKIAABCDEFGHIJKLMNOP",
        "hunter2",
        "+14155550123",
    ):
        assert secret not in out
    assert kinds(out) == ["EMAIL", "IP", "AWS_KEY", "SECRET", "PHONE"]
    assert "password=<SECRET:" in out


def test_placeholders_are_consistent_and_keep_values_distinct() -> None:
    redactor = Redactor(b"k")
    one = redactor.text("a@example.com then b@example.com then a@example.com")
    found = PLACEHOLDER.findall(one)
    assert found[0] == found[2]
    assert found[0] != found[1]
    assert Redactor(b"k").text("a@example.com") == redactor.text("a@example.com")
    assert Redactor(b"other").text("a@example.com") != redactor.text("a@example.com")


@pytest.mark.parametrize(
    ("text", "kind", "secret"),
    [
        (
            "GET https://shop.example.com/cart?email=bob%40mail.com&token=abc123def",
            "SECRET",
            "abc123def",
        ),
        ("connect postgres://admin:s3cr3t@db.internal:5432/app", "SECRET", "admin:s3cr3t"),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl",
            "SECRET",
            "eyJhbGciOiJIUzI1NiJ9",
        ),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "SECRET",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        (
            "leaked wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY in config",
            "SECRET",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        ("client 2001:db8:85a3::8a2e:370:7334 reset", "IP", "2001:db8:85a3::8a2e:370:7334"),
        ("call (415) 555-0123 now", "PHONE", "(415) 555-0123"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
            "PRIVATE_KEY",
            "MIIEow",
        ),
        (
            "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl seen",
            "JWT",
            "eyJzdWIiOiIxMjM0NSJ9",
        ),
    ],
)
def test_each_kind_of_secret(text: str, kind: str, secret: str) -> None:
    out = Redactor(b"k").text(text)
    assert secret not in out
    assert kind in kinds(out)


@pytest.mark.parametrize(
    "text",
    [
        "latency 2024-05-01T10:00:00Z p99=1532.5ms status=503",
        "trace 1-5f84c7a1-0123456789abcdef01234567 span 53995c3f42cd8ad8",
        "version 1.2.3 released, 12:30:45 elapsed",
        "arn:aws:dynamodb:us-east-1:123456789012:table/orders-table throttled",
        "arn:aws:lambda:us-east-1:123456789012:function:checkout@v2 errored",
        "AWS::ECS::Fargate node PetSearch",
    ],
)
def test_ordinary_text_and_resource_arns_are_untouched(text: str) -> None:
    assert Redactor(b"k").text(text) == text


def test_identity_fields_hide_people_but_keep_roles_and_service_principals() -> None:
    redactor = Redactor(b"k")
    assumed = redactor.identity("arn:aws:sts::123456789012:assumed-role/Deployer/jane@example.com")
    assert assumed.startswith("arn:aws:sts::123456789012:assumed-role/Deployer/<EMAIL:")
    user = redactor.identity("arn:aws:iam::123456789012:user/jdoe")
    assert user.startswith("arn:aws:iam::123456789012:user/<USER:")
    assert redactor.identity("jdoe") == user.rsplit("/", 1)[1]
    assert redactor.identity("codepipeline.amazonaws.com") == "codepipeline.amazonaws.com"
    assert redactor.identity("") == ""


def test_protected_forms_strip_the_xray_type() -> None:
    assert protected_forms("PetSearch_AWS::ECS::Fargate") == {
        "PetSearch_AWS::ECS::Fargate",
        "PetSearch",
    }
    assert protected_forms("lambda_step_readDDB") == {"lambda_step_readDDB"}
    assert protected_forms("PetSearch_client") == {"PetSearch_client", "PetSearch"}


def test_a_protected_name_inside_a_longer_address_does_not_shield_it() -> None:
    redactor = Redactor(b"k", protected=["PetSite"])
    out = redactor.text("mail PetSite@example.com and PetSite")
    assert "PetSite@example.com" not in out
    assert out.endswith("and PetSite")


def test_empty_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="key"):
        Redactor(b"")
