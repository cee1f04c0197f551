"""Reading telemetry: data gaps, and truncated answers that lost nothing the reader uses."""

from __future__ import annotations

from typing import Any

from opx.agents.local.logs import MAX_MESSAGE, reads_whole
from opx.agents.local.telemetry import DataGaps
from opx.domain.tool_result import ToolResult, ToolStatus


def _answer(events: list[dict[str, Any]], *, truncated: bool) -> ToolResult:
    return ToolResult(
        status=ToolStatus.SUCCESS, data={"events": events}, source="test", truncated=truncated
    )


def _event(message: str) -> dict[str, Any]:
    return {"id": "e", "service": "a", "level": "INFO", "message": message}


def test_a_long_message_cut_beyond_what_is_read_is_no_gap() -> None:
    cut = _event("x" * (MAX_MESSAGE + 50) + "…")
    gaps = DataGaps()
    data = gaps.read("logs", lambda token: _answer([cut], truncated=True), reads_whole)
    assert data == {"events": [cut]}
    assert not gaps.partial and not gaps.truncated and gaps.notes == []


def test_a_message_cut_within_what_is_read_is_a_gap() -> None:
    cut = _event("x" * 20 + "…")
    gaps = DataGaps()
    gaps.read("logs", lambda token: _answer([cut], truncated=True), reads_whole)
    assert gaps.partial and gaps.truncated == {"logs"}


def test_without_a_check_any_truncation_is_a_gap() -> None:
    gaps = DataGaps()
    gaps.read("logs", lambda token: _answer([_event("short")], truncated=True))
    assert gaps.partial and gaps.notes == ["logs: the answer was partial or truncated"]


def test_reads_whole_looks_only_at_cut_messages() -> None:
    assert reads_whole({"events": [_event("short and whole")]})
    assert not reads_whole({"events": [_event("short…")]})
    assert reads_whole({})
