"""Usage and cost of a model reply, priced from the caller's policy over podium's table."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage

import podium.policies as P
from podium.governance.scope import Scope
from podium.pricing import cost_details
from podium.state import Usage


def priced_usage(message: AIMessage, model: str, scope: Scope | None) -> Usage:
    """Usage of a reply, priced with the caller's policy price table over podium's own;
    the run state and the ledger use this one function, so their costs agree."""
    policies = scope.policies if scope is not None else None
    prices = P.price_table(policies) if policies is not None else None
    return usage_of(message, model, prices)


def usage_of(message: AIMessage, model: str, prices: dict[str, Any] | None = None) -> Usage:
    """Usage and cost of one model reply (zeros when the provider reports nothing)."""
    meta: dict[str, Any] = dict(message.usage_metadata or {})
    tokens_in, tokens_out = meta.get("input_tokens", 0), meta.get("output_tokens", 0)
    # Cached prompt tokens and reasoning tokens are priced at their own rates.
    return Usage(
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        total_tokens=meta.get("total_tokens", tokens_in + tokens_out),
        calls=1,
        cost_usd=cost_details(model, meta, prices).get("total", 0.0),
    )


def model_name_of(message: AIMessage, fallback: str) -> str:
    meta = message.response_metadata or {}
    return str(meta.get("model_name") or meta.get("model") or fallback)
