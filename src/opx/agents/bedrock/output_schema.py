"""The output schema every agent prompt states, generated from the ``Hypothesis`` model.

The JSON Schema pydantic derives is too long for a Bedrock agent instruction (4,000 characters in
all), so it is rendered in a compact notation: one line per top-level field, ``?`` after an
optional field, ``A|B`` for enums, ``[X]`` for lists, ``lo..hi`` for number bounds.

This module is the one statement of what a model may write: fields OPX fills in itself are left
out (the parser drops them from an answer), and ``status`` offers only the statuses the parser
accepts from a model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from opx.domain.hypothesis import Hypothesis, HypothesisStatus

# Filled in by OPX, never by a model: which agent and prompt version answered, the attempts and
# their cost, errors, and the disclaimer every hypothesis carries.
OPX_FILLED = ("agent_id", "agent_version", "attempts", "cost", "error", "disclaimer")
# A model states an opinion or a partial one; the other statuses are OPX's to give.
MODEL_STATUSES = (HypothesisStatus.SUCCESS, HypothesisStatus.PARTIAL)
# Fields whose shape for a model is narrower than the model class allows.
_NARROWED = {"status": "|".join(json.dumps(s.value) for s in MODEL_STATUSES)}

Schema = Mapping[str, Any]


def output_schema_text() -> str:
    """The compact schema of a model's answer, one top-level field per line."""
    schema = Hypothesis.model_json_schema()
    defs: Schema = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    lines = ["{"]
    for name, prop in schema["properties"].items():
        if name in OPX_FILLED:
            continue
        mark = "" if name in required else "?"
        shape = _NARROWED.get(name) or _shape(prop, defs)
        lines.append(f'  "{name}"{mark}: {shape},')
    lines[-1] = lines[-1].rstrip(",")
    lines.append("}")
    return "\n".join(lines)


def _shape(prop: Schema, defs: Schema) -> str:
    if "$ref" in prop:
        return _shape(defs[str(prop["$ref"]).rsplit("/", 1)[-1]], defs)
    if "anyOf" in prop:
        return " | ".join(_shape(option, defs) for option in prop["anyOf"])
    if "enum" in prop:
        return "|".join(json.dumps(value) for value in prop["enum"])
    kind = prop.get("type")
    if kind == "object":
        return _object(prop, defs)
    if kind == "array":
        return f"[{_shape(prop.get('items', {}), defs)}]"
    if kind in ("number", "integer"):
        return _number(str(kind), prop)
    if kind == "string":
        return _string(prop)
    return str(kind or "any")


def _object(prop: Schema, defs: Schema) -> str:
    properties: Schema = prop.get("properties", {})
    if not properties:
        return "object"
    required = set(prop.get("required", ()))
    fields = (
        f'"{name}"{"" if name in required else "?"}: {_shape(sub, defs)}'
        for name, sub in properties.items()
    )
    return "{" + ", ".join(fields) + "}"


def _number(kind: str, prop: Schema) -> str:
    low, high = prop.get("minimum"), prop.get("maximum")
    if low is None and high is None:
        return kind
    return f"{kind} {_bound(low)}..{_bound(high)}"


def _bound(value: object) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _string(prop: Schema) -> str:
    low, high = prop.get("minLength"), prop.get("maxLength")
    if high is not None:
        return f"string(<={high})"
    if low:
        return "string(non-empty)"
    return "string"
