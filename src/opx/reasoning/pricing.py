"""Load the per-model token price table and look models up by any id form Bedrock uses."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Cross-region inference profiles put a geography in front of the bare model id.
_REGION_PREFIXES = frozenset({"us", "us-gov", "eu", "apac", "jp", "au", "ca", "global"})
# ARN resource types whose last path segment is (a region-prefixed) model id.
_ARN_MODEL_RESOURCES = ("foundation-model/", "inference-profile/")


class ModelPrice(BaseModel):
    """USD per 1,000 input and output tokens of one model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_1k: float = Field(ge=0.0, allow_inf_nan=False)
    output_per_1k: float = Field(ge=0.0, allow_inf_nan=False)


class PricingTable(BaseModel):
    """A versioned price list; ``price`` accepts bare ids, region-prefixed ids and ARNs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1)
    currency: str = Field(default="USD", min_length=1)
    models: dict[str, ModelPrice]

    def price(self, model: str | None) -> ModelPrice | None:
        """The price of ``model``, or None when the table does not know it."""
        if model is None:
            return None
        exact = self.models.get(model)
        if exact is not None:
            return exact
        return self.models.get(normalize_model_id(model))


def normalize_model_id(model: str) -> str:
    """The bare model id: ARN resource path and cross-region prefix removed."""
    current = model
    # Each step only shortens the id, so this reaches a fixed point (and is idempotent).
    while (shorter := _strip_once(current)) != current:
        current = shorter
    return current


def _strip_once(model: str) -> str:
    bare = model.strip()
    if bare != model:
        return bare
    if bare.startswith("arn:") and any(resource in bare for resource in _ARN_MODEL_RESOURCES):
        return bare.rsplit("/", 1)[1]
    prefix, dot, rest = bare.partition(".")
    if dot and prefix.lower() in _REGION_PREFIXES and "." in rest:
        return rest
    return bare


def load_pricing(path: Path | None = None) -> PricingTable:
    """Read a pricing file (the packaged one when ``path`` is None); ValueError if malformed."""
    if path is None:
        source = resources.files("opx") / "data" / "pricing.json"
        text, origin = source.read_text(encoding="utf-8"), "packaged pricing.json"
    else:
        text, origin = path.read_text(encoding="utf-8"), str(path)
    return parse_pricing(text, origin=origin)


def parse_pricing(text: str, *, origin: str = "pricing") -> PricingTable:
    """Validate pricing JSON text; ``origin`` names the source in error messages."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{origin}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    try:
        return PricingTable.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ValueError(f"{origin}: malformed pricing table ({problems})") from exc
