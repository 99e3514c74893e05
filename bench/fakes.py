"""Fake chat models shared by podium and the baselines, so every system gets the same answers.

`RouterModel` always delegates to the next agent in turn until K delegations are done, then
finishes; it answers in the form each system expects (podium's JSON choice, a handoff tool
call, or a plain JSON choice for the hand-written graph). It is stateless: it reads how many
delegations are done from the messages it receives, so one instance serves many concurrent
runs. `WorkerModel` answers every task with the same fixed paragraph.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import PrivateAttr

#: What every worker answers (about 300 characters, a short paragraph of findings).
WORKER_ANSWER = (
    "Findings: the corpus holds three relevant sources. Revenue grew from 120 to 150 million "
    "between 2022 and 2024 (25 percent), margins held near 18 percent, and the main risk named "
    "by every source is supplier concentration. Two sources disagree on headcount; the later "
    "report is the more reliable one."
)

_DONE_LINE = re.compile(r"^- t\d+ ", re.MULTILINE)
_DONE_COUNT = re.compile(r"Done so far \((\d+) tasks\)")

Counter = Callable[[Sequence[BaseMessage]], int]


def podium_done(messages: Sequence[BaseMessage]) -> int:
    """Delegations finished so far, read from podium's router progress message
    ("Done so far (N tasks):")."""
    last = messages[-1] if messages else None
    if not isinstance(last, HumanMessage):
        return 0
    found = _DONE_COUNT.search(last.text)
    return int(found.group(1)) if found else len(_DONE_LINE.findall(last.text))


def named_answers(agents: Sequence[str]) -> Counter:
    """A counter of worker answers (AI messages named after an agent, without tool calls)."""
    names = frozenset(agents)

    def count(messages: Sequence[BaseMessage]) -> int:
        return sum(
            1 for m in messages if isinstance(m, AIMessage) and m.name in names and not m.tool_calls
        )

    return count


def message_chars(message: BaseMessage) -> int:
    """Characters of one message as a model receives it: its text plus any tool calls."""
    chars = len(message.text)
    if isinstance(message, AIMessage) and message.tool_calls:
        chars += len(
            json.dumps([{"name": c["name"], "args": c["args"]} for c in message.tool_calls])
        )
    return chars


def message_payload(message: BaseMessage) -> str:
    """The text of one message as a model receives it (for token counting)."""
    text = message.text
    if isinstance(message, AIMessage) and message.tool_calls:
        text += json.dumps([{"name": c["name"], "args": c["args"]} for c in message.tool_calls])
    return text


class FakeChatModel(BaseChatModel):
    """Base of the fakes: simulated latency, usage metadata and optional call recording.

    Attributes:
        latency: Seconds every call takes (`time.sleep` sync, `asyncio.sleep` async).
        record: Keep the messages of every call (for the context case).
    """

    latency: float = 0.0
    record: bool = False
    model_name: str = "scripted"
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "bench-fake"

    @property
    def calls(self) -> list[list[BaseMessage]]:
        """The messages of every recorded call, in call order."""
        with self._lock:
            return list(self._calls)

    def reset(self) -> None:
        """Forget the recorded calls."""
        with self._lock:
            self._calls.clear()

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any):
        """Bind tools as a real chat model does (OpenAI schemas); the fake ignores them."""
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def reply(self, messages: list[BaseMessage]) -> AIMessage:
        """The answer to `messages` (subclasses decide)."""
        raise NotImplementedError

    def _answer(self, messages: list[BaseMessage]) -> ChatResult:
        if self.record:
            with self._lock:
                self._calls.append(list(messages))
        message = self.reply(messages)
        prompt = max(1, sum(len(m.text) for m in messages) // 4)
        answer = max(1, len(message.text) // 4)
        message.usage_metadata = {
            "input_tokens": prompt,
            "output_tokens": answer,
            "total_tokens": prompt + answer,
        }
        message.response_metadata = {"model_name": self.model_name}
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        if self.latency:
            time.sleep(self.latency)
        return self._answer(messages)

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        if self.latency:
            await asyncio.sleep(self.latency)
        return self._answer(messages)


class WorkerModel(FakeChatModel):
    """Answers every task with `answer`."""

    answer: str = WORKER_ANSWER

    def reply(self, messages: list[BaseMessage]) -> AIMessage:
        return AIMessage(content=self.answer)


class RouterModel(FakeChatModel):
    """Delegates to `agents` in turn until `k` delegations are done, then finishes.

    Attributes:
        agents: The agents, in the order they are chosen.
        k: Delegations per run.
        style: "json" answers `{"next": ..., "instruction": ...}` (podium's router and the
            hand-written graph); "tool" calls the handoff tool `transfer_to_<agent>`
            (langgraph-supervisor) and finishes with a plain answer.
        count_done: Reads the number of finished delegations from the messages.
    """

    agents: list[str]
    k: int
    style: str = "json"
    count_done: Any = podium_done

    def reply(self, messages: list[BaseMessage]) -> AIMessage:
        done = self.count_done(messages)
        if done >= self.k:
            if self.style == "tool":
                return AIMessage(content="All tasks are done; the team's answer is above.")
            return AIMessage(content='{"next": "FINISH"}')
        agent = self.agents[done % len(self.agents)]
        instruction = f"Step {done + 1}: continue the brief from the results so far."
        if self.style == "tool":
            call = {
                "name": f"transfer_to_{agent}",
                "args": {},
                "id": f"call_{uuid.uuid4().hex[:12]}",
                "type": "tool_call",
            }
            return AIMessage(content="", tool_calls=[call])
        return AIMessage(content=json.dumps({"next": agent, "instruction": instruction}))
