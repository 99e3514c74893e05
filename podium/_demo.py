"""The offline demo model: a deterministic stand-in that plans, routes, calls tools and writes.

It is not a language model. It reads podium's own prompts (the agent list, the goal,
the task and the tool results) and answers by rule, well enough for the bundled
`research_brief` example to produce a sensible brief with no network and no key.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool

from podium.nodes.prompts import CHOICE_MARKER, PLAN_MARKER
from podium.streaming import reply_chunks
from podium.tokens import approx_tokens, message_text

_AGENT_LINE = re.compile(r"^- ([A-Za-z][\w\-]*): (.*)$", re.MULTILINE)
_DONE_LINE = re.compile(r"^- (\S+) ([A-Za-z][\w\-]*): ", re.MULTILINE)
_CHANGE = re.compile(
    r"from (?:about |around )?\$?(\d[\d,.]*)\s*([%\w]*)\s+(?:in \d{4} )?to "
    r"(?:about |around )?\$?(\d[\d,.]*)",
    re.IGNORECASE,
)
_LEADS = re.compile(
    r"^(please )?(write|draft|prepare|produce|give me|create)( me)? (a |an )?"
    r"(short |brief |one-page )?(brief|report|summary|overview)( note)? (on|about|of) ",
    re.IGNORECASE,
)


class DemoChatModel(BaseChatModel):
    """Deterministic offline model used by `model="demo"`."""

    model_name: str = "demo"

    @property
    def _llm_type(self) -> str:
        return "podium-demo"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, Any]:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        tools: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._reply(list(messages), tools or [])
        prompt, answer = (
            approx_tokens(message_text(messages)),
            approx_tokens(str(reply.content) + json.dumps(reply.tool_calls, default=str)),
        )
        reply.usage_metadata = {
            "input_tokens": prompt,
            "output_tokens": answer,
            "total_tokens": prompt + answer,
        }
        reply.response_metadata = {"model_name": "demo"}
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        tools: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # Streamed when a caller listens for tokens (`stream_mode="messages"`): the same
        # reply, a word at a time.
        result = self._generate(messages, stop, tools=tools, **kwargs)
        reply = result.generations[0].message
        assert isinstance(reply, AIMessage)  # _reply makes one
        for chunk in reply_chunks(reply):
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    def _reply(self, messages: list[BaseMessage], tools: list[dict[str, Any]]) -> AIMessage:
        system = next((m.text for m in messages if isinstance(m, SystemMessage)), "")
        human = next((m.text for m in reversed(messages) if isinstance(m, HumanMessage)), "")
        if PLAN_MARKER in system:
            return AIMessage(content=json.dumps(_plan(system, human)))
        if CHOICE_MARKER in system:
            return AIMessage(content=json.dumps(_choose(system, human)))
        if tools and not isinstance(messages[-1], ToolMessage):
            calls = _tool_calls(human, tools)
            if calls:
                return AIMessage(content="", tool_calls=calls)
        if any(isinstance(m, ToolMessage) for m in messages):
            return AIMessage(content=_report_tool_results(human, messages))
        return AIMessage(content=_write(human))


# -- supervisor -------------------------------------------------------------------------


def _agents(system: str) -> list[tuple[str, str]]:
    return _AGENT_LINE.findall(system.split("Agents:", 1)[-1])


def _goal(human: str) -> str:
    first = human.split("\n", 1)[0]
    return first.removeprefix("Goal: ").strip()


def _subjects(goal: str) -> list[str]:
    core = _LEADS.sub("", goal.rstrip(".")).strip()
    parts = [p.strip(" ,") for p in re.split(r",| and ", core) if p.strip(" ,")]
    return parts[:3] if len(parts) > 1 else [core or goal]


def _instruction(name: str, description: str, goal: str) -> str:
    for text in (name.lower(), description.lower()):
        if "writ" in text or "draft" in text:
            return f"Write a short brief on {_LEADS.sub('', goal.rstrip('.')).strip() or goal}."
        if "calculat" in text or "analy" in text or "math" in text:
            return "Quantify the changes reported in the findings and say what they mean."
    return f"Work on: {goal}"


def _plan(system: str, human: str) -> dict[str, Any]:
    goal, agents = _goal(human), _agents(system)
    # The first agent gathers, one task per subject of the goal, in parallel; every later
    # agent builds on everything before it.
    tasks: list[dict[str, Any]] = []
    for index, (name, description) in enumerate(agents):
        before = [t["id"] for t in tasks]
        if index == 0:
            for subject in _subjects(goal):
                tasks.append(
                    {
                        "id": f"t{len(tasks) + 1}",
                        "agent": name,
                        "instruction": f"Find facts about {subject}.",
                        "depends_on": [],
                    }
                )
        else:
            tasks.append(
                {
                    "id": f"t{len(tasks) + 1}",
                    "agent": name,
                    "instruction": _instruction(name, description, goal),
                    "depends_on": before,
                }
            )
    return {"tasks": tasks}


def _choose(system: str, human: str) -> dict[str, Any]:
    goal = _goal(human)
    progress = human.split("Done so far", 1)[-1]
    done = {agent for _, agent in _DONE_LINE.findall(progress)}
    earlier = re.search(r"^Earlier tasks by agent \(\d+\): (.*)$", progress, re.MULTILINE)
    if earlier:
        done |= {item.rsplit(" x", 1)[0] for item in earlier.group(1).split(", ")}

    for name, description in _agents(system):
        if name not in done:
            return {"next": name, "instruction": _instruction(name, description, goal)}
    return {"next": "FINISH", "instruction": ""}


# -- workers ----------------------------------------------------------------------------


def _task(human: str) -> str:
    first = human.split("\n", 1)[0]
    return re.sub(r"^Task \S+: ", "", first).strip()


def _changes(text: str) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    for start, unit, end in _CHANGE.findall(text):
        a, b = start.replace(",", "").rstrip("."), end.replace(",", "").rstrip(".")
        if a and b and float(a) != 0 and (a, b) not in {(x, y) for x, y, _ in found}:
            found.append((a, b, unit))
    return found[:3]


def _tool_calls(human: str, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    calls = []
    for spec in tools:
        fn = spec.get("function", spec)
        params = fn.get("parameters", {}).get("properties", {})
        if "content" in params:
            # A publishing tool: write the piece first, then hand it over.
            slug = re.sub(r"[^a-z0-9]+", "-", _task(human).lower()).strip("-")[:48] or "report"
            calls.append(_call(fn["name"], {"filename": f"{slug}.md", "content": _write(human)}))
        elif "expression" in params:
            for a, b, _ in _changes(human):
                calls.append(_call(fn["name"], {"expression": f"({b} - {a}) / {a} * 100"}))
        elif any(p.get("type") == "string" for p in params.values()):
            key = next(k for k, p in params.items() if p.get("type") == "string")
            calls.append(_call(fn["name"], {key: _task(human).removeprefix("Find facts about ")}))
    return calls


def _call(name: str, args: dict[str, Any]) -> dict[str, Any]:
    # Ids derive from the call itself so the same input gives the same output.
    digest = hashlib.sha256(json.dumps([name, args], sort_keys=True).encode()).hexdigest()
    return {"name": name, "args": args, "id": f"call_{digest[:12]}", "type": "tool_call"}


def _report_tool_results(human: str, messages: list[BaseMessage]) -> str:
    args = {c["id"]: c["args"] for m in messages if isinstance(m, AIMessage) for c in m.tool_calls}
    published = [
        (args.get(m.tool_call_id, {}), m.text)
        for m in messages
        if isinstance(m, ToolMessage) and "content" in args.get(m.tool_call_id, {})
    ]
    if published:
        call, outcome = published[-1]
        return f"{call['content']}\n\n_Publishing: {outcome}_"
    lines = []
    for m in messages:
        if not isinstance(m, ToolMessage):
            continue
        call = args.get(m.tool_call_id, {})
        if "expression" in call:
            b, a = re.findall(r"[\d.]+", call["expression"])[:2]
            try:
                lines.append(f"- From {a} to {b} is a change of {float(m.text):+.1f}%.")
            except ValueError:
                lines.append(f"- {call['expression']}: {m.text}")
        else:
            lines.extend(f"- {line.strip()}" for line in m.text.splitlines() if line.strip())
    return f"Findings for: {_task(human)}\n" + "\n".join(lines)


def _write(human: str) -> str:
    goal = human.split("Overall goal: ", 1)[-1].split("\n", 1)[0].strip() or _task(human)
    facts, figures, sources = [], [], []
    for line in human.splitlines():
        line = line.strip()
        if not line.startswith("- "):
            continue
        source = re.match(r"- \[([^\]]+)\]\s*(.*)", line)
        if source:
            sources.append(source.group(1))
            facts.append(source.group(2))
        elif "change of" in line:
            figures.append(line[2:])
        else:
            facts.append(line[2:])
    out = [f"# Brief: {goal}", "", "## Key findings"]
    out += [f"- {f}" for f in dict.fromkeys(facts)] or ["- No findings were supplied."]
    if figures:
        out += ["", "## By the numbers"] + [f"- {f}" for f in dict.fromkeys(figures)]
    if sources:
        out += ["", "## Sources", ", ".join(dict.fromkeys(sources))]
    out += ["", "_Written by the offline demo model from the task results above._"]
    return "\n".join(out)
