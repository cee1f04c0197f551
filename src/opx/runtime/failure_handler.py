"""Which failures the handler answers and which it raises.

Handled failures are answered with a structured response and never raise: a rejected event, the
kill switch, an agent that timed out or failed (its hypothesis says so), a tool that failed (the
agent's hypothesis is PARTIAL), model throttling (retried by the runner), a spent budget (a
signal only), a failed consensus (a FAILED result without a recommendation).

Infrastructure failures raise :class:`RetryLater`, so that Lambda's asynchronous invocation
retries the event and, once its retries are spent, hands it to the dead-letter destination: the
execution store or the checkpoints unreachable, the kill switch unreadable, the outcome not
publishable, and an execution stopped at the invocation's deadline (it is checkpointed and
recorded INCOMPLETE; the retry resumes it without re-running finished agents).
"""

from __future__ import annotations

import sqlite3

from botocore.exceptions import BotoCoreError, ClientError

from opx.config import ConfigError
from opx.delivery.publisher import DeliveryFailed
from opx.domain.errors import ErrorCode, ErrorInfo
from opx.domain.result import ExecutionResult, ExecutionStatus, Reason
from opx.durability.store import StoreUnavailable
from opx.runtime.killswitch import KillSwitchUnavailable

# Exceptions that mean "something OPX depends on is down or misconfigured", never "bad input".
INFRASTRUCTURE: tuple[type[BaseException], ...] = (
    StoreUnavailable,
    KillSwitchUnavailable,
    DeliveryFailed,
    ConfigError,
    sqlite3.Error,
    OSError,
    BotoCoreError,
    ClientError,
)


class RetryLater(Exception):
    """Raised out of the handler so that Lambda retries the event (then dead-letters it)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message


class DeadlineReached(RetryLater):
    """The invocation ran out of time; the execution is checkpointed and recorded INCOMPLETE."""


class InfrastructureFailure(RetryLater):
    """A dependency of OPX itself failed (store, checkpoints, kill switch, publishing)."""


def infrastructure(exc: BaseException) -> InfrastructureFailure:
    """The error to raise for an infrastructure exception."""
    code = (
        ErrorCode.INTERNAL_ERROR
        if isinstance(exc, ConfigError)
        else (ErrorCode.DATA_SOURCE_UNAVAILABLE)
    )
    return InfrastructureFailure(code, f"{type(exc).__name__}: {exc}")


def must_retry(result: ExecutionResult) -> RetryLater | None:
    """The error to raise for a result that Lambda should deliver again, if any."""
    if result.status is ExecutionStatus.INCOMPLETE:
        return DeadlineReached(
            ErrorCode.TIMEOUT,
            f"execution {result.execution_id} stopped at the invocation deadline; "
            "it is checkpointed and resumes on the next delivery",
        )
    return None


def error_of(result: ExecutionResult) -> ErrorInfo | None:
    """The response's ``error`` for a handled outcome (None when there is nothing wrong)."""
    if result.status is ExecutionStatus.FAILED:
        for entry in result.errors:
            found = entry.get("error") if isinstance(entry, dict) else None
            if isinstance(found, dict) and found.get("code") in ErrorCode.__members__:
                return ErrorInfo.of(ErrorCode(found["code"]), str(found.get("message", "")))
        return ErrorInfo.of(ErrorCode.INTERNAL_ERROR, "the execution failed")
    if result.reason is Reason.ALL_CORE_AGENTS_FAILED:
        return ErrorInfo.of(
            ErrorCode.INSUFFICIENT_DATA, "every core agent failed; no recommendation"
        )
    if result.status is ExecutionStatus.INCOMPLETE:
        return ErrorInfo.of(ErrorCode.TIMEOUT, "stopped at the invocation deadline")
    return None
