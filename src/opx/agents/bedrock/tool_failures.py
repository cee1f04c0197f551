"""Tool failures inside a Bedrock agent's run. OPX's action-group adapter answers every call with
a tool result whose ``status`` is SUCCESS, PARTIAL or FAILED; anything but SUCCESS (or a result
that is not such a JSON object at all) means the agent reasoned on less data than it asked for.
Pure: no I/O.

As OPX's local analysts do when a data source cannot be read, such a hypothesis is marked PARTIAL
and each tool that failed costs ``TOOL_FAILURE_PENALTY`` (0.15, the local analysts' per-source
gap penalty) of its confidence: one failed tool leaves 85 %, two 70 %, and so on down to 0. A
PARTIAL result counts like a failed one: an agent reads one bounded page of a result and may not
ask for the rest, so what the result left out is data the agent did not see.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from opx.agents.local.telemetry import GAP_PENALTY
from opx.domain.hypothesis import Hypothesis, HypothesisStatus
from opx.domain.tool_result import ToolStatus

# The same share of confidence the local analysts give up per data source they could not read.
TOOL_FAILURE_PENALTY = GAP_PENALTY
CONFIDENCE_DECIMALS = 4
UNREADABLE = "UNREADABLE"


@dataclass(frozen=True)
class ToolCall:
    """One action-group result an agent received: the tool's name and the result text."""

    tool: str
    text: str


@dataclass(frozen=True)
class ToolFailure:
    """A tool whose result was not a success: its status and error code, if it gave one."""

    tool: str
    status: str
    code: str | None = None


def tool_failures(calls: Iterable[ToolCall]) -> list[ToolFailure]:
    """The first failure of each tool that failed at least once, in call order."""
    failed: dict[str, ToolFailure] = {}
    for call in calls:
        failure = _failure(call)
        if failure is not None and failure.tool not in failed:
            failed[failure.tool] = failure
    return list(failed.values())


def degraded(hypothesis: Hypothesis, failures: list[ToolFailure]) -> Hypothesis:
    """``hypothesis`` unchanged without failures; else PARTIAL with its confidence lowered and
    the failed tools listed in ``findings["tool_failures"]``."""
    if not failures:
        return hypothesis
    share = max(0.0, 1.0 - TOOL_FAILURE_PENALTY * len(failures))
    confidence = round(hypothesis.confidence * share, CONFIDENCE_DECIMALS)
    findings = {
        **hypothesis.findings,
        "tool_failures": [
            {"tool": f.tool, "status": f.status, "error_code": f.code} for f in failures
        ],
        "confidence_before_tool_failures": hypothesis.confidence,
    }
    status = (
        HypothesisStatus.PARTIAL
        if hypothesis.status is HypothesisStatus.SUCCESS
        else hypothesis.status
    )
    return hypothesis.model_copy(
        update={"confidence": confidence, "status": status, "findings": findings}
    )


def _failure(call: ToolCall) -> ToolFailure | None:
    try:
        result = json.loads(call.text)
    except json.JSONDecodeError:
        return ToolFailure(call.tool, UNREADABLE)
    if not isinstance(result, dict):
        return ToolFailure(call.tool, UNREADABLE)
    status = str(result.get("status") or UNREADABLE).upper()
    if status == ToolStatus.SUCCESS:
        return None
    error = result.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return ToolFailure(call.tool, status, None if code is None else str(code))
