"""Text of a conversation and a stable token estimate, for models that report no usage
and for budget holds made before a call."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage


def approx_tokens(text: str) -> int:
    """A stable token estimate (4 characters a token) for models that report none."""
    return max(1, len(text) // 4)


def message_text(messages: Sequence[BaseMessage]) -> str:
    """The text of `messages`, one message a line."""
    return "\n".join(m.text if hasattr(m, "text") else str(m.content) for m in messages)
