"""Token streaming: podium's progress events and the model tokens of a run, as one stream.

A run streamed with `stream_mode=STREAM_MODES` and `subgraphs=True` (LangGraph's
`messages` mode next to podium's `custom` progress events; on a LangGraph server
`["custom", "messages-tuple"]` with `stream_subgraphs=True`) yields both. `parts` turns
either shape into `("event", dict)` and `("token", Token)` items, in arrival order.

Which tokens are the answer. The aggregate node composes the answer without a model call
(`podium.nodes.aggregate`): it is the result of the plan's sink tasks (those no other
task depends on), and a task's result is its worker's last reply. So the answer's tokens
are the text tokens of the model calls made inside a sink task. Model calls inside a task
carry its id in their metadata (`TASK_KEY`, set by the task node; a nested workflow's
inner calls keep the outer task's id), so a display knows whose text a token is;
the supervisor's own calls (plans, routing) carry none and are never shown as text. A
later reply of the same task (after a tool call) supersedes the earlier one, a new plan
can make a sink task an inner one (the router adds tasks one by one), and with several
sinks the answer joins their results. The stored answer, after the policy's output
filters and any answer gate, is what the run returns: displays show the streamed text
while the run works and the stored answer once it ends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

#: Metadata keys the task node puts on the config of a task's worker.
TASK_KEY = "podium_task_id"
AGENT_KEY = "podium_agent"
#: Stream modes of a run that streams tokens (with `subgraphs=True`: workers are subgraphs).
STREAM_MODES: list[Literal["custom", "messages"]] = ["custom", "messages"]
#: The same on a LangGraph server (`runs.stream(..., stream_subgraphs=True)`).
SERVER_STREAM_MODES: list[Literal["custom", "messages-tuple"]] = ["custom", "messages-tuple"]
#: The event kind of a token handed to an `on_event` hook next to progress events.
TOKEN_EVENT = "token"
#: Progress events the governor sends from inside a task's worker (a subgraph): a call
#: tried again, a fallback model taking a call. Passed on from any depth.
CALL_EVENTS = frozenset({"retry", "model_fallback"})


@dataclass(frozen=True, slots=True)
class Token:
    """Text a worker's model produced, as it arrived.

    Attributes:
        task_id: The task whose model call it is.
        agent: The task's agent.
        message_id: The model reply it belongs to.
        text: The new text (a token, or the whole reply when `whole`).
        whole: The reply arrived in one piece (a model that does not stream, or the
            reply as the worker stored it): its text replaces what was streamed.
        last: The reply's last chunk.
    """

    task_id: str
    agent: str
    message_id: str
    text: str
    whole: bool = False
    last: bool = False

    def event(self) -> dict[str, Any]:
        """The token as an event mapping (`{"event": "token", ...}`) for event hooks."""
        return {
            "event": TOKEN_EVENT,
            "task_id": self.task_id,
            "agent": self.agent,
            "message_id": self.message_id,
            "text": self.text,
            "whole": self.whole,
            "last": self.last,
        }

    @classmethod
    def of_event(cls, event: Mapping[str, Any]) -> Token:
        return cls(
            str(event["task_id"]),
            str(event.get("agent") or "?"),
            str(event.get("message_id") or ""),
            str(event.get("text") or ""),
            bool(event.get("whole")),
            bool(event.get("last")),
        )


def for_task(config: Any, task_id: str, agent: str) -> Any:
    """`config` with the task's id and agent in its metadata, which LangGraph hands to the
    `messages` stream with every token of the task's model calls. A task of a nested
    workflow keeps the enclosing task's id: its text is the enclosing task's result."""
    metadata = dict(config.get("metadata") or {})
    if metadata.get(TASK_KEY):
        return config
    return {**config, "metadata": {**metadata, TASK_KEY: task_id, AGENT_KEY: agent}}


def token_of(message: Any, metadata: Mapping[str, Any] | None) -> Token | None:
    """The token in a `messages` stream item (a message object, or its dict form on a
    server), or None when it is not text of a task's model call."""
    metadata = metadata or {}
    task_id = metadata.get(TASK_KEY)
    if not task_id:
        return None  # the supervisor's plan or routing, or the aggregate's stored answer
    if isinstance(message, Mapping):
        kind = str(message.get("type") or "")
        content, message_id = message.get("content"), message.get("id")
        finish = (message.get("response_metadata") or {}).get("finish_reason")
        last = message.get("chunk_position") == "last" or bool(finish)
    else:
        kind = type(message).__name__
        content, message_id = getattr(message, "content", None), getattr(message, "id", None)
        finish = (getattr(message, "response_metadata", None) or {}).get("finish_reason")
        last = getattr(message, "chunk_position", None) == "last" or bool(finish)
    if kind not in ("AIMessageChunk", "AIMessage", "ai"):
        return None  # a tool result or the task's own prompt
    whole = kind in ("AIMessage", "ai")
    text = _text(content)
    if not text and not (whole or last):
        return None
    return Token(
        str(task_id),
        str(metadata.get(AGENT_KEY) or "?"),
        str(message_id or ""),
        text,
        whole=whole,
        last=last or whole,
    )


def _text(content: Any) -> str:
    """Text of a message's content: a string, or the text blocks of a block list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            b if isinstance(b, str) else str(b.get("text") or "")
            for b in content
            if isinstance(b, str) or (isinstance(b, Mapping) and b.get("type") == "text")
        )
    return ""


def parts(items: Iterable[Any]) -> Iterator[tuple[str, Any]]:
    """`("event", dict)` and `("token", Token)` items of a local run's stream.

    `items` is what `app.stream(..., stream_mode=STREAM_MODES, subgraphs=True)` yields:
    `(namespace, mode, data)`. Progress events of subgraphs (a nested workflow's own
    plan) are left out, as a run streamed without subgraphs never showed them, except
    the governor's `CALL_EVENTS`, which workers' model and tool calls send.
    """
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 3):
            if isinstance(item, Mapping):  # a run streamed with stream_mode="custom" only
                yield "event", item
            continue
        namespace, mode, data = item
        if mode == "custom" and isinstance(data, Mapping):
            if not namespace or data.get("event") in CALL_EVENTS:
                yield "event", data
        elif mode == "messages" and isinstance(data, tuple) and len(data) == 2:
            token = token_of(*data)
            if token is not None:
                yield "token", token


def server_part(event: str, data: Any) -> tuple[str, Any] | None:
    """The item of one server stream part (`runs.stream` with `SERVER_STREAM_MODES` and
    `stream_subgraphs=True`), or None for parts of other kinds."""
    if event.startswith("custom") and isinstance(data, Mapping):
        return "event", data
    if event.startswith("messages") and isinstance(data, list | tuple) and len(data) == 2:
        token = token_of(data[0], data[1] if isinstance(data[1], Mapping) else None)
        if token is not None:
            return "token", token
    return None


class AnswerText:
    """The answer as streamed so far, and each task's text.

    Feed it the run's progress events (`progress`) and tokens (`add`); `answer` is the
    text of the sink tasks' latest replies, `task_text(id)` one task's latest reply.
    """

    def __init__(self) -> None:
        self._needed: set[str] = set()
        self._latest: dict[str, str] = {}  # task id -> id of its latest reply
        self._texts: dict[tuple[str, str], str] = {}
        self._order: list[str] = []  # task ids in the order their text began

    def progress(self, event: Mapping[str, Any]) -> None:
        """Take a progress event: a plan says which tasks feed others."""
        if event.get("event") == "plan":
            for task in event.get("tasks") or ():
                self._needed.update(task.get("depends_on") or ())

    def add(self, token: Token) -> str:
        """Take a token; returns the text it adds to its reply ("" when none, and the
        whole reply's text when it replaces what was streamed differently)."""
        key = (token.task_id, token.message_id)
        before = self._texts.get(key, "")
        if token.whole:
            after = token.text
            added = after[len(before) :] if after.startswith(before) else after
        else:
            after = before + token.text
            added = token.text
        self._texts[key] = after
        if self._latest.get(token.task_id) != token.message_id and (after or token.whole):
            self._latest[token.task_id] = token.message_id
        if token.task_id not in self._order and after:
            self._order.append(token.task_id)
        return added

    def is_answer(self, task_id: str) -> bool:
        """Whether the task's reply is (part of) the answer as far as the plan says."""
        return task_id not in self._needed

    def task_text(self, task_id: str) -> str:
        """The task's latest reply as streamed."""
        message_id = self._latest.get(task_id)
        return self._texts.get((task_id, message_id), "") if message_id is not None else ""

    def tasks(self) -> list[str]:
        """Tasks that streamed text, in the order they began."""
        return list(self._order)

    @property
    def answer(self) -> str:
        """The answer as streamed so far: the sink tasks' latest replies."""
        texts = [self.task_text(t) for t in self._order if self.is_answer(t)]
        return "\n\n".join(t for t in texts if t)


def _pieces(message: AIMessage) -> list[str]:
    """The reply's text cut into tokens (a word and the space after it): at least one."""
    text = message.content if isinstance(message.content, str) else message.text
    return re.findall(r"\S+\s*|\s+", text) or [""]


def reply_chunks(message: AIMessage) -> list[ChatGenerationChunk]:
    """A whole reply as a provider streams it: one chunk per token (a word and the space
    after it), the tool calls, usage and metadata on the last chunk, so the chunks add up
    to the reply. For models that answer whole (the demo model, test fakes)."""
    pieces = _pieces(message)
    chunks = [AIMessageChunk(content=piece, id=message.id) for piece in pieces]
    chunks[-1] = AIMessageChunk(
        content=pieces[-1],
        id=message.id,
        tool_call_chunks=[
            {
                "name": call["name"],
                "args": json.dumps(call["args"]),
                "id": call["id"],
                "index": index,
                "type": "tool_call_chunk",
            }
            for index, call in enumerate(message.tool_calls)
        ],
        usage_metadata=message.usage_metadata,
        response_metadata=message.response_metadata,
        chunk_position="last",
    )
    return [ChatGenerationChunk(message=chunk) for chunk in chunks]
