"""Prices per token kind: names with versions and prefixes, cached and reasoning tokens."""

from __future__ import annotations

import pytest

from podium.models import cost_usd
from podium.pricing import LONG_CONTEXT, PRICES, ModelPrice, as_price, cost_details, price_of


@pytest.mark.parametrize(
    ("model", "price"),
    [
        ("gpt-4o", ModelPrice(2.50, 10.00, 1.25)),
        ("gpt-4o-2024-08-06", ModelPrice(2.50, 10.00, 1.25)),
        ("gpt-4o-mini-2024-07-18", ModelPrice(0.15, 0.60, 0.075)),
        ("openai:gpt-4.1-mini", ModelPrice(0.40, 1.60, 0.10)),
        ("o4-mini-2025-04-16", ModelPrice(1.10, 4.40, 0.275)),
        ("claude-sonnet-4-5-20250929", ModelPrice(3.00, 15.00, 0.30, 3.75)),
        ("anthropic:claude-opus-4-1", ModelPrice(15.00, 75.00, 1.50, 18.75)),
        ("models/gemini-2.5-flash", ModelPrice(0.30, 2.50, 0.03)),
        ("claude-opus-4-5-20251101", ModelPrice(5.00, 25.00, 0.50, 6.25)),  # not opus-4's
        ("gpt-5-pro-2025-10-06", ModelPrice(15.00, 120.00)),  # not gpt-5's
        ("o3-pro", ModelPrice(20.00, 80.00)),
        ("my-own-model", None),
        ("gpt-4", None),  # not a version of gpt-4o or gpt-4.1
    ],
)
def test_price_of_matches_versions_and_prefixes(model, price):
    assert price_of(model) == price


def test_cached_reasoning_and_cache_writes_are_each_priced_once():
    usage = {
        "input_tokens": 10_000,
        "output_tokens": 2_000,
        "input_token_details": {"cache_read": 6_000, "cache_creation": 1_000},
        "output_token_details": {"reasoning": 500},
    }
    costs = cost_details("claude-sonnet-4-5", usage)
    assert costs == pytest.approx(
        {
            "input": 3_000 * 3.00e-6,
            "input_cache_read": 6_000 * 0.30e-6,
            "input_cache_creation": 1_000 * 3.75e-6,
            "output": 1_500 * 15.00e-6,
            "output_reasoning": 500 * 15.00e-6,
            "total": 0.009 + 0.0018 + 0.00375 + 0.0225 + 0.0075,
        }
    )


def test_a_policy_price_sets_each_kind():
    prices = {"local": as_price({"input": 1.0, "output": 2.0, "cached_input": 0.0, "reasoning": 4})}
    usage = {
        "input_tokens": 1_000_000,
        "output_tokens": 1_000_000,
        "input_token_details": {"cache_read": 500_000},
        "output_token_details": {"reasoning": 250_000},
    }
    costs = cost_details("local", usage, prices)
    assert costs == {"input": 0.5, "output": 1.5, "output_reasoning": 1.0, "total": 3.0}
    assert as_price([1, 2, 0.5]) == ModelPrice(1.0, 2.0, 0.5)


def test_unpriced_models_cost_nothing():
    assert cost_details("my-own-model", {"input_tokens": 10, "output_tokens": 5}) == {}
    assert cost_usd("my-own-model", 10, 5) == 0.0
    assert cost_usd("gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000) == 0.75


def test_long_prompts_are_priced_at_the_long_context_rates():
    # gpt-5.4: 2.50 / 15.00 / 0.25 per 1M up to 272k input tokens; 5.00 / 22.50 / 0.50 past.
    short = {"input_tokens": 272_000, "output_tokens": 1_000}
    long = {"input_tokens": 272_001, "output_tokens": 1_000}
    assert cost_details("gpt-5.4", short)["total"] == pytest.approx(
        (272_000 * 2.50 + 1_000 * 15.00) / 1e6
    )
    assert cost_details("gpt-5.4-2026-03-05", long)["total"] == pytest.approx(
        (272_001 * 5.00 + 1_000 * 22.50) / 1e6
    )
    cached = {**long, "input_token_details": {"cache_read": 200_000}}
    assert cost_details("gpt-5.4", cached)["input_cache_read"] == pytest.approx(200_000 * 0.5e-6)
    assert cost_usd("claude-sonnet-4-5", 250_000, 0) == pytest.approx(250_000 * 6.00e-6)
    # A policy's price for the model prices every call the same.
    policy = {**PRICES, "gpt-5.4": as_price([2.0, 10.0])}
    assert cost_details("gpt-5.4", long, policy)["input"] == pytest.approx(272_001 * 2.0e-6)


def test_every_long_context_rate_belongs_to_a_priced_model_and_costs_more():
    for name, long in LONG_CONTEXT.items():
        base = PRICES[name]
        assert long.above >= 100_000
        assert long.price.input > base.input and long.price.output >= base.output
