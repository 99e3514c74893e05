"""A prompt longer than the model's context window, recognised in the provider's refusal.

Providers refuse such a request with a client error (HTTP 400) in words of their own:
OpenAI's code `context_length_exceeded` ("This model's maximum context length is 128000
tokens. However, your messages resulted in ..."), Anthropic's "prompt is too long:
210000 tokens > 200000 maximum", Google's "input token count ... exceeds the maximum
number of tokens allowed", and OpenAI-compatible servers (vLLM, llama.cpp, gateways)
theirs. langchain-core names the condition `ContextOverflowError`, which newer provider
packages raise. The governor turns the refusal into `ContextWindowExceeded`, which says
so, names the model and its window (from the model's profile, when it has one) and what
to do; like any other 4xx it is not retried and no other model of the list takes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from podium.errors import ContextWindowExceeded
from podium.governance.recovery import status_code

#: Phrases of the providers' refusals (matched case-insensitively in the error's text).
MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "prompt is too long",
    "exceeds the context window",
    "context window exceeded",
    "contextwindowexceedederror",
    "input tokens exceed the configured limit",
    "exceeds the maximum number of tokens allowed",
    "exceeds the available context size",
)
#: Statuses a context-window refusal comes with (none: an error raised by the client).
_STATUSES = frozenset({400, 413, 422})


def is_overflow(exc: BaseException) -> bool:
    """Whether `exc` is a provider's refusal of a prompt longer than the context window."""
    if isinstance(exc, ContextWindowExceeded):
        return False  # already explained
    if any(cls.__name__ == "ContextOverflowError" for cls in type(exc).__mro__):
        return True
    status = status_code(exc)
    if status is not None and status not in _STATUSES:
        return False
    text = f"{exc} {provider_message(exc)}".lower()
    return any(marker in text for marker in MARKERS)


def explained(exc: Exception, *, model: Any, label: str, agent: str) -> Exception:
    """`ContextWindowExceeded` for a context-window refusal, else `exc` unchanged."""
    if not is_overflow(exc):
        return exc
    return ContextWindowExceeded(label, agent, window=window_of(model), detail=_short(exc))


def window_of(model: Any) -> int | None:
    """The model's context window in tokens, from its LangChain profile (`max_input_tokens`)."""
    try:
        profile = getattr(model, "profile", None)
    except Exception:  # a profile that cannot be computed says nothing about the window
        return None
    value = profile.get("max_input_tokens") if isinstance(profile, Mapping) else None
    return value if isinstance(value, int) and value > 0 else None


def provider_message(exc: BaseException) -> str:
    """The provider's own message in an SDK error's body (OpenAI: `{"message": ...}`,
    Anthropic: `{"error": {"message": ...}}`), or "" when there is none."""
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        body = body["error"]
    message = body.get("message") if isinstance(body, Mapping) else None
    return message if isinstance(message, str) else ""


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join((provider_message(exc) or str(exc)).split()).rstrip(".")
    return text if len(text) <= limit else text[: limit - 3] + "..."
