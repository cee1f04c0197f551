"""The canonical error codes, each with whether a retry can help."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class ErrorCode(StrEnum):
    INVALID_INPUT = "INVALID_INPUT"
    MISSING_REQUIRED_FIELD = "MISSING_REQUIRED_FIELD"
    SCHEMA_VALIDATION_FAILED = "SCHEMA_VALIDATION_FAILED"
    TIMEOUT = "TIMEOUT"
    BUDGET_EXCEEDED = "BUDGET_EXCEEDED"
    RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"
    BEDROCK_THROTTLING = "BEDROCK_THROTTLING"
    BEDROCK_MODEL_ERROR = "BEDROCK_MODEL_ERROR"
    BEDROCK_QUOTA_EXCEEDED = "BEDROCK_QUOTA_EXCEEDED"
    DATA_SOURCE_UNAVAILABLE = "DATA_SOURCE_UNAVAILABLE"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
    LOW_CONFIDENCE = "LOW_CONFIDENCE"
    HALLUCINATION_DETECTED = "HALLUCINATION_DETECTED"
    OUTPUT_VALIDATION_FAILED = "OUTPUT_VALIDATION_FAILED"
    ACCESS_DENIED = "ACCESS_DENIED"
    WRITE_REFUSED = "WRITE_REFUSED"
    GUARDRAIL_INTERVENTION = "GUARDRAIL_INTERVENTION"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    UNKNOWN_ERROR = "UNKNOWN_ERROR"

    @property
    def retryable(self) -> bool:
        """True when the same call may succeed if tried again shortly."""
        return self in _RETRYABLE


# Transient conditions only: a retry cannot fix bad input, a refused write or a spent budget.
_RETRYABLE = frozenset(
    {
        ErrorCode.TIMEOUT,
        ErrorCode.RATE_LIMIT_EXCEEDED,
        ErrorCode.BEDROCK_THROTTLING,
        ErrorCode.BEDROCK_MODEL_ERROR,
        ErrorCode.DATA_SOURCE_UNAVAILABLE,
        ErrorCode.INTERNAL_ERROR,
    }
)


class ErrorInfo(BaseModel):
    """A structured error: a canonical code, a human message and whether a retry may help."""

    model_config = ConfigDict(frozen=True)

    code: ErrorCode
    message: str
    retryable: bool = False

    @classmethod
    def of(cls, code: ErrorCode, message: str) -> ErrorInfo:
        return cls(code=code, message=message, retryable=code.retryable)


class OpxError(Exception):
    """An error that carries a canonical code; raised inside OPX and mapped at the edges."""

    def __init__(self, code: ErrorCode, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = code.retryable if retryable is None else retryable

    @property
    def info(self) -> ErrorInfo:
        return ErrorInfo(code=self.code, message=self.message, retryable=self.retryable)


class InputRejected(OpxError):
    """The caller's input cannot be analysed; nothing was written."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.INVALID_INPUT) -> None:
        super().__init__(code, message)
