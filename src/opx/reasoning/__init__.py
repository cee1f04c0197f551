"""Pure reasoning over agent hypotheses: consensus, token pricing and execution cost."""

from opx.reasoning.consensus import build_consensus
from opx.reasoning.cost import attempt_cost, compute_cost
from opx.reasoning.pricing import (
    ModelPrice,
    PricingTable,
    load_pricing,
    normalize_model_id,
    parse_pricing,
)

__all__ = [
    "ModelPrice",
    "PricingTable",
    "attempt_cost",
    "build_consensus",
    "compute_cost",
    "load_pricing",
    "normalize_model_id",
    "parse_pricing",
]
