"""Packing into bounded pages, opaque tokens and reassembly with collect."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opx.domain.errors import ErrorCode
from opx.domain.tool_result import MAX_TOOL_RESULT_BYTES, ToolError, ToolResult, ToolStatus
from opx.tools.paging import (
    Cursor,
    Entry,
    TokenError,
    collect,
    decode_token,
    encode_token,
    json_size,
    pack,
    paged_result,
    shrink_to_fit,
)

QUERY = "0123456789abcdef"


def _series(index: int, points: int) -> dict[str, Any]:
    return {
        "id": f"s{index}",
        "timestamps": [f"t{i}" for i in range(points)],
        "values": [i * 0.25 for i in range(points)],
    }


def _call(items: list[Entry], keys: tuple[str, ...]) -> Any:
    def call(token: str | None) -> ToolResult:
        return paged_result(
            source="src",
            keys=keys,
            count=len(items),
            render=items.__getitem__,
            next_token=token,
            query=QUERY,
        )

    return call


def test_token_round_trip() -> None:
    token = encode_token(Cursor(3, 17), QUERY)
    assert decode_token(token, QUERY) == Cursor(3, 17)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!",
        "bm90IGEgdG9rZW4=",
        base64.urlsafe_b64encode(b"p1:-1:0:0123456789abcdef").decode(),
        base64.urlsafe_b64encode(b"p1:01:0:0123456789abcdef").decode(),
    ],
)
def test_malformed_tokens_are_rejected(token: str) -> None:
    with pytest.raises(TokenError, match="malformed"):
        decode_token(token, QUERY)


def test_token_of_another_query_is_rejected() -> None:
    with pytest.raises(TokenError, match="different query"):
        decode_token(encode_token(Cursor(1, 0), "f" * 16), QUERY)


def test_token_past_the_end_is_rejected() -> None:
    items = [Entry("items", {"n": i}) for i in range(3)]
    with pytest.raises(TokenError, match="past the end"):
        _call(items, ("items",))(encode_token(Cursor(3, 0), QUERY))
    with pytest.raises(TokenError, match="past the end"):
        _call(items, ("items",))(encode_token(Cursor(1, 1), QUERY))


def test_everything_fits_on_one_page() -> None:
    items = [Entry("items", {"n": i}) for i in range(5)]
    result = _call(items, ("items",))(None)
    assert result.next_token is None and not result.truncated
    assert result.data == {"items": [{"n": i} for i in range(5)]}


def test_empty_answer_still_has_every_key() -> None:
    result = _call([], ("nodes", "edges"))(None)
    assert result.data == {"nodes": [], "edges": []}


def test_a_series_too_big_for_the_page_is_split_by_points() -> None:
    items = [Entry("series", _series(0, 3000), splittable=True)]
    first = _call(items, ("series",))(None)
    piece = first.data["series"][0]
    assert first.size_bytes() <= MAX_TOOL_RESULT_BYTES
    assert first.size_bytes() > MAX_TOOL_RESULT_BYTES - 100  # the page is filled
    assert 0 < len(piece["timestamps"]) == len(piece["values"]) < 3000
    assert first.next_token is not None
    whole = collect(_call(items, ("series",)))
    assert whole.data == {"series": [_series(0, 3000)]}
    assert whole.pages > 1 and not whole.truncated


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=900), max_size=12),
    st.lists(st.text(max_size=3000), max_size=30),
)
def test_collect_reassembles_exactly(points: list[int], texts: list[str]) -> None:
    entries = [Entry("series", _series(i, n), splittable=True) for i, n in enumerate(points)]
    entries += [Entry("notes", {"id": f"n{i}", "text": t}) for i, t in enumerate(texts)]
    call = _call(entries, ("series", "notes"))
    token: str | None = None
    while True:
        page = call(token)
        assert page.size_bytes() <= MAX_TOOL_RESULT_BYTES
        token = page.next_token
        if token is None:
            break
    whole = collect(call, max_pages=10_000)
    assert whole.status is ToolStatus.SUCCESS and not whole.truncated
    assert whole.data["series"] == [_series(i, n) for i, n in enumerate(points)]
    assert whole.data["notes"] == [{"id": f"n{i}", "text": t} for i, t in enumerate(texts)]


def test_an_item_larger_than_a_page_is_shortened_and_marked() -> None:
    items = [Entry("events", {"id": "big", "message": "é" * 20_000}), Entry("events", {"id": "b"})]
    first = _call(items, ("events",))(None)
    assert first.truncated
    assert first.size_bytes() <= MAX_TOOL_RESULT_BYTES
    assert first.data["events"][0]["id"] == "big"
    assert first.data["events"][0]["message"].endswith("…")
    whole = collect(_call(items, ("events",)))
    assert whole.truncated and [e["id"] for e in whole.data["events"]] == ["big", "b"]


def test_shrink_gives_up_when_strings_cannot_shrink_enough() -> None:
    assert shrink_to_fit({"a": "x" * 100}, 10) is None
    shrunk = shrink_to_fit({"a": "x" * 1000, "b": ["y" * 500]}, 300)
    assert shrunk is not None and json_size(shrunk) <= 300


def test_pack_respects_a_small_budget() -> None:
    items = [Entry("items", {"n": i}) for i in range(10)]
    page = pack(count=10, render=items.__getitem__, cursor=Cursor(), budget=30, keys=("items",))
    assert page.next is not None
    assert json_size(page.data["items"]) <= 30 + 2


def test_collect_stops_at_max_pages_and_reports_truncation() -> None:
    items = [Entry("series", _series(0, 5000), splittable=True)]
    whole = collect(_call(items, ("series",)), max_pages=2)
    assert whole.pages == 2 and whole.truncated
    assert len(whole.data["series"]) == 1


def test_collect_reports_the_worst_status_and_the_errors() -> None:
    pages = {
        None: ToolResult(status=ToolStatus.SUCCESS, source="s", data={"x": [1]}, next_token="a"),
        "a": ToolResult.failed("s", ErrorCode.DATA_SOURCE_UNAVAILABLE, "gone"),
    }
    whole = collect(pages.__getitem__)
    assert whole.status is ToolStatus.FAILED
    assert whole.errors == (ToolError(code=ErrorCode.DATA_SOURCE_UNAVAILABLE, message="gone"),)
    assert whole.truncated and whole.data == {"x": [1]}


def test_collect_keeps_non_list_fields_and_does_not_merge_different_ids() -> None:
    pages = {
        None: ToolResult(
            status=ToolStatus.SUCCESS,
            source="s",
            next_token="a",
            data={"found": True, "series": [_series(0, 2)]},
        ),
        "a": ToolResult(
            status=ToolStatus.PARTIAL, source="s", data={"found": False, "series": [_series(1, 1)]}
        ),
    }
    whole = collect(pages.__getitem__)
    assert whole.status is ToolStatus.PARTIAL
    assert whole.data == {"found": True, "series": [_series(0, 2), _series(1, 1)]}
