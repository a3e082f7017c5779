"""Cost of a model call in USD: the endpoint's own prices first, then the genai-prices package.

An unknown model has no cost (None, source "unknown"): a price is never invented. Token counts
follow genai-prices: `input_tokens` counts every input token, of which `cached_tokens` were cache
reads (billed at the cached rate)."""

from __future__ import annotations

import logging
from decimal import Decimal
from functools import lru_cache
from typing import Literal, Protocol

import genai_prices
from msgspec import Struct

log = logging.getLogger(__name__)


class Usage(Struct, frozen=True, kw_only=True):
    """Tokens of one model call, as the vendor counts them (what a price applies to)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0


PriceSource = Literal["endpoint", "genai-prices", "unknown"]

PROVIDER_IDS: dict[str, str | None] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure-openai": "azure",
    "bedrock": "aws",
    "openai-compatible": None,
}
"""Our provider names -> genai-prices provider ids; None: match by model name across providers.
Providers absent here (`mock`, `ollama`: local models) are priced by their endpoint only."""

_MILLION = Decimal(1_000_000)


class EndpointPricing(Protocol):
    """USD per million tokens, as `manifests.models.Pricing` declares them."""

    @property
    def input_per_million(self) -> float: ...

    @property
    def output_per_million(self) -> float: ...

    @property
    def cached_input_per_million(self) -> float | None: ...


class PricedCall(Struct, frozen=True, kw_only=True):
    cost_usd: float | None
    source: PriceSource


def endpoint_cost(usage: Usage, pricing: EndpointPricing) -> float:
    cached = min(usage.cached_tokens, usage.input_tokens)
    uncached = usage.input_tokens - cached
    cached_rate = pricing.cached_input_per_million
    if cached_rate is None:
        cached_rate = pricing.input_per_million
    total = (
        Decimal(uncached) * Decimal(str(pricing.input_per_million))
        + Decimal(cached) * Decimal(str(cached_rate))
        + Decimal(usage.output_tokens) * Decimal(str(pricing.output_per_million))
    ) / _MILLION
    return float(total)


@lru_cache(maxsize=4096)
def _package_price(
    provider_id: str | None, model: str, input_tokens: int, output_tokens: int, cached: int
) -> float | None:
    usage = genai_prices.Usage(
        input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cached
    )
    try:
        if provider_id is None:
            calculation = genai_prices.calc_price(usage, model)
        else:
            calculation = genai_prices.calc_price(usage, model, provider_id=provider_id)
    except LookupError:
        return None
    return float(calculation.total_price)


def price_call(
    provider: str, model: str, usage: Usage, pricing: EndpointPricing | None
) -> PricedCall:
    """The cost of one call, and where the price came from."""
    if pricing is not None:
        return PricedCall(cost_usd=endpoint_cost(usage, pricing), source="endpoint")
    if provider not in PROVIDER_IDS or not model:
        return PricedCall(cost_usd=None, source="unknown")
    cost = _package_price(
        PROVIDER_IDS[provider],
        model,
        usage.input_tokens,
        usage.output_tokens,
        min(usage.cached_tokens, usage.input_tokens),
    )
    if cost is None:
        log.debug("no price for %s model %s", provider, model)
        return PricedCall(cost_usd=None, source="unknown")
    return PricedCall(cost_usd=cost, source="genai-prices")


def estimate_cost_usd(
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    pricing: EndpointPricing | None,
) -> float | None:
    """The cost of a call of this size (no cache hits assumed), None when the model is unknown."""
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    return price_call(provider, model, usage, pricing).cost_usd
