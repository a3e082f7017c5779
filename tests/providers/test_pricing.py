"""Pricing with the real genai-prices data and endpoint overrides."""

from __future__ import annotations

import genai_prices
import pytest

from actors.providers import Usage
from manifests.models import Pricing
from podium.core.pricing import estimate_cost_usd, price_call


def test_gpt_4o_from_genai_prices() -> None:
    priced = price_call("openai", "gpt-4o", Usage(input_tokens=1000, output_tokens=500), None)
    assert priced.source == "genai-prices"
    # gpt-4o: $2.50 / M input, $10 / M output
    assert priced.cost_usd == pytest.approx(1000 * 2.5e-6 + 500 * 10e-6)


def test_cached_tokens_are_cheaper() -> None:
    plain = price_call("openai", "gpt-4o", Usage(input_tokens=1000, output_tokens=0), None)
    cached = price_call(
        "openai", "gpt-4o", Usage(input_tokens=1000, output_tokens=0, cached_tokens=800), None
    )
    assert plain.cost_usd is not None and cached.cost_usd is not None
    assert cached.cost_usd < plain.cost_usd


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"])
def test_claude_models_match_the_package(model: str) -> None:
    usage = Usage(input_tokens=2000, output_tokens=300, cached_tokens=500)
    priced = price_call("anthropic", model, usage, None)
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=2000, output_tokens=300, cache_read_tokens=500),
        model,
        provider_id="anthropic",
    ).total_price
    assert priced.source == "genai-prices"
    assert priced.cost_usd == pytest.approx(float(expected))
    assert priced.cost_usd is not None and priced.cost_usd > 0


def test_openai_compatible_matches_by_model_name() -> None:
    priced = price_call("openai-compatible", "gpt-4o", Usage(input_tokens=1000), None)
    assert priced.source == "genai-prices"
    assert priced.cost_usd == pytest.approx(1000 * 2.5e-6)


def test_unknown_model_and_mock_have_no_price() -> None:
    unknown = price_call("openai", "our-own-finetune-xyz", Usage(input_tokens=10), None)
    assert (unknown.cost_usd, unknown.source) == (None, "unknown")
    mock = price_call("mock", "mock-1", Usage(input_tokens=10), None)
    assert (mock.cost_usd, mock.source) == (None, "unknown")
    assert estimate_cost_usd("mock", "mock-1", 10, 10, None) is None


def test_endpoint_pricing_wins() -> None:
    pricing = Pricing(input_per_million=1.0, output_per_million=2.0, cached_input_per_million=0.5)
    usage = Usage(input_tokens=1_000_000, output_tokens=500_000, cached_tokens=400_000)
    priced = price_call("openai", "gpt-4o", usage, pricing)
    assert priced.source == "endpoint"
    assert priced.cost_usd == pytest.approx(0.6 + 0.2 + 1.0)
    no_cache_rate = Pricing(input_per_million=1.0, output_per_million=2.0)
    assert price_call("mock", "mock-1", usage, no_cache_rate).cost_usd == pytest.approx(2.0)


def test_estimate() -> None:
    assert estimate_cost_usd("openai", "gpt-4o", 1000, 1000, None) == pytest.approx(0.0125)
    pricing = Pricing(input_per_million=3.0, output_per_million=15.0)
    assert estimate_cost_usd("anthropic", "x", 1_000_000, 0, pricing) == pytest.approx(3.0)
