"""Bedrock Agents errors mapped to OPX's canonical error codes, each with its retry decision.

The same exception arrives in two spellings: raised by ``InvokeAgent`` before the stream starts
(``ThrottlingException``) and as an event inside the stream (``throttlingException``). Both map
alike. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from botocore.eventstream import ParserError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeout

from opx.domain.errors import ErrorCode, OpxError

# Exception name (lower-cased, without "exception") → (code, retryable).
_BY_NAME: Mapping[str, tuple[ErrorCode, bool]] = {
    "throttling": (ErrorCode.BEDROCK_THROTTLING, True),
    # A quota (e.g. concurrent sessions) does not free up within an agent's deadline.
    "servicequotaexceeded": (ErrorCode.BEDROCK_QUOTA_EXCEEDED, False),
    # An action-group Lambda or knowledge base behind the agent failed; it may recover.
    "dependencyfailed": (ErrorCode.DATA_SOURCE_UNAVAILABLE, True),
    "badgateway": (ErrorCode.DATA_SOURCE_UNAVAILABLE, True),
    "modelnotready": (ErrorCode.BEDROCK_MODEL_ERROR, True),
    "accessdenied": (ErrorCode.ACCESS_DENIED, False),
    "validation": (ErrorCode.INVALID_INPUT, False),
    # A wrong agent or alias id: configuration, not chance.
    "resourcenotfound": (ErrorCode.INVALID_INPUT, False),
    # Two calls on one session at once; the next attempt uses a session of its own.
    "conflict": (ErrorCode.INTERNAL_ERROR, True),
    "internalserver": (ErrorCode.INTERNAL_ERROR, True),
}


def _key(name: str) -> str:
    lowered = name.strip().lower()
    return lowered.removesuffix("exception")


def from_name(name: str, message: str, *, status: int | None = None) -> OpxError:
    """The OPX error for an AWS exception ``name`` (either spelling) and its message."""
    known = _BY_NAME.get(_key(name))
    text = f"Bedrock {name}: {message}".rstrip(": ")
    if known is not None:
        code, retryable = known
        return OpxError(code, text, retryable=retryable)
    # Unknown names: a server-side status may pass on a retry, a client-side one will not.
    if status is not None and status >= 500:
        return OpxError(ErrorCode.INTERNAL_ERROR, text, retryable=True)
    return OpxError(ErrorCode.UNKNOWN_ERROR, text, retryable=False)


def from_client_error(exc: ClientError) -> OpxError:
    """A raised ``ClientError`` (including botocore's ``EventStreamError``) as an OPX error."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code, message = str(error.get("Code", "Unknown")), str(error.get("Message", ""))
    return from_name(code, message, status=status)


def from_botocore(exc: BotoCoreError) -> OpxError:
    """A transport-level failure (timeouts, no connection, no credentials) as an OPX error."""
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError):
        return OpxError(ErrorCode.TIMEOUT, f"Bedrock call timed out: {exc}", retryable=True)
    if isinstance(exc, EndpointConnectionError):
        return OpxError(ErrorCode.DATA_SOURCE_UNAVAILABLE, f"Bedrock unreachable: {exc}")
    if isinstance(exc, NoCredentialsError):
        return OpxError(ErrorCode.ACCESS_DENIED, "no AWS credentials for Bedrock", retryable=False)
    return OpxError(ErrorCode.UNKNOWN_ERROR, f"Bedrock call failed: {exc}", retryable=False)


# What can break a response stream after InvokeAgent returned: the socket read timing out, the
# connection dropping or being reset, or bytes that do not frame as event-stream messages.
STREAM_BREAKS = (Urllib3Error, ParserError, OSError)


def from_stream_break(exc: BaseException) -> OpxError:
    """A stream that stalled or broke mid-way. Both are transient on Bedrock's side (a stuck
    model call, a dropped connection), so the next attempt, in a fresh session, may succeed."""
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, Urllib3ReadTimeout | TimeoutError):
        return OpxError(ErrorCode.TIMEOUT, f"Bedrock stream stalled: {detail}", retryable=True)
    return OpxError(
        ErrorCode.DATA_SOURCE_UNAVAILABLE, f"Bedrock stream broke: {detail}", retryable=True
    )
