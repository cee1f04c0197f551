"""The deadline guard and fail-soft request bookkeeping."""

from __future__ import annotations

import threading
import time

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)

from opx.domain.errors import ErrorCode
from opx.domain.tool_result import ToolStatus
from opx.security.readonly import WriteRefused
from opx.security.redaction import Redactor
from opx.tools.aws.calls import Gatherer, aws_error_code
from opx.tools.aws.deadline import Budget, DeadlineExceeded, Deadlines, run_within
from tests.tools.aws.conftest import FakeClock


def test_run_within_returns_raises_and_gives_up() -> None:
    assert run_within(lambda: 7, 1.0) == 7
    with pytest.raises(KeyError):
        run_within(lambda: {}["x"], 1.0)
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        run_within(lambda: release.wait(5), 0.05)
    assert time.monotonic() - started < 1.0
    release.set()
    with pytest.raises(DeadlineExceeded):
        run_within(lambda: 1, 0.0)


def test_budget_gives_each_request_what_is_left() -> None:
    clock = FakeClock()
    budget = Budget(3.0, 2.0, clock)
    assert budget.request_timeout() == 2.0
    clock.sleep(2.5)
    assert budget.request_timeout() == pytest.approx(0.5)
    clock.sleep(1.0)
    assert budget.expired and budget.request_timeout() == 0.0
    with pytest.raises(ValueError, match="between"):
        Deadlines(request_s=0)


def error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Op",
    )


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (error("Throttling"), ErrorCode.RATE_LIMIT_EXCEEDED),
        (error("SomethingNew", 429), ErrorCode.RATE_LIMIT_EXCEEDED),
        (error("ProvisionedThroughputExceededException"), ErrorCode.RATE_LIMIT_EXCEEDED),
        (error("AccessDeniedException", 403), ErrorCode.ACCESS_DENIED),
        (error("ValidationException"), ErrorCode.INVALID_INPUT),
        (error("ResourceNotFoundException"), ErrorCode.DATA_SOURCE_UNAVAILABLE),
        (error("RequestTimeout", 408), ErrorCode.TIMEOUT),
        (ReadTimeoutError(endpoint_url="x"), ErrorCode.TIMEOUT),
        (ConnectTimeoutError(endpoint_url="x"), ErrorCode.TIMEOUT),
        (EndpointConnectionError(endpoint_url="x"), ErrorCode.DATA_SOURCE_UNAVAILABLE),
        (ParamValidationError(report="bad"), ErrorCode.INVALID_INPUT),
        (WriteRefused("no"), ErrorCode.WRITE_REFUSED),
        (DeadlineExceeded("late"), ErrorCode.TIMEOUT),
        (RuntimeError("bug"), ErrorCode.INTERNAL_ERROR),
    ],
)
def test_error_codes(exc: BaseException, code: ErrorCode) -> None:
    assert aws_error_code(exc) is code


def test_gatherer_outcomes() -> None:
    clock = FakeClock()
    redactor = Redactor(b"k")
    ok = Gatherer(Budget(5, 2, clock), redactor)
    assert ok.call(lambda: 1, "A") == 1
    assert ok.outcome().status is ToolStatus.SUCCESS

    partial = Gatherer(Budget(5, 2, clock), redactor)
    partial.call(lambda: 1, "A")
    partial.call(lambda: (_ for _ in ()).throw(error("Throttling")), "B for a@b.com")
    outcome = partial.outcome()
    assert outcome.status is ToolStatus.PARTIAL
    assert outcome.error is not None and outcome.error.code is ErrorCode.RATE_LIMIT_EXCEEDED
    assert "a@b.com" not in outcome.error.message

    absent = Gatherer(Budget(5, 2, clock), redactor)
    assert (
        absent.call(
            lambda: (_ for _ in ()).throw(error("ResourceNotFoundException")),
            "C",
            absent=("ResourceNotFoundException",),
        )
        is None
    )
    assert absent.outcome().status is ToolStatus.SUCCESS

    late = Gatherer(Budget(1, 2, clock), redactor)
    clock.sleep(2)
    assert late.call(lambda: 1, "D") is None
    assert late.outcome().status is ToolStatus.FAILED
    assert late.outcome().error is not None
    assert late.outcome().error.code is ErrorCode.TIMEOUT  # type: ignore[union-attr]
