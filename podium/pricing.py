"""What a model call costs: the price table and the priced breakdown of one reply's usage.

Prices are USD per million tokens, per token kind. A reply's `usage_metadata` counts
cached prompt tokens inside `input_tokens` (`input_token_details.cache_read`, and
`cache_creation` for Anthropic's cache writes) and reasoning tokens inside
`output_tokens` (`output_token_details.reasoning`), so each kind is priced once: the
cached part at the cached price, the rest at the input price; reasoning at its own price
when one is set, else as output (which is how OpenAI, Anthropic and Google bill it).

Model names are matched exactly, then without a provider prefix ("openai:gpt-4o"), then
by the longest table entry that the name extends with a version ("gpt-4o-2024-08-06"
is priced as "gpt-4o", "gpt-4o-mini-2024-07-18" as "gpt-4o-mini").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class ModelPrice(NamedTuple):
    """USD per million tokens of each kind; None means "as input" (cache kinds) or "as
    output" (reasoning)."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    reasoning: float | None = None


#: Public list prices per million tokens (input, output, cached input, cache write), as
#: published by OpenAI, Anthropic and Google, taken in October 2025. Providers change
#: them: override any entry in a policy's `prices` section.
PRICES: dict[str, ModelPrice] = {
    "demo": ModelPrice(0.0, 0.0),
    "scripted": ModelPrice(0.0, 0.0),
    # OpenAI (cached input: automatic prompt caching)
    "gpt-4o": ModelPrice(2.50, 10.00, 1.25),
    "gpt-4o-mini": ModelPrice(0.15, 0.60, 0.075),
    "gpt-4.1": ModelPrice(2.00, 8.00, 0.50),
    "gpt-4.1-mini": ModelPrice(0.40, 1.60, 0.10),
    "gpt-4.1-nano": ModelPrice(0.10, 0.40, 0.025),
    "gpt-5": ModelPrice(1.25, 10.00, 0.125),
    "gpt-5-mini": ModelPrice(0.25, 2.00, 0.025),
    "gpt-5-nano": ModelPrice(0.05, 0.40, 0.005),
    "o3": ModelPrice(2.00, 8.00, 0.50),
    "o3-mini": ModelPrice(1.10, 4.40, 0.55),
    "o4-mini": ModelPrice(1.10, 4.40, 0.275),
    # Anthropic (cached input: cache reads; cache write: 5-minute cache writes)
    "claude-opus-4-1": ModelPrice(15.00, 75.00, 1.50, 18.75),
    "claude-opus-4-0": ModelPrice(15.00, 75.00, 1.50, 18.75),
    "claude-opus-4": ModelPrice(15.00, 75.00, 1.50, 18.75),
    "claude-sonnet-4-5": ModelPrice(3.00, 15.00, 0.30, 3.75),
    "claude-sonnet-4-0": ModelPrice(3.00, 15.00, 0.30, 3.75),
    "claude-sonnet-4": ModelPrice(3.00, 15.00, 0.30, 3.75),
    "claude-haiku-4-5": ModelPrice(1.00, 5.00, 0.10, 1.25),
    "claude-3-7-sonnet": ModelPrice(3.00, 15.00, 0.30, 3.75),
    "claude-3-5-haiku": ModelPrice(0.80, 4.00, 0.08, 1.00),
    "claude-3-5-haiku-latest": ModelPrice(0.80, 4.00, 0.08, 1.00),
    # Google (prompts up to 200k tokens; cached input: context caching)
    "gemini-2.5-pro": ModelPrice(1.25, 10.00, 0.31),
    "gemini-2.5-flash": ModelPrice(0.30, 2.50, 0.075),
    "gemini-2.5-flash-lite": ModelPrice(0.10, 0.40, 0.025),
    "gemini-2.0-flash": ModelPrice(0.10, 0.40, 0.025),
    "gemini-2.0-flash-lite": ModelPrice(0.075, 0.30),
}


def as_price(value: Any) -> ModelPrice:
    """A price from a policy entry: `[input, output]` (optionally followed by cached input,
    cache write, reasoning) or a mapping with those names."""
    if isinstance(value, ModelPrice):
        return value
    if hasattr(value, "model_dump"):  # a policy's PriceSpec
        value = value.model_dump()
    if isinstance(value, Mapping):
        fields = {k: (None if v is None else float(v)) for k, v in value.items()}
        return ModelPrice(**fields)  # type: ignore[arg-type]  # input/output are required
    return ModelPrice(*(None if v is None else float(v) for v in value))  # type: ignore[arg-type]


def price_of(model: str, prices: Mapping[str, Any] | None = None) -> ModelPrice | None:
    """The price of `model` in `prices` (podium's table when None); None when unknown."""
    table = PRICES if prices is None else prices
    for name in _names(model):
        if name in table:
            return as_price(table[name])
    for name in _names(model):
        versioned = [key for key in table if name.startswith(f"{key}-")]
        if versioned:
            return as_price(table[max(versioned, key=len)])
    return None


def cost_details(
    model: str, usage: Mapping[str, Any], prices: Mapping[str, Any] | None = None
) -> dict[str, float]:
    """The cost of one reply per token kind, keyed as Langfuse keys the usage it reads
    from the same reply (input, input_cache_read, input_cache_creation, output,
    output_reasoning) plus total; {} when the model has no price."""
    price = price_of(model, prices)
    if price is None:
        return {}
    tokens_in = int(usage.get("input_tokens") or 0)
    tokens_out = int(usage.get("output_tokens") or 0)
    details_in = usage.get("input_token_details") or {}
    details_out = usage.get("output_token_details") or {}
    cached = int(details_in.get("cache_read") or 0)
    written = int(details_in.get("cache_creation") or 0)
    reasoning = int(details_out.get("reasoning") or 0)
    per = 1_000_000
    costs = {
        "input": max(tokens_in - cached - written, 0) * price.input / per,
        "input_cache_read": cached * _or(price.cached_input, price.input) / per,
        "input_cache_creation": written * _or(price.cache_write, price.input) / per,
        "output": max(tokens_out - reasoning, 0) * price.output / per,
        "output_reasoning": reasoning * _or(price.reasoning, price.output) / per,
    }
    costs = {kind: round(usd, 10) for kind, usd in costs.items() if usd}
    costs["total"] = round(sum(costs.values()), 8)
    return costs


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _names(model: str) -> list[str]:
    """The names to look `model` up by: as given, without a provider prefix or a path."""
    names = [model]
    bare = model.split(":", 1)[1] if ":" in model else model
    bare = bare.rsplit("/", 1)[-1]  # "models/gemini-2.5-flash", "openai/gpt-4o"
    if bare != model:
        names.append(bare)
    return names
