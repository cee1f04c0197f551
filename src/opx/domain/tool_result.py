"""The envelope every telemetry tool returns: bounded, ordered, and honest about gaps."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from opx.domain.errors import ErrorCode

MAX_TOOL_RESULT_BYTES = 10 * 1024


class ToolStatus(StrEnum):
    SUCCESS = "SUCCESS"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"


class ToolError(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: ErrorCode
    message: str


class ToolResult(BaseModel):
    """One tool call's answer. ``data`` is at most 10 KB serialised; ``truncated`` says if cut."""

    model_config = ConfigDict(frozen=True)

    status: ToolStatus
    data: dict[str, Any] = Field(default_factory=dict)
    truncated: bool = False
    source: str
    next_token: str | None = None
    error: ToolError | None = None

    @classmethod
    def failed(cls, source: str, code: ErrorCode, message: str) -> ToolResult:
        return cls(
            status=ToolStatus.FAILED, source=source, error=ToolError(code=code, message=message)
        )

    def size_bytes(self) -> int:
        return len(json.dumps(self.model_dump(mode="json"), separators=(",", ":")).encode("utf-8"))
