"""The governed tool: the tool object podium hands to a worker, bound to one task.

At the start of a task podium makes, for each tool of the agent, a governed copy that
closes over the task's scope (tenant, thread, round, task, roles, policies) and the
runtime's binding (services, governor). Every way LangChain can call a tool (`invoke`,
`ainvoke`, `run`, `arun`, `batch`, a `ToolNode`, with or without callbacks, from any
thread) ends in `run`/`arun` here, which hand the call to the one tool-call decision
(`podium.governance.tool_call`). The scope and the runtime are not looked up from a
context variable or a callback, so switching callbacks off or calling from a thread pool
changes nothing about which policies apply.

An approval gate is a LangGraph `interrupt()` of the graph step that made the call, which
LangGraph finds through a context variable. LangGraph's own executor (a `ToolNode`'s
sync tools), `asyncio.to_thread` and `contextvars.copy_context().run` carry it into a
pool thread; a bare `ThreadPoolExecutor` does not, and there the call finds the step in
the config the caller passed (`tool.invoke(args, config)` with the node's config). A
gated call that carries no step either way is refused, and the refusal says how to fix it.

What cannot be enforced in-process: code that calls the Python function under the tool
(`tool.inner.func(...)`, or the function itself) bypasses every tool object.
"""

from __future__ import annotations

import threading
from contextvars import Token
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.tools import BaseTool

import podium.governance.tool_call as tool_call
from podium.governance.calls import REFUSED, Call, carries_step, in_graph_step
from podium.governance.guard import ToolRefused
from podium.governance.records import digest


class CallIds:
    """Call ids for calls that come without one (a direct `invoke` with plain arguments).

    The n-th call of the same tool with the same arguments in a task gets the same id
    each time the task runs, and different calls never share one. Shared by a task's
    governed tools.
    """

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def derive(self, name: str, args: dict[str, Any]) -> str:
        what = f"{name}:{digest(args)[7:19]}"
        with self._lock:
            n = self._seen[what] = self._seen.get(what, -1) + 1
        return f"direct-{what}-{n}"


class GovernedTool(BaseTool):
    """A tool whose every call goes through podium's tool-call decision.

    Attributes:
        inner: The tool the agent was given.
        scope: The task's scope (`podium.governance.scope.Scope`).
        binding: The runtime's binding (`podium.governance.binding.Binding`).
        ids: Derives ids for calls without one (shared by the task's tools).
    """

    inner: BaseTool
    scope: Any
    binding: Any
    ids: Any

    @classmethod
    def for_task(cls, tool: BaseTool, scope: Any, binding: Any, ids: CallIds) -> GovernedTool:
        """The governed copy of `tool` for one task."""
        return cls(
            name=tool.name,
            description=tool.description,
            args_schema=tool.args_schema,
            return_direct=tool.return_direct,
            inner=tool,
            scope=scope,
            binding=binding,
            ids=ids,
        )

    def run(
        self,
        tool_input: str | dict[str, Any],
        verbose: bool | None = None,
        start_color: str | None = None,
        color: str | None = None,
        callbacks: Callbacks = None,
        *,
        config: RunnableConfig | None = None,
        tool_call_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        config, call = self._start(tool_input, callbacks, config, tool_call_id)
        step = _enter_step(config)
        try:
            result = tool_call.run(
                self.binding.governor,
                self.scope,
                call,
                lambda c: self.inner.invoke(_as_tool_call(c), config),
            )
        finally:
            _leave_step(step)
        return self._end(result, tool_call_id)

    async def arun(
        self,
        tool_input: str | dict[str, Any],
        verbose: bool | None = None,
        start_color: str | None = None,
        color: str | None = None,
        callbacks: Callbacks = None,
        *,
        config: RunnableConfig | None = None,
        tool_call_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        config, call = self._start(tool_input, callbacks, config, tool_call_id)
        step = _enter_step(config)
        try:
            result = await tool_call.arun(
                self.binding.governor,
                self.scope,
                call,
                lambda c: self.inner.ainvoke(_as_tool_call(c), config),
            )
        finally:
            _leave_step(step)
        return self._end(result, tool_call_id)

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        # Only reached by code calling the private method itself: governed all the same.
        return self.run(kwargs if kwargs or not args else args[0])

    def _start(
        self,
        tool_input: str | dict[str, Any],
        callbacks: Callbacks,
        config: RunnableConfig | None,
        tool_call_id: str | None,
    ) -> tuple[RunnableConfig, Call]:
        # The caller's config (callbacks for tracing; inside a graph step, the step's
        # own config comes with it), plus the task's scope and binding, which the tool
        # object carries: the inner tool can check data scopes from any thread.
        from podium.governance.binding import scoped_configurable

        config = ensure_config(config)
        if callbacks is not None:
            config = {**config, "callbacks": callbacks}
        configurable = {
            **(config.get("configurable") or {}),
            **scoped_configurable(self.binding, self.scope),
        }
        config = {**config, "configurable": configurable}
        args = self._args(tool_input)
        call_id = tool_call_id or self.ids.derive(self.name, args)
        return config, Call(self.name, args, call_id, self.inner)

    def _args(self, tool_input: str | dict[str, Any]) -> dict[str, Any]:
        if isinstance(tool_input, dict):
            return dict(tool_input)
        fields = list(self.inner.args)
        return {fields[0] if len(fields) == 1 else "input": tool_input}

    def _end(self, result: Any, tool_call_id: str | None) -> Any:
        """A ToolMessage for a tool call; for plain arguments, what the tool returns
        (a refusal raises `ToolRefused`, a `PolicyViolation`)."""
        if tool_call_id is not None or not isinstance(result, ToolMessage):
            return result
        if result.response_metadata.get(REFUSED):
            raise ToolRefused(self.name, result.text)
        return result.content


def _enter_step(config: RunnableConfig) -> Token[RunnableConfig | None] | None:
    """Make the graph step named by the caller's `config` the current one, when the
    calling thread carries none (a bare thread pool given the node's config), so an
    approval gate can interrupt that step. Returns what `_leave_step` restores."""
    if in_graph_step() or not carries_step(config):
        return None
    return var_child_runnable_config.set(config)


def _leave_step(token: Token[RunnableConfig | None] | None) -> None:
    # A pool thread keeps its context between tasks: leave it as it was found.
    if token is not None:
        var_child_runnable_config.reset(token)


def _as_tool_call(call: Call) -> dict[str, Any]:
    return {"type": "tool_call", "name": call.name, "args": call.args, "id": call.id}


def governed_tools(tools: list[BaseTool], scope: Any, binding: Any) -> list[GovernedTool]:
    """The task's governed copies of `tools`."""
    ids = CallIds()
    return [GovernedTool.for_task(t, scope, binding, ids) for t in tools]
