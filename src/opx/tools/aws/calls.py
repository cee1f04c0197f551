"""Fail-soft AWS requests: each request runs under the tool's deadline, its failure is mapped to a
canonical error code, and a tool's outcome is SUCCESS, PARTIAL (something was read) or FAILED
(nothing could be read) — never an exception."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ReadTimeoutError,
)

from opx.domain.errors import ErrorCode, OpxError
from opx.domain.tool_result import ToolError, ToolStatus
from opx.security.redaction import Redactor
from opx.tools.aws.deadline import Budget, DeadlineExceeded, run_within

T = TypeVar("T")
MAX_ERROR_CHARS = 400

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "SlowDown",
        "BandwidthLimitExceeded",
    }
)
ACCESS_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "NotAuthorized",
    }
)
INPUT_CODES = frozenset(
    {
        "ValidationException",
        "InvalidParameterException",
        "InvalidParameterValueException",
        "InvalidParameterCombinationException",
        "InvalidRequestException",
        "MalformedQueryException",
        "InvalidNextTokenException",
        "InvalidLookupAttributesException",
        "InvalidTimeRangeException",
    }
)


def aws_error_code(exc: BaseException) -> ErrorCode:
    """The canonical code for an exception raised by an AWS request."""
    if isinstance(exc, DeadlineExceeded | ReadTimeoutError | ConnectTimeoutError):
        return ErrorCode.TIMEOUT
    if isinstance(exc, OpxError):
        return exc.code
    if isinstance(exc, ClientError):
        return _client_error_code(exc)
    if isinstance(exc, NoCredentialsError):
        return ErrorCode.ACCESS_DENIED
    if isinstance(exc, ParamValidationError | NoRegionError):
        return ErrorCode.INVALID_INPUT
    if isinstance(exc, EndpointConnectionError | BotoCoreError | OSError):
        return ErrorCode.DATA_SOURCE_UNAVAILABLE
    return ErrorCode.INTERNAL_ERROR


def _client_error_code(exc: ClientError) -> ErrorCode:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in THROTTLING_CODES or status == 429:
        return ErrorCode.RATE_LIMIT_EXCEEDED
    if code in ACCESS_CODES or status == 403:
        return ErrorCode.ACCESS_DENIED
    if code in INPUT_CODES:
        return ErrorCode.INVALID_INPUT
    if code == "RequestTimeout" or status == 504:
        return ErrorCode.TIMEOUT
    return ErrorCode.DATA_SOURCE_UNAVAILABLE


@dataclass(frozen=True)
class Outcome:
    """How a tool call went: its status and, unless SUCCESS, the first error."""

    status: ToolStatus = ToolStatus.SUCCESS
    error: ToolError | None = None


@dataclass
class Gatherer:
    """The requests of one tool call. Each request is given what is left of the budget (at most
    the per-request limit); a failed request is recorded and returns None, so the tool keeps
    what it has. Once the budget is spent, no further request is sent."""

    budget: Budget
    redactor: Redactor
    succeeded: int = 0
    errors: list[tuple[ErrorCode, str]] = field(default_factory=list)
    # More data existed than the bounds allowed to read.
    dropped: bool = False

    @property
    def stopped(self) -> bool:
        return self.budget.expired

    def call(
        self, request: Callable[[], T], what: str, *, absent: Collection[str] = ()
    ) -> T | None:
        """``request()``'s answer, or None when it failed (recorded) or when the resource is
        ``absent`` (one of those AWS error codes): a read that found nothing, not a failure."""
        if self.budget.expired:
            self.fail(ErrorCode.TIMEOUT, f"{what}: deadline of {self.budget.total_s:g} s passed")
            return None
        try:
            value = run_within(request, self.budget.request_timeout())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in absent:
                self.succeeded += 1
            else:
                self.fail(aws_error_code(exc), f"{what}: {_describe(exc)}")
            return None
        except Exception as exc:  # every failure becomes an error code
            self.fail(aws_error_code(exc), f"{what}: {_describe(exc)}")
            return None
        self.succeeded += 1
        return value

    def quiet(self, request: Callable[[], T]) -> T | None:
        """``request()``'s answer within the deadline, or None: for optional reads whose
        failure does not make the tool's answer partial."""
        if self.budget.expired:
            return None
        try:
            return run_within(request, self.budget.request_timeout())
        except Exception:  # an optional read may fail in any way
            return None

    def fail(self, code: ErrorCode, message: str) -> None:
        self.errors.append((code, self.redactor.text(message)))

    def outcome(self) -> Outcome:
        if not self.errors:
            return Outcome()
        code = self.errors[0][0]
        messages = list(dict.fromkeys(m for _, m in self.errors))
        text = "; ".join(messages)
        if len(text) > MAX_ERROR_CHARS:
            text = text[: MAX_ERROR_CHARS - 1] + "…"
        status = ToolStatus.PARTIAL if self.succeeded else ToolStatus.FAILED
        return Outcome(status, ToolError(code=code, message=text))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


def as_dict(value: object) -> dict[str, Any]:
    """``value`` when an AWS answer holds an object there, else an empty one."""
    return value if isinstance(value, dict) else {}
