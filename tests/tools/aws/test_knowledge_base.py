"""Bedrock Knowledge Base retrieval through the AWS source (Stubber, exact request)."""

from __future__ import annotations

from typing import Any

from opx.domain.errors import ErrorCode
from opx.domain.tool_result import ToolStatus
from opx.tools.aws.settings import AwsSettings, KnowledgeBase
from tests.tools.aws.conftest import Stubs, make_source


def result(uri: str, score: float, text: str, **metadata: Any) -> dict[str, Any]:
    return {
        "content": {"text": text},
        "location": {"type": "S3", "s3Location": {"uri": uri}},
        "score": score,
        "metadata": metadata,
    }


def test_retrieve_bounds_count_and_relevance(stubs: Stubs) -> None:
    stubs["bedrock-agent-runtime"].add_response(
        "retrieve",
        {
            "retrievalResults": [
                result(
                    "s3://kb/runbooks/rb-db-throttling.md",
                    0.61234,
                    "Raise capacity. Call +1 415 555 0123.",
                    doc_type="runbook",
                    services="orders-db, orders-api",
                    title="DB throttling",
                ),
                result(
                    "s3://kb/pm/pm-2026-01.md",
                    0.8,
                    "Root cause was a bad deploy.",
                    doc_type="POSTMORTEM",
                ),
                result("s3://kb/misc/notes.md", 0.1, "unrelated"),
            ]
        },
        {
            "knowledgeBaseId": "KB12345678",
            "retrievalQuery": {"text": "orders throttling"},
            "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": 3}},
        },
    )
    settings = AwsSettings(knowledge=KnowledgeBase("KB12345678", min_score=0.3, max_results=3))
    source = make_source(stubs, settings)
    answer = source.retrieve_knowledge("orders throttling", limit=5)
    stubs.check()
    assert answer.status is ToolStatus.SUCCESS
    documents = answer.data["documents"]
    assert [(d["document_id"], d["score"], d["doc_type"]) for d in documents] == [
        ("pm-2026-01", 0.8, "POSTMORTEM"),
        ("rb-db-throttling", 0.6123, "RUNBOOK"),
    ]
    assert documents[1]["services"] == ["orders-db", "orders-api"]
    assert documents[1]["title"] == "DB throttling"
    assert "555 0123" not in documents[1]["excerpt"]


def test_knowledge_without_a_base_or_query(stubs: Stubs) -> None:
    unset = make_source(stubs).retrieve_knowledge("x")
    assert unset.error is not None and unset.error.code is ErrorCode.DATA_SOURCE_UNAVAILABLE
    configured = make_source(stubs, AwsSettings(knowledge=KnowledgeBase("KB12345678")))
    empty = configured.retrieve_knowledge("  ")
    assert empty.error is not None and empty.error.code is ErrorCode.INVALID_INPUT
    assert stubs.stubbers == {}
