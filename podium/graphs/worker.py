"""The built-in worker: one agent's model/tool loop as a subgraph.

START -> agent -> (tools -> agent)* -> END, at most `max_steps` model calls.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, ToolCall
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import ToolException
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolInvocationError
from typing_extensions import TypedDict  # pydantic needs it for JSON schemas before 3.12

import podium.names as names
from podium.errors import PolicyViolation, TaskFailed
from podium.gates.interrupt import sharing_resumes
from podium.governance.binding import bound, gate_tool_calls, tool_node_hooks
from podium.governance.fallback import FALLBACK_KEY
from podium.governance.tool_call import decided
from podium.governance.usage import model_name_of, priced_usage
from podium.models import model_label
from podium.nodes._node import Node, untraced
from podium.registry import AgentSpec
from podium.state import Usage, sum_usage


class WorkerState(TypedDict, total=False):
    task_id: str
    messages: Annotated[list[AnyMessage], add_messages]
    steps: int
    usage: Annotated[dict[str, Usage], sum_usage]
    #: Model switches of this task ({"from", "to"}), when a fallback model answered.
    model_fallbacks: Annotated[list[dict[str, str]], operator.add]


def recoverable_tool_error(exc: Exception) -> str:
    """Errors the model can act on go back to it as the tool result; others propagate."""
    if isinstance(exc, ToolInvocationError):
        return exc.message
    if isinstance(exc, (ToolException, PolicyViolation)):
        return f"Error: {exc}"
    raise exc


def build_worker(
    spec: AgentSpec, model: BaseChatModel, fallbacks: Sequence[BaseChatModel] = ()
) -> StateGraph[Any]:
    """The agent loop of `spec` (uncompiled); `fallbacks` take over, in order, when
    `model` is down."""
    fallbacks = list(fallbacks)
    label = model_label(model)
    tools = list(spec.tools)

    def _check(state: WorkerState) -> int:
        steps = state.get("steps", 0)
        if steps >= spec.max_steps:
            raise TaskFailed(
                state.get("task_id", "?"),
                spec.name,
                f"no answer after max_steps={spec.max_steps} model calls; raise "
                "AgentSpec.max_steps or make the instruction narrower",
            )
        return steps

    def _update(reply: AIMessage, steps: int, config: RunnableConfig) -> dict[str, Any]:
        usage = priced_usage(reply, model_name_of(reply, label), bound(config).scope)
        update = {"messages": [reply], "steps": steps + 1, "usage": {spec.name: usage}}
        switch = reply.response_metadata.get(FALLBACK_KEY)
        if switch:
            update["model_fallbacks"] = [switch]
        return update

    def agent(state: WorkerState, config: RunnableConfig) -> dict[str, Any]:
        steps = _check(state)
        binding = bound(config)
        reply = binding.governor.call_model(
            model,
            state["messages"],
            agent=spec.name,
            task_id=state.get("task_id"),
            config=config,
            scope=binding.scope,
            tools=tools,
            fallbacks=fallbacks,
        )
        return _update(reply, steps, config)

    async def aagent(state: WorkerState, config: RunnableConfig) -> dict[str, Any]:
        steps = _check(state)
        binding = bound(config)
        reply = await binding.governor.acall_model(
            model,
            state["messages"],
            agent=spec.name,
            task_id=state.get("task_id"),
            config=config,
            scope=binding.scope,
            tools=tools,
            fallbacks=fallbacks,
        )
        return _update(reply, steps, config)

    def route(state: WorkerState) -> str:
        last = state["messages"][-1]
        return names.WORKER_TOOLS if isinstance(last, AIMessage) and last.tool_calls else END

    builder = StateGraph(WorkerState)
    builder.add_node(names.WORKER_AGENT, Node(names.WORKER_AGENT, agent, aagent))
    builder.add_edge(START, names.WORKER_AGENT)
    if spec.tools:
        builder.add_node(names.WORKER_TOOLS, _tools_node(spec))
        builder.add_conditional_edges(
            names.WORKER_AGENT, untraced(route, "route"), [names.WORKER_TOOLS, END]
        )
        builder.add_edge(names.WORKER_TOOLS, names.WORKER_AGENT)
    else:
        builder.add_edge(names.WORKER_AGENT, END)
    return builder


def _tools_node(spec: AgentSpec) -> Node:
    """The tool step: the approval gates of the reply's calls, one at a time in call order,
    then the calls, in parallel, in a `ToolNode`.

    LangGraph hands a step's resume values to its `interrupt()` calls in the order they
    are reached; gates raised by calls running in parallel would be reached in any order,
    and a decision could reach another call's gate (`podium.governance.tool_call`). Gates
    the calls raise while they run (a question, an effect in doubt) hand each other the
    decisions that name them (`podium.gates.interrupt.sharing_resumes`)."""
    tool_node = ToolNode(spec.tools, handle_tool_errors=recoverable_tool_error, **tool_node_hooks())

    def tools(state: WorkerState, config: RunnableConfig) -> Any:
        with sharing_resumes():
            decisions = gate_tool_calls(config, _calls(state), tool_node.tools_by_name)
            with decided(decisions):
                return tool_node.invoke(state, config)

    async def atools(state: WorkerState, config: RunnableConfig) -> Any:
        run_sync = bound(config).services.run_sync
        with sharing_resumes():
            calls = _calls(state)
            decisions = await run_sync(gate_tool_calls, config, calls, tool_node.tools_by_name)
            with decided(decisions):
                return await tool_node.ainvoke(state, config)

    return Node(names.WORKER_TOOLS, tools, atools)


def _calls(state: WorkerState) -> list[ToolCall]:
    """The tool calls of the reply the tool step answers (the last message)."""
    last = state["messages"][-1]
    return list(last.tool_calls) if isinstance(last, AIMessage) else []
