"""Prices per token kind: names with versions and prefixes, cached and reasoning tokens."""

from __future__ import annotations

import pytest

from podium.models import cost_usd
from podium.pricing import ModelPrice, as_price, cost_details, price_of


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
        ("models/gemini-2.5-flash", ModelPrice(0.30, 2.50, 0.075)),
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
