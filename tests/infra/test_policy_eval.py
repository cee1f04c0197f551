"""The evaluator the IAM proofs rely on."""

from __future__ import annotations

from tests.infra.policy_eval import evaluate, matches

TABLE = "arn:aws:dynamodb:eu-west-1:123456789012:table/"


def test_wildcards_span_segments_and_actions_ignore_case() -> None:
    assert matches("arn:aws:logs:*:log-group:*", "arn:aws:logs:eu-west-1:1:log-group:/a/b:*")
    assert matches("dynamodb:Put*", "DYNAMODB:PUTITEM", ignore_case=True)
    assert not matches("dynamodb:Put*", "dynamodb:UpdateItem", ignore_case=True)
    assert matches("table/a?c", "table/abc") and not matches("table/a?c", "table/abbc")


def test_a_wildcard_spans_a_line_break_with_or_without_ignoring_case() -> None:
    assert matches("arn:*", "arn:a\nb") and matches("ARN:*", "arn:a\nb", ignore_case=True)
    assert matches("arn:?b", "arn:\nb", ignore_case=True)


def test_explicit_deny_beats_allow_and_not_resource_exempts() -> None:
    statements = [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": ["dynamodb:PutItem"], "NotResource": [TABLE + "own"]},
    ]
    assert evaluate(statements, "dynamodb:PutItem", TABLE + "own").allowed
    other = evaluate(statements, "dynamodb:PutItem", TABLE + "other")
    assert not other.allowed and other.denied_explicitly


def test_nothing_allowed_without_an_allow_and_not_action() -> None:
    assert not evaluate([], "s3:GetObject", "*").allowed
    statements = [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]
    assert evaluate(statements, "s3:GetObject", "arn:aws:s3:::b/k").allowed
    assert not evaluate(statements, "iam:CreateUser", "*").allowed


def test_conditions_are_read_conservatively() -> None:
    statements = [
        {
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
        },
        {
            "Effect": "Deny",
            "Action": "sqs:SendMessage",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]
    assert evaluate(statements, "sqs:SendMessage", "arn:aws:sqs:r:a:q").allowed
