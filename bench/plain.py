"""Plain LangGraph baselines: hand-written graphs doing podium's routing with `Command`/`Send`.

Router:  START -> supervisor -(Command goto)-> agent -> supervisor ... -> END
Fan-out: START -> plan -(Send per task)-> work* -> END

Written as LangGraph's multi-agent supervisor tutorial shows: the supervisor node asks its
model which agent acts next and returns `Command(goto=...)`; each agent is a model/tool loop
subgraph that its node invokes, handing back the agent's last answer. Like podium's workers,
an agent sees its task only, not the whole history.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, Send

from bench.workloads import AGENTS, GOAL, NAMES, WORKER_PROMPT

ROUTER_PROMPT = (
    "You supervise a research team. Each turn, choose the agent that acts next, or FINISH "
    "when the goal is met.\nAgents:\n"
    + "\n".join(f"- {n}: {d}" for n, d in AGENTS)
    + '\nAnswer with JSON only: {"next": "<agent name or FINISH>", "instruction": "..."}'
)


class RouterState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    instruction: str


class FanoutState(TypedDict, total=False):
    tasks: list[str]
    results: Annotated[list[str], operator.add]


def _decide(reply: AIMessage) -> Command:
    choice = json.loads(reply.text)
    if choice["next"] == "FINISH":
        return Command(goto=END)
    return Command(goto=choice["next"], update={"instruction": choice["instruction"]})


def _task_text(instruction: str) -> str:
    return f"{instruction}\n\nOverall goal: {GOAL}"


def build_agent(
    model: BaseChatModel,
    name: str,
    description: str,
    tools: Sequence[Any] = (),
    *,
    is_async: bool = False,
):
    """One agent as LangGraph's docs build it: a model/tool loop subgraph (compiled).

    START -> agent -> (tools -> agent)* -> END; the benchmark's agents have no tools.
    """
    bound = model.bind_tools(list(tools)) if tools else model
    system = SystemMessage(WORKER_PROMPT.format(agent=name, description=description))

    if is_async:

        async def agent(state: MessagesState) -> dict[str, Any]:
            return {"messages": [await bound.ainvoke([system, *state["messages"]])]}
    else:

        def agent(state: MessagesState) -> dict[str, Any]:
            return {"messages": [bound.invoke([system, *state["messages"]])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    if tools:
        builder.add_node("tools", ToolNode(list(tools)))
        builder.add_conditional_edges("agent", tools_condition)
        builder.add_edge("tools", "agent")
    else:
        builder.add_edge("agent", END)
    return builder.compile(name=name)


def build_plain_router(
    router: BaseChatModel,
    worker: BaseChatModel,
    *,
    is_async: bool = False,
    subgraphs: bool = True,
) -> StateGraph:
    """The router workflow as a hand-written `StateGraph` (uncompiled).

    Args:
        router: The supervisor's model (answers podium-style JSON choices).
        worker: Every agent's model.
        is_async: Build `async def` nodes (for `ainvoke`).
        subgraphs: Each agent is a model/tool loop subgraph, as podium's workers are; with
            False each agent is a single function node calling its model (no tool loop), the
            smallest possible graph, kept as a reference.
    """
    system = SystemMessage(ROUTER_PROMPT)
    builder = StateGraph(RouterState)

    if is_async:

        async def supervisor(state: RouterState) -> Command:
            return _decide(await router.ainvoke([system, *state["messages"]]))
    else:

        def supervisor(state: RouterState) -> Command:
            return _decide(router.invoke([system, *state["messages"]]))

    builder.add_node("supervisor", supervisor, destinations=(*NAMES, END))
    for name, description in AGENTS:
        if subgraphs:
            agent = build_agent(worker, name, description, is_async=is_async)
            call = agent.ainvoke if is_async else agent.invoke
        else:
            call = _direct(worker, name, description, is_async)
        builder.add_node(name, _agent_node(call, name, is_async))
        builder.add_edge(name, "supervisor")
    builder.add_edge(START, "supervisor")
    return builder


def _direct(worker: BaseChatModel, name: str, description: str, is_async: bool):
    """An agent without a loop: one model call on the system prompt and the task."""
    system = SystemMessage(WORKER_PROMPT.format(agent=name, description=description))
    if is_async:

        async def acall(task: dict[str, Any]) -> dict[str, Any]:
            return {"messages": [await worker.ainvoke([system, *task["messages"]])]}

        return acall

    def call(task: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [worker.invoke([system, *task["messages"]])]}

    return call


def _agent_node(call: Callable[[dict], Any], name: str, is_async: bool):
    """The parent's node for one agent: hand it the task only, keep its last answer."""

    def answer(result: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [AIMessage(content=result["messages"][-1].content, name=name)]}

    if is_async:

        async def node(state: RouterState) -> dict[str, Any]:
            task = {"messages": [HumanMessage(_task_text(state["instruction"]))]}
            return answer(await call(task))

        return node

    def node_sync(state: RouterState) -> dict[str, Any]:
        return answer(call({"messages": [HumanMessage(_task_text(state["instruction"]))]}))

    return node_sync


def build_plain_fanout(worker: BaseChatModel, tasks: int, *, is_async: bool = False):
    """`tasks` independent tasks sent in parallel with `Send`, each to an agent subgraph."""
    name, description = AGENTS[0]
    agent = build_agent(worker, name, description, is_async=is_async)

    def plan(state: FanoutState) -> dict[str, Any]:
        return {"tasks": [f"Part {i} of the brief." for i in range(1, tasks + 1)]}

    def dispatch(state: FanoutState) -> list[Send]:
        return [Send("work", {"tasks": [task]}) for task in state["tasks"]]

    if is_async:

        async def work(state: FanoutState) -> dict[str, Any]:
            out = await agent.ainvoke({"messages": [HumanMessage(_task_text(state["tasks"][0]))]})
            return {"results": [out["messages"][-1].text]}
    else:

        def work(state: FanoutState) -> dict[str, Any]:
            out = agent.invoke({"messages": [HumanMessage(_task_text(state["tasks"][0]))]})
            return {"results": [out["messages"][-1].text]}

    builder = StateGraph(FanoutState)
    builder.add_node("plan", plan)
    builder.add_node("work", work)
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", dispatch, ["work"])
    builder.add_edge("work", END)
    return builder


def plain_input() -> dict[str, Any]:
    return {"messages": [HumanMessage(GOAL)]}
