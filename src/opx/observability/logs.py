"""Structured JSON logs (aws-lambda-powertools Logger), one line per event, with the execution id
as the correlation id. In Lambda they go to stdout (CloudWatch Logs); on the command line to
stderr, beside the metrics, so that stdout carries only the command's output.

Only identifiers, statuses, codes and counts are logged: never a raw event, a prompt or tool
data. Free text that may carry input (a rejection message) passes through the redactor first.
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any

from aws_lambda_powertools import Logger

from opx.security.redaction import Redactor

SERVICE = "opx"
_handler = logging.StreamHandler(sys.stdout)
_logger = Logger(service=SERVICE, level="INFO", logger_handler=_handler)
_redactor = Redactor()


def bind(stream: IO[str], correlation_id: str | None = None) -> Logger:
    """The logger, writing to ``stream`` from now on, with ``correlation_id`` (or none)."""
    _handler.setStream(stream)
    _logger.set_correlation_id(correlation_id)
    return _logger


def safe_text(value: str, limit: int = 300) -> str:
    """Free text fit for a log line: redacted and bounded."""
    text = _redactor.text(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# The frame whose function and line the log line's "location" names: Powertools' own wrapper
# already counts as 2, so 3 skips ours too and points at whoever called info() or warning().
_CALLER = 3


def info(message: str, **fields: Any) -> None:
    _logger.info(message, extra=fields, stacklevel=_CALLER)


def warning(message: str, **fields: Any) -> None:
    _logger.warning(message, extra=fields, stacklevel=_CALLER)
