"""Scripted fake chat models for testing workflows without a model provider.

A `ScriptedChatModel` answers from a list, in order, and fails loudly when it is
called more often than scripted (`ScriptExhausted`) or when a test ends with
responses left over (`assert_consumed`).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import PrivateAttr

from podium.streaming import reply_chunks
from podium.tokens import approx_tokens, message_text  # re-exported for tests
from podium.words import count

Reply = AIMessage | str | Exception | Callable[[list[BaseMessage]], "AIMessage | str"]


class ScriptExhausted(AssertionError):
    """A scripted model was called more often than it was scripted for."""


def tool_call(name: str, args: dict[str, Any] | None = None, *, id: str | None = None) -> AIMessage:
    """An AI message that calls one tool."""
    return tool_calls((name, args or {}, id))


def tool_calls(
    *calls: tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], str | None],
) -> AIMessage:
    """An AI message that calls several tools at once (the model asks for them in parallel)."""
    made = []
    for call in calls:
        name, args = call[0], call[1]
        call_id = call[2] if len(call) > 2 and call[2] else f"call_{uuid.uuid4().hex[:10]}"
        made.append({"name": name, "args": args, "id": call_id, "type": "tool_call"})
    return AIMessage(content="", tool_calls=made)


class ScriptedChatModel(BaseChatModel):
    """A chat model that replays a script.

    Each reply is an `AIMessage`, a string (a plain answer), an exception (raised), or a
    callable that receives the messages and returns one of those.

    Attributes:
        responses: The script.
        name: Shown in errors, so a failing test says which agent's model ran out.
        latency: Seconds each call takes (simulated; `asyncio.sleep` in async runs).
    """

    responses: list[Any]
    name: str = "scripted"
    latency: float = 0.0
    model_name: str = "scripted"
    #: The most output tokens a reply may have (as a provider's `max_tokens`); replies are
    #: cut to this or to a call's `max_tokens`, whichever is lower.
    max_tokens: int | None = None
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "podium-scripted"

    @property
    def calls(self) -> list[list[BaseMessage]]:
        """The messages each call received, in call order."""
        return list(self._calls)

    @property
    def remaining(self) -> int:
        return len(self.responses) - len(self._calls)

    def assert_consumed(self) -> None:
        """Raise if scripted responses were left unused."""
        if self.remaining > 0:
            raise AssertionError(
                f"scripted model {self.name!r} was called {count(len(self._calls), 'time')} but "
                f"{count(len(self.responses), 'response')} scripted ({self.remaining} unused)"
            )

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, Any]:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _next(self, messages: list[BaseMessage]) -> AIMessage:
        with self._lock:
            index = len(self._calls)
            if index >= len(self.responses):
                raise ScriptExhausted(
                    f"scripted model {self.name!r} called {count(index + 1, 'time')} but "
                    f"scripted for {len(self.responses)}; "
                    f"last input: {message_text(messages[-1:])[:300]!r}"
                )
            self._calls.append(list(messages))
            reply = self.responses[index]
        if callable(reply) and not isinstance(reply, AIMessage):
            reply = reply(list(messages))
        if isinstance(reply, BaseException):
            raise reply
        message = AIMessage(content=reply) if isinstance(reply, str) else reply.model_copy()
        if not message.usage_metadata:
            prompt = approx_tokens(message_text(messages))
            answer = approx_tokens(str(message.content) + str(message.tool_calls))
            message.usage_metadata = {
                "input_tokens": prompt,
                "output_tokens": answer,
                "total_tokens": prompt + answer,
            }
        message.response_metadata = {**message.response_metadata, "model_name": self.model_name}
        return message

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency:
            time.sleep(self.latency)
        message = _capped(self._next(messages), kwargs.get("max_tokens") or self.max_tokens)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency:
            await asyncio.sleep(self.latency)
        message = _capped(self._next(messages), kwargs.get("max_tokens") or self.max_tokens)
        return ChatResult(generations=[ChatGeneration(message=message)])


def _capped(message: AIMessage, max_tokens: int | None) -> AIMessage:
    """The reply as a provider gives it under `max_tokens`: output cut at the limit
    (its usage says so, and `finish_reason` is "length")."""
    reported = message.usage_metadata
    if max_tokens is None or reported is None or reported["output_tokens"] <= max_tokens:
        return message
    usage = {
        **reported,
        "output_tokens": max_tokens,
        "total_tokens": reported["input_tokens"] + max_tokens,
    }
    content = (
        message.content[: max_tokens * 4] if isinstance(message.content, str) else message.content
    )
    return message.model_copy(
        update={
            "content": content,
            "usage_metadata": usage,
            "response_metadata": {**message.response_metadata, "finish_reason": "length"},
        }
    )


class StreamingChatModel(ScriptedChatModel):
    """A `ScriptedChatModel` that streams its replies token by token.

    It streams whenever LangChain asks it to (a `stream()` call, or `invoke()` while a
    streaming callback such as LangGraph's `stream_mode="messages"` handler listens) and
    answers whole otherwise; either way it waits `first_token_delay` before the first
    token and `token_delay` between tokens, so a whole reply takes as long as a streamed
    one. It fails as loudly as its parent when over- or under-used.

    Attributes:
        first_token_delay: Seconds before the first token (the provider's time to first
            token).
        token_delay: Seconds between two tokens.
        streamed: How many calls were streamed (the rest were answered whole).
    """

    first_token_delay: float = 0.0
    token_delay: float = 0.0
    _streamed: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "podium-scripted-streaming"

    @property
    def streamed(self) -> int:
        return self._streamed

    def _reply(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
        return _capped(self._next(messages), kwargs.get("max_tokens") or self.max_tokens)

    def _whole_delay(self, message: AIMessage) -> float:
        """A whole reply takes as long as its stream would."""
        return self.first_token_delay + self.token_delay * (len(reply_chunks(message)) - 1)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self._reply(messages, kwargs)
        time.sleep(self._whole_delay(message))
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self._reply(messages, kwargs)
        await asyncio.sleep(self._whole_delay(message))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._reply(messages, kwargs)
        with self._lock:
            self._streamed += 1
        for index, chunk in enumerate(reply_chunks(message)):
            time.sleep(self.first_token_delay if index == 0 else self.token_delay)
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        message = self._reply(messages, kwargs)
        with self._lock:
            self._streamed += 1
        for index, chunk in enumerate(reply_chunks(message)):
            await asyncio.sleep(self.first_token_delay if index == 0 else self.token_delay)
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
