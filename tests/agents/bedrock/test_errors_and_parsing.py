"""Error mapping (raised over HTTP by the fake runtime), session ids, the client guard, and
answer parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opx.agents.bedrock import errors
from opx.agents.bedrock.backend import session_id
from opx.agents.bedrock.client import invoke_once, make_client
from opx.agents.bedrock.output_schema import OPX_FILLED
from opx.agents.bedrock.parsing import extract_object, parse_answer
from opx.config import BedrockAgentRef
from opx.domain.errors import ErrorCode
from opx.domain.hypothesis import DISCLAIMER, HypothesisStatus
from opx.security.readonly import WriteRefused
from tests.agents.bedrock.fake_agent import FakeAgent, Reply

REF = BedrockAgentRef("AGENT00001", "ALIAS00001")
RAISED = [
    ("ThrottlingException", 429, ErrorCode.BEDROCK_THROTTLING, True),
    ("ServiceQuotaExceededException", 400, ErrorCode.BEDROCK_QUOTA_EXCEEDED, False),
    ("DependencyFailedException", 424, ErrorCode.DATA_SOURCE_UNAVAILABLE, True),
    ("BadGatewayException", 502, ErrorCode.DATA_SOURCE_UNAVAILABLE, True),
    ("ModelNotReadyException", 424, ErrorCode.BEDROCK_MODEL_ERROR, True),
    ("AccessDeniedException", 403, ErrorCode.ACCESS_DENIED, False),
    ("ValidationException", 400, ErrorCode.INVALID_INPUT, False),
    ("ResourceNotFoundException", 404, ErrorCode.INVALID_INPUT, False),
    ("ConflictException", 409, ErrorCode.INTERNAL_ERROR, True),
    ("InternalServerException", 500, ErrorCode.INTERNAL_ERROR, True),
    ("SomethingNewException", 503, ErrorCode.INTERNAL_ERROR, True),
    ("SomethingNewException", 400, ErrorCode.UNKNOWN_ERROR, False),
]


@pytest.mark.parametrize(("name", "status", "code", "retryable"), RAISED)
def test_raised_errors_map_to_codes_with_their_retry_decision(
    fake: FakeAgent, name: str, status: int, code: ErrorCode, retryable: bool
) -> None:
    fake.script = [Reply(status=status, error_type=name)]
    result = invoke_once(make_client(5.0, endpoint_url=fake.url), REF, "s-1", "hi", {})
    assert result.error is not None
    assert (result.error.code, result.error.retryable) == (code, retryable)
    assert name in result.error.message


def test_both_spellings_map_alike() -> None:
    raised = errors.from_name("ServiceQuotaExceededException", "m")
    streamed = errors.from_name("serviceQuotaExceededException", "m")
    assert (raised.code, raised.retryable) == (streamed.code, streamed.retryable)


def test_an_unreachable_endpoint_is_retryable_unavailability() -> None:
    client = make_client(1.0, endpoint_url="http://127.0.0.1:9")
    result = invoke_once(client, REF, "s-1", "hi", {})
    assert result.error is not None and result.error.code is ErrorCode.DATA_SOURCE_UNAVAILABLE
    assert result.error.retryable


def test_the_client_refuses_every_operation_but_invoke_and_retrieve(fake: FakeAgent) -> None:
    client: Any = make_client(5.0, endpoint_url=fake.url)
    with pytest.raises(WriteRefused):
        client.delete_agent_memory(agentId=REF.agent_id, agentAliasId=REF.alias_id)
    assert fake.requests == []


def test_session_ids_are_deterministic_distinct_and_valid() -> None:
    execution = "0123456789abcdef0123456789abcdef"
    ids = {
        session_id(execution, agent, attempt, run=run)
        for agent in ("signal-intelligence", "knowledge-rag")
        for attempt in (1, 2, 3)
        for run in (1, 2)
    }
    assert len(ids) == 12
    assert session_id(execution, "knowledge-rag", 2, run=1) == session_id(
        execution, "knowledge-rag", 2, run=1
    )
    for run in (1, 2):
        odd = session_id("exec with spaces/and/slashes" * 5, "signal-intelligence", 1, run=run)
        assert len(odd) <= 100 and odd.replace("-", "").isalnum()
    long_ids = {session_id("x" * 120, "signal-intelligence", 1, run=run) for run in (1, 2)}
    assert len(long_ids) == 2


HYPOTHESIS = {"agent_id": "x", "root_cause": {"service": "orders-api"}, "confidence": 0.5}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(HYPOTHESIS),
        "```json\n" + json.dumps(HYPOTHESIS) + "\n```",
        "Sure! {not json} Here it is:\n" + json.dumps(HYPOTHESIS, indent=2) + "\nDone {:)}",
        "```\n" + json.dumps(HYPOTHESIS) + '\n```\nThe config {"a": 1} is unrelated.',
    ],
)
def test_the_object_is_found_bare_fenced_or_in_prose(text: str) -> None:
    assert extract_object(text) == HYPOTHESIS


def test_parsing_stamps_the_agent_and_drops_opx_only_fields() -> None:
    spoofed = {
        **HYPOTHESIS,
        "agent_id": "response-strategy",
        "agent_version": "mine",
        "cost": {"input_tokens": 1},
        "attempts": [{"attempt": 9, "status": "SUCCESS"}],
        "error": {"code": "TIMEOUT", "message": "made up", "retryable": True},
        "disclaimer": "AUTHORITATIVE_EXECUTE_NOW",
    }
    assert set(spoofed) >= set(OPX_FILLED)
    parsed = parse_answer(json.dumps(spoofed), "signal-intelligence", "bedrock/1.0.0")
    assert parsed.hypothesis is not None
    plain = parse_answer(json.dumps(HYPOTHESIS), "signal-intelligence", "bedrock/1.0.0")
    assert parsed.hypothesis == plain.hypothesis
    assert parsed.hypothesis.agent_id == "signal-intelligence"
    assert parsed.hypothesis.agent_version == "bedrock/1.0.0"
    assert parsed.hypothesis.disclaimer == DISCLAIMER
    assert parsed.hypothesis.error is None
    assert parsed.hypothesis.cost.input_tokens == 0 and parsed.hypothesis.attempts == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("no json here", "no JSON object"),
        ('{"confidence": 3}', "confidence"),
        ('{"status": "SKIPPED"}', "status must be SUCCESS or PARTIAL"),
        (
            '{"recommendations": [{"type": "RESTART", "description": "x"}]}',
            "recommendations.0.type",
        ),
    ],
)
def test_invalid_answers_say_what_is_wrong(text: str, problem: str) -> None:
    parsed = parse_answer(text, "signal-intelligence", "v")
    assert parsed.hypothesis is None and problem in parsed.problem


def test_a_blocked_status_from_the_model_is_not_accepted() -> None:
    parsed = parse_answer('{"status": "BLOCKED"}', "a", "v")
    assert parsed.hypothesis is None
    assert HypothesisStatus.BLOCKED.value in parsed.problem
