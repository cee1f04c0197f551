"""Turning what a tool gathered from AWS into bounded tool results: 10 KB pages behind opaque
tokens (the same packing as the local source), with the status and error of the gathering, and
room kept on every page for that error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from opx.domain.errors import ErrorCode
from opx.domain.tool_result import MAX_TOOL_RESULT_BYTES, ToolResult, ToolStatus
from opx.tools.aws.calls import Outcome
from opx.tools.paging import (
    Cursor,
    Entry,
    PageEntry,
    SplitEntry,
    decode_token,
    encode_token,
    json_size,
    pack,
    shrink_to_fit,
)
from opx.tools.records import JsonDict

# The largest cursor a token can hold, so that the envelope is measured with the longest token.
_BIG = 10**16 - 1


@dataclass(frozen=True)
class Answer:
    """Everything one query gathered, in final order, ready to be paged."""

    keys: tuple[str, ...]
    entries: tuple[PageEntry, ...]
    outcome: Outcome
    dropped: bool = False


def entry(key: str, item: JsonDict) -> Entry:
    return Entry(key, item)


def series_entry(key: str, item: JsonDict) -> SplitEntry:
    """A metric series that may be cut by points across pages."""
    return SplitEntry.of(Entry(key, item, splittable=True))


def envelope_budget(source: str, keys: Sequence[str], query: str, outcome: Outcome) -> int:
    """Bytes left for items once the envelope, the longest token and the error are counted."""
    envelope = ToolResult(
        status=outcome.status,
        data={k: [] for k in keys},
        truncated=False,
        source=source,
        next_token=encode_token(Cursor(_BIG, _BIG), query),
        error=outcome.error,
    )
    return MAX_TOOL_RESULT_BYTES - envelope.size_bytes()


def check_token(token: str | None, query: str) -> Cursor:
    """The cursor in ``token`` (the start for None); :class:`TokenError` if it is not ours."""
    return Cursor() if token is None else decode_token(token, query)


def answer_page(answer: Answer, *, source: str, query: str, cursor: Cursor) -> ToolResult:
    """The page of ``answer`` that starts at ``cursor``."""
    if answer.outcome.status is ToolStatus.FAILED:
        return _failed(source, answer.outcome)
    page = pack(
        count=len(answer.entries),
        render=answer.entries.__getitem__,
        cursor=cursor,
        budget=envelope_budget(source, answer.keys, query, answer.outcome),
        keys=answer.keys,
    )
    last = page.next is None
    return ToolResult(
        status=answer.outcome.status,
        data=dict(page.data),
        truncated=page.truncated or (last and answer.dropped),
        source=source,
        next_token=None if last else encode_token(page.next or Cursor(), query),
        error=answer.outcome.error,
    )


def bounded_list(
    key: str, items: Sequence[JsonDict], *, source: str, outcome: Outcome, dropped: bool = False
) -> ToolResult:
    """One page of ``items``; what does not fit is dropped and marked truncated."""
    if outcome.status is ToolStatus.FAILED:
        return _failed(source, outcome)
    page = pack(
        count=len(items),
        render=lambda i: Entry(key, items[i]),
        cursor=Cursor(),
        budget=envelope_budget(source, (key,), "0" * 16, outcome),
        keys=(key,),
    )
    return ToolResult(
        status=outcome.status,
        data=dict(page.data),
        truncated=dropped or page.truncated or page.next is not None,
        source=source,
        error=outcome.error,
    )


def bounded_object(data: JsonDict, *, source: str, outcome: Outcome) -> ToolResult:
    """``data`` as one result, its longest strings shortened if it is too large."""
    if outcome.status is ToolStatus.FAILED:
        return _failed(source, outcome)
    result = ToolResult(status=outcome.status, data=data, source=source, error=outcome.error)
    if result.size_bytes() <= MAX_TOOL_RESULT_BYTES:
        return result
    room = MAX_TOOL_RESULT_BYTES - (result.size_bytes() - json_size(data)) - 8
    shrunk = shrink_to_fit(data, room)
    if shrunk is None:
        return ToolResult.failed(source, ErrorCode.INTERNAL_ERROR, "answer too large")
    return result.model_copy(update={"data": shrunk, "truncated": True})


def _failed(source: str, outcome: Outcome) -> ToolResult:
    error = outcome.error
    if error is None:
        return ToolResult.failed(source, ErrorCode.INTERNAL_ERROR, "failed without an error")
    return ToolResult.failed(source, error.code, error.message)
