"""Structured output: asking a provider for a reply that fits a schema, natively.

A model that implements `with_structured_output` itself (OpenAI, Anthropic, Ollama...)
is asked through it, with `include_raw=True` so that the raw reply, and with it the token
usage, still reaches the governor's accounting. A model that does not (the demo model,
scripted fakes) is called plainly and its text is parsed by the caller, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from pydantic import BaseModel

#: How the caller wants structured output: "auto" (native when the model supports it),
#: "text" (never native), or "native"/a provider method (always native).
StructuredMode = Literal["auto", "text", "native", "json_schema", "function_calling"]
MODES: tuple[str, ...] = ("auto", "text", "native", "json_schema", "function_calling")


@dataclass(frozen=True, slots=True)
class Structured:
    """A request for a reply fitting `schema` (a pydantic model), made as `mode` says."""

    schema: type[BaseModel]
    mode: StructuredMode = "auto"

    @property
    def method(self) -> str | None:
        """The provider method to ask for, or None for the provider's default."""
        return self.mode if self.mode in ("json_schema", "function_calling") else None


@dataclass(frozen=True, slots=True)
class StructuredReply:
    """What a native structured call returned: the raw message (usage, tool calls), the
    parsed value (an instance of the schema, or None) and the parse error, if any."""

    raw: AIMessage
    parsed: Any = None
    error: BaseException | None = None


def supports_native(model: Any) -> bool:
    """Whether a chat model implements structured output itself.

    `BaseChatModel`'s generic `with_structured_output` only binds a tool and hopes for a
    call: a model class that overrides it speaks its provider's own protocol (JSON schema,
    tool calling, or both).
    """
    if not isinstance(model, BaseChatModel):
        return False
    return type(model).with_structured_output is not BaseChatModel.with_structured_output


def uses_native(model: Any, request: Structured | None) -> bool:
    """Whether `request` is made natively on `model`."""
    if request is None or request.mode == "text":
        return False
    if request.mode == "auto":
        return supports_native(model)
    return isinstance(model, BaseChatModel)


def bind_structured(model: BaseChatModel, request: Structured) -> Any:
    """`model` asked for `request.schema`, with the raw reply kept."""
    kwargs: dict[str, Any] = {"include_raw": True}
    if request.method:
        kwargs["method"] = request.method
    return model.with_structured_output(request.schema, **kwargs)


def unwrap(result: Any) -> tuple[AIMessage | Any, StructuredReply | None]:
    """Split a call's result into its raw message and, for a structured call, the reply."""
    if isinstance(result, dict) and "raw" in result:
        raw = result["raw"]
        reply = StructuredReply(raw, result.get("parsed"), result.get("parsing_error"))
        return raw, reply
    return result, None
