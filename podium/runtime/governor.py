"""The governed model and the governed tool: the single choke points of every call.

Every model call of a supervisor or worker goes through `Governor.call_model` and
every tool call through `Governor.wrap_tool_call` (installed on each worker's
`ToolNode`), so agent code cannot skip what the runtime enforces here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command

from podium.models import cost_usd
from podium.runtime.services import RUNTIME_KEY
from podium.state import Usage

ToolResult = ToolMessage | Command


def usage_of(message: AIMessage, model: str) -> Usage:
    """Usage and cost of one model reply (zeros when the provider reports nothing)."""
    meta = message.usage_metadata or {}
    tokens_in, tokens_out = meta.get("input_tokens", 0), meta.get("output_tokens", 0)
    return Usage(
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        total_tokens=meta.get("total_tokens", tokens_in + tokens_out),
        calls=1,
        cost_usd=cost_usd(model, tokens_in, tokens_out),
    )


def model_name_of(message: AIMessage, fallback: str) -> str:
    meta = message.response_metadata or {}
    return str(meta.get("model_name") or meta.get("model") or fallback)


class Governor:
    """Runs model and tool calls on behalf of agents.

    The base governor passes calls through and accounts usage; policies, budgets,
    approvals and recovery are layered on this same class, so every entry point
    (supervisor, built-in worker, custom worker graph) shares one enforcement path.
    """

    def call_model(
        self,
        model: Runnable,
        messages: Sequence[BaseMessage],
        *,
        agent: str,
        task_id: str | None,
        config: RunnableConfig | None = None,
    ) -> AIMessage:
        reply = model.invoke(list(messages), config)
        return _as_ai(reply, agent)

    async def acall_model(
        self,
        model: Runnable,
        messages: Sequence[BaseMessage],
        *,
        agent: str,
        task_id: str | None,
        config: RunnableConfig | None = None,
    ) -> AIMessage:
        reply = await model.ainvoke(list(messages), config)
        return _as_ai(reply, agent)

    def wrap_tool_call(
        self, request: ToolCallRequest, execute: Callable[[ToolCallRequest], ToolResult]
    ) -> ToolResult:
        return execute(request)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        execute: Callable[[ToolCallRequest], Awaitable[ToolResult]],
    ) -> ToolResult:
        return await execute(request)


_PASS_THROUGH = Governor()


def governor_for(config: RunnableConfig | None) -> Governor:
    """The governor of the runtime that compiled this graph (a pass-through one if none)."""
    runtime: Any = ((config or {}).get("configurable") or {}).get(RUNTIME_KEY)
    return runtime.governor if runtime is not None else _PASS_THROUGH


def runtime_for(config: RunnableConfig | None) -> Any:
    """The `PodiumRuntime` bound by `rt.compile`, or None for a graph compiled without one."""
    return ((config or {}).get("configurable") or {}).get(RUNTIME_KEY)


def _as_ai(reply: Any, agent: str) -> AIMessage:
    if not isinstance(reply, AIMessage):
        raise TypeError(
            f"the model of agent {agent!r} returned {type(reply).__name__}, "
            "not an AIMessage; pass a chat model"
        )
    return reply


def tool_node_hooks() -> dict[str, Any]:
    """`wrap_tool_call`/`awrap_tool_call` for a `ToolNode`, resolving the governor per call."""

    def wrap(request: ToolCallRequest, execute):
        return governor_for(request.runtime.config).wrap_tool_call(request, execute)

    async def awrap(request: ToolCallRequest, execute):
        return await governor_for(request.runtime.config).awrap_tool_call(request, execute)

    return {"wrap_tool_call": wrap, "awrap_tool_call": awrap}
