"""The JSON log lines: one per event, with the correlation id, and the location of the code that
logged (not of the logging wrapper)."""

from __future__ import annotations

import inspect
import io
import json

from opx.observability import logs


def test_the_location_is_the_caller_and_the_fields_are_kept() -> None:
    stream = io.StringIO()
    logs.bind(stream, "exec-1")
    line = inspect.currentframe().f_lineno  # type: ignore[union-attr]
    logs.warning("stopped", code="X")
    logs.info("answered", status="COMPLETED")
    warned, told = (json.loads(x) for x in stream.getvalue().splitlines())
    name = test_the_location_is_the_caller_and_the_fields_are_kept.__name__
    assert warned["location"] == f"{name}:{line + 1}"
    assert told["location"] == f"{name}:{line + 2}"
    assert (warned["level"], warned["message"], warned["code"]) == ("WARNING", "stopped", "X")
    assert (told["level"], told["status"], told["correlation_id"]) == (
        "INFO",
        "COMPLETED",
        "exec-1",
    )
    logs.bind(io.StringIO())


def test_free_text_is_bounded() -> None:
    text = logs.safe_text("x" * 1000, limit=50)
    assert len(text) == 50 and text.endswith("…")
