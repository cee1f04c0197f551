"""What a Bedrock agent's answer is checked against: every evidence item must refer to data it
was given or a tool result in its trace (ids as whole values), and a tool that failed during its
run makes the hypothesis PARTIAL with lowered confidence."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from opx.agents.base import AgentContext
from opx.agents.bedrock.citations import PENALTY, ToolValues
from opx.agents.bedrock.tool_failures import TOOL_FAILURE_PENALTY
from opx.domain.errors import ErrorCode
from opx.domain.hypothesis import Evidence, Hypothesis, HypothesisStatus, RootCause
from opx.domain.tool_result import ToolResult, ToolStatus
from tests.agents.bedrock import eventstream as es
from tests.agents.bedrock.conftest import BackendFactory
from tests.agents.bedrock.fake_agent import (
    Behaviour,
    FakeAgent,
    Reply,
    Request,
    answer,
    data_block,
    restated,
)

SIGNAL = "signal-intelligence"
GIVEN_BARE = Evidence(tool="data_gaps", summary="traces:  the answer was partial or truncated")


class Analyst:
    """A local signal analyst with one cited item and one item without ids."""

    agent_id = SIGNAL
    version = "test/1"

    def analyze(self, ctx: AgentContext) -> Hypothesis:
        return Hypothesis(
            agent_id=SIGNAL,
            root_cause=RootCause(service="orders-api", category="ERRORS"),
            description="orders-api errors",
            confidence=0.8,
            evidence=[Evidence(tool="search_logs", record_ids=["log-7"], summary="errors")],
            contradicting_evidence=[GIVEN_BARE],
        )


def tool_trace(request: Request, tool: str, text: str, trace_id: str) -> bytes:
    """One action-group call of ``tool`` and its result ``text``, as orchestration traces."""
    call = {
        "orchestrationTrace": {
            "invocationInput": {
                "traceId": trace_id,
                "invocationType": "ACTION_GROUP",
                "actionGroupInvocationInput": {"actionGroupName": "telemetry", "function": tool},
            }
        }
    }
    result = {
        "orchestrationTrace": {
            "observation": {
                "traceId": trace_id,
                "type": "ACTION_GROUP",
                "actionGroupInvocationOutput": {"text": text},
            }
        }
    }
    return b"".join(
        es.trace(body, agent_id=request.agent_id, session_id=request.session_id)
        for body in (call, result)
    )


def answering(
    extra: list[dict[str, Any]] | None = None, tools: list[tuple[str, str]] | None = None
) -> Behaviour:
    """Restates the given evidence plus ``extra`` items, after the ``tools`` (name, result)."""

    def behaviour(request: Request, fake: FakeAgent) -> Reply:
        hypothesis = restated(data_block(fake.first_text(request.session_id)), SIGNAL)
        hypothesis["evidence"] = [*hypothesis["evidence"], *(extra or [])]
        reply = answer(json.dumps(hypothesis), request.agent_id, request.session_id)
        for i, (tool, text) in enumerate(tools or []):
            reply.frames.insert(i, tool_trace(request, tool, text, f"orch-tool-{i}"))
        return reply

    return behaviour


def run(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext, behaviour: Behaviour
) -> Hypothesis:
    fake.behaviour = behaviour
    backend = make_backend({SIGNAL: Analyst()})
    return asyncio.run(backend.invoke(SIGNAL, ctx, 1)).hypothesis


def found(*ids: str) -> str:
    data = {"events": [{"id": i, "message": "ERROR"} for i in ids]}
    return ToolResult(status=ToolStatus.SUCCESS, data=data, source="logs").model_dump_json()


# -- citations --------------------------------------------------------------------------------


def test_restating_the_given_evidence_passes(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    h = run(fake, make_backend, ctx, answering())
    assert h.status is HypothesisStatus.SUCCESS and h.error is None and h.confidence == 0.8
    assert [e.summary for e in h.contradicting_evidence] == [GIVEN_BARE.summary]


def test_an_id_that_is_only_part_of_a_fetched_id_is_not_a_citation(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    extra = [{"tool": "search_logs", "record_ids": ["log-1"], "summary": "made up"}]
    h = run(fake, make_backend, ctx, answering(extra, [("search_logs", found("log-12"))]))
    assert h.error is not None and h.error.code is ErrorCode.HALLUCINATION_DETECTED
    assert h.findings["citation_check"]["unknown_record_ids"] == ["log-1"]
    # Two given items and one invented: two thirds of the items check out.
    assert h.confidence == pytest.approx(0.8 * PENALTY * 2 / 3, abs=1e-4)


def test_an_id_a_tool_returned_whole_is_a_citation(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    extra = [{"tool": "search_logs", "record_ids": ["log-12"], "summary": "fetched"}]
    h = run(fake, make_backend, ctx, answering(extra, [("search_logs", found("log-12"))]))
    assert h.error is None and h.status is HypothesisStatus.SUCCESS


def test_an_item_without_ids_that_was_not_given_is_unverified(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    extra = [{"tool": "search_logs", "summary": "the database ran out of connections"}]
    h = run(fake, make_backend, ctx, answering(extra))
    assert h.status is HypothesisStatus.PARTIAL
    assert h.error is not None and h.error.code is ErrorCode.HALLUCINATION_DETECTED
    check = h.findings["citation_check"]
    assert check["unknown_record_ids"] == []
    assert check["unsupported_items"] == ["search_logs: the database ran out of connections"]
    assert "items without ids that were not given" in h.error.message


def test_a_given_summary_under_another_tool_is_not_the_given_item(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    extra = [{"tool": "get_traces", "summary": GIVEN_BARE.summary}]
    h = run(fake, make_backend, ctx, answering(extra))
    assert h.error is not None and h.error.code is ErrorCode.HALLUCINATION_DETECTED


@pytest.mark.parametrize(
    ("outputs", "record_id", "present"),
    [
        ([found("log-12")], "log-12", True),
        ([found("log-12")], "log-1", False),
        ([found("log-12")], "og-12", False),
        (['{"series": {"orders-api|errors|Sum": [1, 2]}}'], "orders-api|errors|Sum", True),
        (['{"count": 42}'], "42", True),
        (["runbook rb-3 says: restart, see rb-31."], "rb-3", True),
        (["runbook rb-3 says: restart, see rb-31."], "rb-31", True),
        (["runbook rb-31 only"], "rb-3", False),
        (['ids: "doc-9"'], "doc-9", True),
        (["doc-9x"], "doc-9", False),
        ([found("log-12")], "", False),
    ],
)
def test_tool_values_match_whole_ids_only(
    outputs: list[str], record_id: str, present: bool
) -> None:
    assert (record_id in ToolValues(outputs)) is present


# -- tool failures ----------------------------------------------------------------------------


def failed(code: ErrorCode = ErrorCode.DATA_SOURCE_UNAVAILABLE) -> str:
    return ToolResult.failed("cloudwatch", code, "GetMetricData throttled").model_dump_json()


@pytest.mark.parametrize(
    ("text", "status"),
    [
        (failed(), "FAILED"),
        (
            ToolResult(
                status=ToolStatus.PARTIAL, data={"points": []}, source="cloudwatch", truncated=True
            ).model_dump_json(),
            "PARTIAL",
        ),
        ('{"status": "TIMEOUT", "error": {"code": "TIMEOUT", "message": "slow"}}', "TIMEOUT"),
        ("Lambda crashed: Task timed out after 30.00 seconds", "UNREADABLE"),
    ],
)
def test_a_failed_tool_makes_the_hypothesis_partial_with_less_confidence(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext, text: str, status: str
) -> None:
    h = run(fake, make_backend, ctx, answering(tools=[("get_metrics", text)]))
    assert h.status is HypothesisStatus.PARTIAL
    assert h.confidence == pytest.approx(0.8 * (1 - TOOL_FAILURE_PENALTY), abs=1e-4)
    (failure,) = h.findings["tool_failures"]
    assert (failure["tool"], failure["status"]) == ("get_metrics", status)
    assert h.findings["confidence_before_tool_failures"] == 0.8
    assert h.error is None  # the answer itself is sound; it rests on less data
    assert len(fake.requests) == 1


def test_each_failed_tool_counts_once(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    tools = [
        ("get_metrics", failed()),
        ("get_metrics", failed()),
        ("get_traces", failed(ErrorCode.ACCESS_DENIED)),
        ("search_logs", found("log-7")),
    ]
    h = run(fake, make_backend, ctx, answering(tools=tools))
    assert h.confidence == pytest.approx(0.8 * (1 - 2 * TOOL_FAILURE_PENALTY), abs=1e-4)
    assert [(f["tool"], f["error_code"]) for f in h.findings["tool_failures"]] == [
        ("get_metrics", "DATA_SOURCE_UNAVAILABLE"),
        ("get_traces", "ACCESS_DENIED"),
    ]


def test_successful_tools_change_nothing(
    fake: FakeAgent, make_backend: BackendFactory, ctx: AgentContext
) -> None:
    h = run(fake, make_backend, ctx, answering(tools=[("search_logs", found("log-7"))]))
    assert h.status is HypothesisStatus.SUCCESS and h.confidence == 0.8
    assert "tool_failures" not in h.findings
