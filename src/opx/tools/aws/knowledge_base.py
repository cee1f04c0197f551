"""Knowledge from a Bedrock Knowledge Base: a semantic ``Retrieve`` whose results are bounded in
count and relevance, each mapped to a document excerpt (redacted)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from opx.security.redaction import Redactor
from opx.tools.aws.calls import Gatherer, as_dict
from opx.tools.records import DocType, JsonDict
from opx.tools.text_search import excerpt

EXCERPT_CHARS = 400
MAX_QUERY_CHARS = 1000
DEFAULT_DOC_TYPE = DocType.RUNBOOK
_SOURCE_KEYS = ("x-amz-bedrock-kb-source-uri",)


def retrieve(
    client: Any,
    gatherer: Gatherer,
    knowledge_base_id: str,
    query: str,
    *,
    count: int,
    min_score: float,
    redactor: Redactor,
) -> list[JsonDict]:
    """Up to ``count`` documents scoring at least ``min_score``, best first (ties by document
    id, then section)."""
    answer = gatherer.call(
        lambda: client.retrieve(
            knowledgeBaseId=knowledge_base_id,
            retrievalQuery={"text": query[:MAX_QUERY_CHARS]},
            retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": count}},
        ),
        "Retrieve",
    )
    results = (answer or {}).get("retrievalResults", [])
    found = [_document(r, query, redactor) for r in results if isinstance(r, dict)]
    kept = [d for d in found if d["score"] >= min_score]
    kept.sort(key=lambda d: (-d["score"], d["document_id"], d["section"]))
    return kept[:count]


def _document(result: JsonDict, query: str, redactor: Redactor) -> JsonDict:
    metadata = as_dict(result.get("metadata"))
    text = str((result.get("content") or {}).get("text", ""))
    document_id = _document_id(result, metadata)
    return {
        "document_id": document_id,
        "title": str(metadata.get("title") or document_id),
        "doc_type": _doc_type(metadata.get("doc_type") or metadata.get("type")),
        "services": _services(metadata.get("services")),
        "excerpt": redactor.text(excerpt(text, query, EXCERPT_CHARS)),
        "section": str(metadata.get("section") or ""),
        "score": round(float(result.get("score") or 0.0), 4),
    }


def _document_id(result: JsonDict, metadata: JsonDict) -> str:
    for key in ("document_id", "id"):
        if isinstance(metadata.get(key), str) and metadata[key]:
            return str(metadata[key])
    uri = next((metadata[k] for k in _SOURCE_KEYS if isinstance(metadata.get(k), str)), None)
    location = result.get("location") or {}
    for value in location.values() if isinstance(location, dict) else ():
        if uri is None and isinstance(value, dict):
            uri = value.get("uri") or value.get("url")
    # The file name without its extension is the id, as for local knowledge documents.
    return PurePosixPath(str(uri)).stem if uri else "unknown"


def _doc_type(value: object) -> str:
    text = str(value or "").strip().upper()
    return text if text in DocType.__members__ else DEFAULT_DOC_TYPE.value


def _services(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if str(v).strip()]
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    return []
