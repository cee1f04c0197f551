"""Reading one ``InvokeAgent`` response stream: the answer text, token usage, model id, guardrail
interventions, tool results the agent saw, and an exception that ended the stream.

Token usage is not in the response members; it is in the ``trace`` events, at
``<step>Trace.modelInvocationOutput.metadata.usage`` for each model call of the pre-processing,
orchestration, post-processing and routing steps. The model id is in the matching
``modelInvocationInput.foundationModel``. Only those usages are counted: guardrail and tool
metadata carry no model tokens of the agent. Each action-group result is kept with the name of
the tool that produced it (from the ``invocationInput`` of the same trace id).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from opx.agents.bedrock import errors
from opx.agents.bedrock.tool_failures import ToolCall
from opx.domain.errors import OpxError

MODEL_STEPS = (
    "preProcessingTrace",
    "orchestrationTrace",
    "postProcessingTrace",
    "routingClassifierTrace",
)
GUARDRAIL_INTERVENED = "INTERVENED"
_ASSESSMENT_KINDS = ("inputAssessments", "outputAssessments")

Event = Mapping[str, Any]


@dataclass
class StreamResult:
    """What one invocation produced, even when it ended early."""

    text: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    model: str | None = None
    guardrail: list[str] = field(default_factory=list)  # why it intervened; empty: it did not
    tool_outputs: list[str] = field(default_factory=list)  # every result text, for citations
    tool_calls: list[ToolCall] = field(default_factory=list)  # action-group results, by tool
    failures: list[str] = field(default_factory=list)  # failureTrace reasons
    return_control: bool = False
    error: OpxError | None = None

    @property
    def blocked(self) -> bool:
        return bool(self.guardrail)


def read_stream(events: Iterable[Event]) -> StreamResult:
    """Consume ``events`` (botocore's parsed event stream) into a :class:`StreamResult`.

    An exception raised while iterating (an in-stream exception event, a lost connection) ends
    the reading and is kept in ``error``, together with the usage seen so far."""
    result = StreamResult()
    body = bytearray()
    seen = _Seen()
    try:
        for event in events:
            _consume(event, result, body, seen)
    except ClientError as exc:
        result.error = errors.from_client_error(exc)
    except BotoCoreError as exc:
        result.error = errors.from_botocore(exc)
    except errors.STREAM_BREAKS as exc:
        result.error = errors.from_stream_break(exc)
    # Chunks may split a multi-byte character: decode once, at the end.
    result.text = body.decode("utf-8", errors="replace")
    return result


@dataclass
class _Seen:
    """What earlier trace events named, by trace id: the model of a model call (to price each
    usage with its own model) and the tool of an action-group call."""

    models: dict[str, str] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)


def _consume(event: Event, result: StreamResult, body: bytearray, seen: _Seen) -> None:
    if "chunk" in event:
        body.extend(_bytes(event["chunk"].get("bytes")))
    elif "trace" in event:
        _trace(event["trace"].get("trace") or {}, result, seen)
    elif "returnControl" in event:
        result.return_control = True


def _bytes(value: object) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return str(value or "").encode("utf-8")


def _trace(trace: Event, result: StreamResult, seen: _Seen) -> None:
    for step in MODEL_STEPS:
        if step in trace:
            _model_step(trace[step], result, seen.models)
            _invocation(trace[step].get("invocationInput"), seen.tools)
            _observation(trace[step].get("observation"), result, seen.tools)
    guardrail = trace.get("guardrailTrace")
    if guardrail and guardrail.get("action") == GUARDRAIL_INTERVENED:
        result.guardrail.extend(_guardrail_reasons(guardrail) or ["guardrail intervened"])
    failure = trace.get("failureTrace")
    if failure:
        result.failures.append(str(failure.get("failureReason") or "unspecified failure"))


def _model_step(step: Event, result: StreamResult, models: dict[str, str]) -> None:
    given = step.get("modelInvocationInput") or {}
    model = given.get("foundationModel")
    if model:
        models[str(given.get("traceId", ""))] = str(model)
        # The agent's orchestration model is the one its answer (and its price) comes from.
        result.model = result.model or str(model)
    output = step.get("modelInvocationOutput") or {}
    usage = (output.get("metadata") or {}).get("usage") or {}
    result.input_tokens += int(usage.get("inputTokens") or 0)
    result.output_tokens += int(usage.get("outputTokens") or 0)
    own = models.get(str(output.get("traceId", "")))
    if usage and own and result.model is None:
        result.model = own


def _invocation(invocation: Event | None, tools: dict[str, str]) -> None:
    action = (invocation or {}).get("actionGroupInvocationInput")
    if action:
        name = action.get("function") or str(action.get("apiPath") or "").lstrip("/")
        tools[str((invocation or {}).get("traceId", ""))] = str(name or "unnamed tool")


def _observation(observation: Event | None, result: StreamResult, tools: dict[str, str]) -> None:
    if not observation:
        return
    action = observation.get("actionGroupInvocationOutput")
    if action is not None:
        text = str(action.get("text") or "")
        # The call and its result share a trace id; without one, the result is the latest call's.
        latest = next(reversed(tools.values()), "unnamed tool")
        tool = tools.get(str(observation.get("traceId", "")), latest)
        result.tool_calls.append(ToolCall(tool, text))
        if text:
            result.tool_outputs.append(text)
    lookup = observation.get("knowledgeBaseLookupOutput") or {}
    for reference in lookup.get("retrievedReferences") or ():
        # As JSON, so the citation check reads its ids as whole values.
        result.tool_outputs.append(json.dumps(reference, default=str))


def _guardrail_reasons(guardrail: Event) -> list[str]:
    """Which policies fired, by name only: the assessed text is never copied."""
    reasons: list[str] = []
    for kind in _ASSESSMENT_KINDS:
        side = "input" if kind.startswith("input") else "output"
        for assessment in guardrail.get(kind) or ():
            reasons.extend(f"{name} ({side})" for name in _policy_names(assessment))
    return sorted(set(reasons))


def _policy_names(assessment: Event) -> Iterator[str]:
    for topic in (assessment.get("topicPolicy") or {}).get("topics") or ():
        yield f"topic {topic.get('name', '?')}"
    for item in (assessment.get("contentPolicy") or {}).get("filters") or ():
        yield f"content {item.get('type', '?')}"
    info = assessment.get("sensitiveInformationPolicy") or {}
    for item in info.get("piiEntities") or ():
        yield f"sensitive information {item.get('type', '?')}"
    for item in info.get("regexes") or ():
        yield f"sensitive information {item.get('name', '?')}"
    words = assessment.get("wordPolicy") or {}
    if words.get("customWords") or words.get("managedWordLists"):
        yield "word policy"
