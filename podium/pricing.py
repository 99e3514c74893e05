"""What a model call costs: the price table and the priced breakdown of one reply's usage.

Prices are USD per million tokens, per token kind. A reply's `usage_metadata` counts
cached prompt tokens inside `input_tokens` (`input_token_details.cache_read`, and
`cache_creation` for Anthropic's cache writes) and reasoning tokens inside
`output_tokens` (`output_token_details.reasoning`), so each kind is priced once: the
cached part at the cached price, the rest at the input price; reasoning at its own price
when one is set, else as output (which is how OpenAI, Anthropic and Google bill it).

Model names are matched exactly, then without a provider prefix ("openai:gpt-4o"), then
by the longest table entry that the name extends with a version ("gpt-4o-2024-08-06"
is priced as "gpt-4o", "gpt-4o-mini-2024-07-18" as "gpt-4o-mini"). A model that is no
entry's version has no price and costs 0.0: name it in a policy's `prices`. Under a USD
budget the governor refuses such a model's calls, since they would never count.

Some models cost more per token when the prompt is long (GPT-5.4 and later past 272k
input tokens, Claude Sonnet 4.5 and Gemini Pro past 200k): `LONG_CONTEXT` holds those
rates, applied to the whole call as the providers bill it.
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


#: List prices per million tokens (input, output, cached input, cache write) of OpenAI's,
#: Anthropic's and Google's own APIs, as of November 2026: taken from the price data of
#: the `genai-prices` package (0.2.3), which records each provider's published prices.
#: Providers change them: override any entry in a policy's `prices` section.
PRICES: dict[str, ModelPrice] = {
    "demo": ModelPrice(0.0, 0.0),
    "scripted": ModelPrice(0.0, 0.0),
    # OpenAI (cached input: automatic prompt caching; cache write: the GPT-5.6 and GPT-6
    # models bill cache writes)
    "gpt-4o": ModelPrice(2.50, 10.00, 1.25),
    "gpt-4o-mini": ModelPrice(0.15, 0.60, 0.075),
    "gpt-4.1": ModelPrice(2.00, 8.00, 0.50),
    "gpt-4.1-mini": ModelPrice(0.40, 1.60, 0.10),
    "gpt-4.1-nano": ModelPrice(0.10, 0.40, 0.025),
    "gpt-5": ModelPrice(1.25, 10.00, 0.125),
    "gpt-5-mini": ModelPrice(0.25, 2.00, 0.025),
    "gpt-5-nano": ModelPrice(0.05, 0.40, 0.005),
    "gpt-5-pro": ModelPrice(15.00, 120.00),
    "gpt-5.1": ModelPrice(1.25, 10.00, 0.125),
    "gpt-5.2": ModelPrice(1.75, 14.00, 0.175),
    "gpt-5.2-pro": ModelPrice(21.00, 168.00),
    "gpt-5.3": ModelPrice(1.75, 14.00, 0.175),
    "gpt-5.4": ModelPrice(2.50, 15.00, 0.25),
    "gpt-5.4-mini": ModelPrice(0.75, 4.50, 0.075),
    "gpt-5.4-nano": ModelPrice(0.20, 1.25, 0.02),
    "gpt-5.4-pro": ModelPrice(30.00, 180.00),
    "gpt-5.5": ModelPrice(5.00, 30.00, 0.50),
    "gpt-5.5-pro": ModelPrice(30.00, 180.00),
    "gpt-5.6-sol": ModelPrice(4.00, 20.00, 0.40, 5.00),
    "gpt-5.6-terra": ModelPrice(2.00, 12.00, 0.20, 2.50),
    "gpt-5.6-luna": ModelPrice(0.20, 1.20, 0.02, 0.25),
    "gpt-6-astra": ModelPrice(10.00, 50.00, 1.00, 12.50),
    "gpt-6-rosalind": ModelPrice(15.00, 75.00, 1.50, 18.75),
    "gpt-6-sol": ModelPrice(2.00, 10.00, 0.20, 2.50),
    "gpt-6-luna": ModelPrice(0.10, 0.50, 0.01, 0.125),
    "gpt-6.1-sol": ModelPrice(2.00, 10.00, 0.10, 2.50),
    "gpt-6.1-terra": ModelPrice(1.00, 5.00, 0.05, 1.25),
    "o3": ModelPrice(2.00, 8.00, 0.50),
    "o3-pro": ModelPrice(20.00, 80.00),
    "o3-mini": ModelPrice(1.10, 4.40, 0.55),
    "o4-mini": ModelPrice(1.10, 4.40, 0.275),
    # Anthropic (cached input: cache reads; cache write: 5-minute cache writes)
    "claude-opus-5-5": ModelPrice(4.00, 20.00, 0.20, 5.00),
    "claude-sonnet-5-5": ModelPrice(2.00, 10.00, 0.10, 2.50),
    "claude-haiku-5-5": ModelPrice(0.10, 0.50, 0.01, 0.125),
    "claude-opus-5": ModelPrice(5.00, 25.00, 0.50, 6.25),
    "claude-sonnet-5": ModelPrice(2.00, 10.00, 0.20, 2.50),
    "claude-fable-5-2": ModelPrice(8.00, 40.00, 0.20, 10.00),
    "claude-fable-5-1": ModelPrice(10.00, 50.00, 0.25, 12.50),
    "claude-fable-5": ModelPrice(10.00, 50.00, 1.00, 12.50),
    "claude-mythos-5-2": ModelPrice(8.00, 40.00, 0.20, 10.00),
    "claude-opus-4-8": ModelPrice(5.00, 25.00, 0.50, 6.25),
    "claude-opus-4-7": ModelPrice(5.00, 25.00, 0.50, 6.25),
    "claude-opus-4-6": ModelPrice(5.00, 25.00, 0.50, 6.25),
    "claude-opus-4-5": ModelPrice(5.00, 25.00, 0.50, 6.25),
    "claude-opus-4-1": ModelPrice(15.00, 75.00, 1.50, 18.75),
    "claude-opus-4-0": ModelPrice(15.00, 75.00, 1.50, 18.75),
    "claude-opus-4": ModelPrice(15.00, 75.00, 1.50, 18.75),
    "claude-sonnet-4-6": ModelPrice(3.00, 15.00, 0.30, 3.75),
    "claude-sonnet-4-5": ModelPrice(3.00, 15.00, 0.30, 3.75),
    "claude-sonnet-4-0": ModelPrice(3.00, 15.00, 0.30, 3.75),
    "claude-sonnet-4": ModelPrice(3.00, 15.00, 0.30, 3.75),
    "claude-haiku-4-5": ModelPrice(1.00, 5.00, 0.10, 1.25),
    "claude-3-7-sonnet": ModelPrice(3.00, 15.00, 0.30, 3.75),
    "claude-3-5-sonnet": ModelPrice(3.00, 15.00, 0.30, 3.75),
    "claude-3-5-haiku": ModelPrice(0.80, 4.00, 0.08, 1.00),
    "claude-3-5-haiku-latest": ModelPrice(0.80, 4.00, 0.08, 1.00),
    "claude-3-haiku": ModelPrice(0.25, 1.25, 0.03, 0.30),
    # Google (cached input: context caching; gemini-3.6/3.7/3.8-flash go to 1.50 input and
    # 7.50 output on 2027-01-01)
    "gemini-4-argon": ModelPrice(4.00, 20.00, 0.20),
    "gemini-3.1-pro-preview": ModelPrice(2.00, 12.00, 0.20),
    "gemini-3-pro-preview": ModelPrice(2.00, 12.00, 0.20),
    "gemini-3.8-flash": ModelPrice(0.75, 3.75, 0.075),
    "gemini-3.7-flash": ModelPrice(0.75, 3.75, 0.075),
    "gemini-3.6-flash": ModelPrice(0.75, 3.75, 0.075),
    "gemini-3.5-flash": ModelPrice(1.50, 9.00, 0.15),
    "gemini-3.5-flash-lite": ModelPrice(0.30, 2.50, 0.03),
    "gemini-3-flash-preview": ModelPrice(0.50, 3.00, 0.05),
    "gemini-3.1-flash-lite": ModelPrice(0.25, 1.50, 0.025),
    "gemini-2.5-pro": ModelPrice(1.25, 10.00, 0.125),
    "gemini-2.5-flash": ModelPrice(0.30, 2.50, 0.03),
    "gemini-2.5-flash-lite": ModelPrice(0.10, 0.40, 0.01),
    "gemini-2.5-flash-preview": ModelPrice(0.15, 0.60),
    "gemini-2.0-flash": ModelPrice(0.10, 0.40, 0.025),
    "gemini-2.0-flash-lite": ModelPrice(0.075, 0.30),
}


class LongContext(NamedTuple):
    """The prices of a call whose prompt is longer than `above` input tokens (cached ones
    included): providers bill the whole call at these rates."""

    above: int
    price: ModelPrice


#: Long-context rates of the models of `PRICES` that have them. A policy's price for a
#: model replaces its long-context rates too (it prices every call the same).
LONG_CONTEXT: dict[str, LongContext] = {
    "gpt-5.4": LongContext(272_000, ModelPrice(5.00, 22.50, 0.50)),
    "gpt-5.4-pro": LongContext(272_000, ModelPrice(60.00, 270.00)),
    "gpt-5.5": LongContext(272_000, ModelPrice(10.00, 45.00, 1.00)),
    "gpt-5.5-pro": LongContext(272_000, ModelPrice(60.00, 270.00)),
    "gpt-5.6-sol": LongContext(272_000, ModelPrice(8.00, 30.00, 0.80, 10.00)),
    "gpt-5.6-terra": LongContext(272_000, ModelPrice(4.00, 18.00, 0.40, 5.00)),
    "gpt-5.6-luna": LongContext(272_000, ModelPrice(0.40, 1.80, 0.04, 0.50)),
    "gpt-6-astra": LongContext(272_000, ModelPrice(20.00, 75.00, 2.00, 25.00)),
    "gpt-6-rosalind": LongContext(272_000, ModelPrice(30.00, 112.50, 3.00, 37.50)),
    "gpt-6-sol": LongContext(272_000, ModelPrice(4.00, 15.00, 0.40, 5.00)),
    "gpt-6-luna": LongContext(272_000, ModelPrice(0.20, 0.75, 0.02, 0.25)),
    "gpt-6.1-sol": LongContext(272_000, ModelPrice(4.00, 15.00, 0.20, 5.00)),
    "gpt-6.1-terra": LongContext(272_000, ModelPrice(2.00, 7.50, 0.10, 2.50)),
    "claude-haiku-5-5": LongContext(100_000, ModelPrice(0.50, 2.50, 0.05, 0.625)),
    "claude-sonnet-4-5": LongContext(200_000, ModelPrice(6.00, 22.50, 0.60, 7.50)),
    "gemini-3.1-pro-preview": LongContext(200_000, ModelPrice(4.00, 18.00, 0.40)),
    "gemini-3-pro-preview": LongContext(200_000, ModelPrice(4.00, 18.00, 0.40)),
    "gemini-2.5-pro": LongContext(200_000, ModelPrice(2.50, 15.00, 0.25)),
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


def price_of(
    model: str, prices: Mapping[str, Any] | None = None, *, input_tokens: int | None = None
) -> ModelPrice | None:
    """The price of `model` in `prices` (podium's table when None); None when unknown.
    With `input_tokens`, the long-context rates of podium's table when the prompt is
    longer than the model's threshold (`LONG_CONTEXT`) and no policy priced the model."""
    table = PRICES if prices is None else prices
    key = _entry(model, table)
    if key is None:
        return None
    long = LONG_CONTEXT.get(key)
    own = table[key] is PRICES.get(key)  # podium's own price, not a policy's
    if own and long is not None and input_tokens is not None and input_tokens > long.above:
        return long.price
    return as_price(table[key])


def _entry(model: str, table: Mapping[str, Any]) -> str | None:
    """The table entry pricing `model`: its name, or the longest name it extends."""
    for name in _names(model):
        if name in table:
            return name
    for name in _names(model):
        versioned = [key for key in table if name.startswith(f"{key}-")]
        if versioned:
            return max(versioned, key=len)
    return None


def cost_details(
    model: str, usage: Mapping[str, Any], prices: Mapping[str, Any] | None = None
) -> dict[str, float]:
    """The cost of one reply per token kind, keyed as Langfuse keys the usage it reads
    from the same reply (input, input_cache_read, input_cache_creation, output,
    output_reasoning) plus total; {} when the model has no price."""
    tokens_in = int(usage.get("input_tokens") or 0)
    price = price_of(model, prices, input_tokens=tokens_in)
    if price is None:
        return {}
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
