"""Turning a model's completion into a ``Hypothesis``: find the JSON object (bare, fenced, or
surrounded by prose), drop what only OPX may fill in, and validate. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from opx.agents.bedrock.output_schema import MODEL_STATUSES, OPX_FILLED
from opx.domain.hypothesis import Hypothesis

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n(?P<body>.*?)```", re.DOTALL)
_MAX_PROBLEMS = 5


@dataclass(frozen=True)
class Parsed:
    """A valid hypothesis, or why there is none."""

    hypothesis: Hypothesis | None
    problem: str = ""


def parse_answer(text: str, agent_id: str, agent_version: str) -> Parsed:
    """The hypothesis in ``text``, stamped with ``agent_id`` and ``agent_version``."""
    candidate = extract_object(text)
    if candidate is None:
        return Parsed(None, "no JSON object found in the answer")
    # Whatever a model wrote into the fields OPX fills is dropped: OPX knows which agent and
    # prompt answered, records attempts and cost, and reports errors itself.
    data = {k: v for k, v in candidate.items() if k not in OPX_FILLED}
    data.update(agent_id=agent_id, agent_version=agent_version)
    try:
        hypothesis = Hypothesis.model_validate(data)
    except ValidationError as exc:
        return Parsed(None, _problems(exc))
    if hypothesis.status not in MODEL_STATUSES:
        allowed = " or ".join(s.value for s in MODEL_STATUSES)
        return Parsed(None, f"status must be {allowed}, not {hypothesis.status.value}")
    return Parsed(hypothesis)


def extract_object(text: str) -> dict[str, Any] | None:
    """The JSON object in ``text``: the whole text, else a fenced block, else the first object
    that decodes inside surrounding prose (preferring one that looks like a hypothesis)."""
    stripped = text.strip()
    for source in (stripped, *(m.group("body") for m in _FENCE.finditer(text))):
        found = _whole(source.strip())
        if found is not None:
            return found
    return _embedded(stripped)


def _whole(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _embedded(text: str) -> dict[str, Any] | None:
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    index = text.find("{")
    while index != -1:
        try:
            value, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            index = text.find("{", index + 1)
            continue
        if isinstance(value, dict):
            found.append(value)
            index = text.find("{", end)
        else:
            index = text.find("{", index + 1)
    for value in found:
        if "root_cause" in value or "evidence" in value or "agent_id" in value:
            return value
    return found[0] if found else None


def _problems(exc: ValidationError) -> str:
    items = [
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
        for err in exc.errors()[:_MAX_PROBLEMS]
    ]
    more = exc.error_count() - len(items)
    return "invalid hypothesis (" + "; ".join(items) + (f"; {more} more" if more > 0 else "") + ")"
