"""Pricing table: the packaged file, model id normalisation and malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opx.reasoning.pricing import ModelPrice, load_pricing, normalize_model_id, parse_pricing

PACKAGED = load_pricing()
# Published Bedrock on-demand prices (USD per 1K tokens, input, output) of the Claude models
# Bedrock Agents run, plus the two Nova models.
EXPECTED_PRICES = {
    "local-analyst": (0.0, 0.0),
    "anthropic.claude-3-haiku-20240307-v1:0": (0.00025, 0.00125),
    "anthropic.claude-3-sonnet-20240229-v1:0": (0.003, 0.015),
    "anthropic.claude-3-opus-20240229-v1:0": (0.015, 0.075),
    "anthropic.claude-3-5-haiku-20241022-v1:0": (0.0008, 0.004),
    "anthropic.claude-3-5-sonnet-20240620-v1:0": (0.003, 0.015),
    "anthropic.claude-3-5-sonnet-20241022-v2:0": (0.003, 0.015),
    "anthropic.claude-3-7-sonnet-20250219-v1:0": (0.003, 0.015),
    "anthropic.claude-sonnet-4-20250514-v1:0": (0.003, 0.015),
    "anthropic.claude-opus-4-20250514-v1:0": (0.015, 0.075),
    "anthropic.claude-opus-4-1-20250805-v1:0": (0.015, 0.075),
    "anthropic.claude-sonnet-4-5-20250929-v1:0": (0.003, 0.015),
    "anthropic.claude-haiku-4-5-20251001-v1:0": (0.001, 0.005),
    # Opus 4.5 is priced a third of Opus 4 / 4.1: 5 and 25 USD per million tokens.
    "anthropic.claude-opus-4-5-20251101-v1:0": (0.005, 0.025),
    "amazon.nova-pro-v1:0": (0.0008, 0.0032),
    "amazon.nova-lite-v1:0": (0.00006, 0.00024),
}
REGIONS = ("us", "eu", "apac", "us-gov", "global")
# Bedrock ids are "provider.model"; only those take region prefixes and ARNs.
bedrock_ids = st.sampled_from(sorted(m for m in EXPECTED_PRICES if "." in m))


def test_packaged_table_has_version_currency_and_every_listed_model() -> None:
    assert PACKAGED.version == "2026-11-26.2"
    assert PACKAGED.currency == "USD"
    prices = {m: (p.input_per_1k, p.output_per_1k) for m, p in PACKAGED.models.items()}
    assert prices == EXPECTED_PRICES


def test_explicit_path_loads_the_same_table(tmp_path: Path) -> None:
    copy = tmp_path / "pricing.json"
    copy.write_text(PACKAGED.model_dump_json(), encoding="utf-8")
    assert load_pricing(copy) == PACKAGED


@given(bedrock_ids, st.sampled_from(REGIONS))
def test_prefixed_and_arn_forms_resolve_to_the_bare_price(model: str, region: str) -> None:
    price = PACKAGED.price(model)
    assert price is not None
    forms = [
        f"{region}.{model}",
        f"arn:aws:bedrock:us-east-1::foundation-model/{model}",
        f"arn:aws:bedrock:eu-west-1:123456789012:inference-profile/{region}.{model}",
        f"  {model} ",
    ]
    for form in forms:
        assert normalize_model_id(form) == model
        assert PACKAGED.price(form) == price


@given(st.text(min_size=1, max_size=60))
def test_normalisation_is_idempotent(model: str) -> None:
    once = normalize_model_id(model)
    assert normalize_model_id(once) == once


@pytest.mark.parametrize(
    "model",
    [
        None,
        "",
        "anthropic.claude-9",
        "us.unknown.model-v1:0",
        "claude-3-haiku-20240307-v1:0",
        "arn:aws:bedrock:us-east-1:1:application-inference-profile/abc123",
    ],
)
def test_unknown_models_have_no_price(model: str | None) -> None:
    assert PACKAGED.price(model) is None


@pytest.mark.parametrize(
    ("region", "base"),
    [
        ("us", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("eu", "anthropic.claude-haiku-4-5-20251001-v1:0"),
        ("apac", "anthropic.claude-sonnet-4-20250514-v1:0"),
        ("global", "anthropic.claude-opus-4-1-20250805-v1:0"),
        ("global", "anthropic.claude-opus-4-5-20251101-v1:0"),
    ],
)
def test_inference_profiles_of_current_claude_models_are_priced(region: str, base: str) -> None:
    assert PACKAGED.price(f"{region}.{base}") == PACKAGED.models[base]


def test_a_provider_segment_is_not_mistaken_for_a_region() -> None:
    assert normalize_model_id("amazon.nova-pro-v1:0") == "amazon.nova-pro-v1:0"
    assert normalize_model_id("us.amazon.nova-pro-v1:0") == "amazon.nova-pro-v1:0"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"currency": "USD", "models": {}}), "version"),
        (
            json.dumps({"version": "v", "models": {"m": {"input_per_1k": -1, "output_per_1k": 0}}}),
            "models.m.input_per_1k",
        ),
        (
            json.dumps(
                {"version": "v", "models": {"m": {"input_per_1k": "x", "output_per_1k": 0}}}
            ),
            "models.m.input_per_1k",
        ),
        (
            json.dumps({"version": "v", "models": {"m": {"input_per_1K": 1, "output_per_1k": 0}}}),
            "models.m",
        ),
        (json.dumps({"version": "v"}), "models"),
        (json.dumps(["version"]), "malformed pricing table"),
    ],
)
def test_malformed_file_raises_a_clear_value_error(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as info:
        load_pricing(path)
    assert str(path) in str(info.value)


def test_parse_accepts_integer_prices() -> None:
    table = parse_pricing(
        json.dumps({"version": "v", "models": {"m": {"input_per_1k": 1, "output_per_1k": 2}}})
    )
    assert table.price("m") == ModelPrice(input_per_1k=1.0, output_per_1k=2.0)
    assert table.currency == "USD"
