"""Model strings -> chat models, the offline demo model, and the price table."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from langchain_core.language_models import BaseChatModel

from podium.errors import ConfigurationError
from podium.pricing import PRICES as _PRICES
from podium.pricing import price_of

#: The offline, deterministic stand-in model. No network, no key.
DEMO = "demo"

#: USD per million tokens per token kind, by model (see `podium.pricing`).
PRICES = _PRICES

_PROVIDER_EXTRAS = {"openai": "openai", "anthropic": "anthropic", "ollama": "ollama"}


def resolve_model(
    model: str | BaseChatModel | None, default: str | BaseChatModel = DEMO
) -> BaseChatModel:
    """Turn a model string (or object, or None for `default`) into a chat model.

    Args:
        model: "demo", an `init_chat_model` string such as "openai:gpt-4o-mini", a chat
            model object (returned as is), or None.
        default: What None means.

    Raises:
        ConfigurationError: If the string names no usable provider or its package is missing.
    """
    if model is None:
        model = default
    if isinstance(model, BaseChatModel):
        return model
    if not isinstance(model, str) or not model.strip():
        raise ConfigurationError(
            f"model must be a model string such as 'demo' or 'openai:gpt-4o-mini', "
            f"or a chat model object; got {model!r}"
        )
    return _from_string(model.strip())


def resolve_models(
    model: str | BaseChatModel | Sequence[str | BaseChatModel] | None,
    default: str | BaseChatModel | Sequence[str | BaseChatModel] = DEMO,
) -> list[BaseChatModel]:
    """A model list (`[primary, secondary, ...]`) or a single model, as chat models."""
    if model is None:
        model = default
    if isinstance(model, (str, BaseChatModel)):
        return [resolve_model(model)]
    models = [resolve_model(m) for m in model]
    if not models:
        raise ConfigurationError("an empty model list; name at least one model")
    return models


#: Providers whose chat model retries on its own (`max_retries`), turned off by podium.
_SDK_RETRIES = frozenset({"openai", "azure_openai", "anthropic", "mistralai", "groq"})
#: Providers whose streamed replies carry usage only when asked (`stream_usage`):
#: langchain-openai leaves it off for any `OPENAI_BASE_URL`, so an OpenAI-compatible server
#: would stream unbilled, unbudgeted replies.
_STREAM_USAGE = frozenset({"openai", "azure_openai"})


def init_options(provider: str) -> dict[str, object]:
    """Keyword arguments podium gives `init_chat_model` for a provider."""
    options: dict[str, object] = {}
    if provider in _SDK_RETRIES:
        options["max_retries"] = 0
    if provider in _STREAM_USAGE:
        options["stream_usage"] = True
    return options


@lru_cache(maxsize=64)
def _from_string(name: str) -> BaseChatModel:
    if name == DEMO:
        from podium._demo import DemoChatModel

        return DemoChatModel()
    from langchain.chat_models import init_chat_model

    provider = name.split(":", 1)[0] if ":" in name else ""
    # podium's governor retries model calls (policy `retry`, honouring Retry-After): the
    # provider SDK must not retry each of those attempts again, or one call becomes up to
    # attempts x (max_retries + 1) requests.
    try:
        chat: BaseChatModel = init_chat_model(name, **init_options(provider))  # type: ignore[call-overload]  # options by provider
        return chat
    except ImportError as exc:
        extra = _PROVIDER_EXTRAS.get(provider)
        # podium installs from its checkout (README: "Use a real model"), not from an index,
        # where a package of the same name may be someone else's.
        hint = (
            f'pip install -e ".[{extra}]" in podium\'s checkout'
            if extra
            else "install the provider's package"
        )
        raise ConfigurationError(f"model {name!r} needs a provider package: {hint}") from exc
    except Exception as exc:
        reason = " ".join(str(exc).split())
        raise ConfigurationError(
            f"cannot create model {name!r}: {reason}. Use 'demo' for the offline model, or "
            "'provider:model' (e.g. 'openai:gpt-4o-mini') with the provider's key set"
        ) from exc


def model_label(model: BaseChatModel) -> str:
    """A short name for a model, used in usage records and prices."""
    for attr in ("model_name", "model", "model_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


def cost_usd(
    model: str, input_tokens: int, output_tokens: int, prices: dict[str, Any] | None = None
) -> float:
    """Cost of `input_tokens` and `output_tokens` at the model's input and output prices
    (0.0 for a model without a price); `podium.pricing.cost_details` prices a
    reply's cached and reasoning tokens too."""
    price = price_of(model, prices, input_tokens=input_tokens)
    if price is None:
        return 0.0
    return round((input_tokens * price.input + output_tokens * price.output) / 1_000_000, 8)
