"""Every tool podium hands to a worker is governed, however it is called.

The issue's reproduction (a prebuilt ReAct writer under the shipped policy), direct calls
with callbacks switched off, calls from a thread pool, and a compiled custom graph whose
own gated tool the callback guard stops at the same gate.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext
from podium.errors import PolicyViolation
from podium.gates.decision import decide, pending_gates
from podium.gates.request import Decision
from podium.graphs.research_brief import default_policy_path
from podium.testing import ScriptedChatModel, tool_call
from podium.tools import calculate, publish_report, search_corpus

EDITOR = RunContext(tenant_id="t", user_id="eve", roles=frozenset({"editor"}))


def _react(tools: list, model: Any) -> Any:
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # create_react_agent moved to langchain in 1.0
        return create_react_agent(model, tools)


def _config(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


def test_a_react_writer_waits_at_the_editor_gate_and_publishes_once_on_approval(tenant):
    writer_model = ScriptedChatModel(
        responses=[
            tool_call("publish_report", {"filename": "react.md", "content": "# React\n"}),
            "published reports/react.md",
        ],
        name="writer",
    )
    agents = [
        AgentSpec(name="researcher", tools=[search_corpus]),
        AgentSpec(name="analyst", tools=[calculate]),
        AgentSpec(name="writer", tools=[publish_report], model=writer_model, graph=_react),
    ]
    plan = Plan(tasks=[PlannedTask(id="t1", agent="writer", instruction="publish")])
    graph = podium.build_workflow(
        agents, name="react_brief", supervisor=plan, policies=default_policy_path()
    )
    context = RunContext(tenant_id=tenant, user_id="ana")
    editor = RunContext(tenant_id=tenant, user_id="eve", roles=frozenset({"editor"}))
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        app.invoke({"goal": "publish"}, _config("react"), context=context)
        [gate] = pending_gates(app, "react")
        assert (gate.request.kind, gate.request.tool, gate.request.roles) == (
            "tool",
            "publish_report",
            ["editor"],
        )
        assert not Path("reports/react.md").exists(), "published before the editor approved"
        out = decide(app, "react", Decision(decision="approve"), context=editor)
        events = rt.services.audit.timeline("react", tenant)
        effects = rt.services.effects.list(tenant, thread_id="react")

    assert out["status"] == "completed", out.get("error")
    assert Path("reports/react.md").read_text(encoding="utf-8") == "# React\n"
    assert [(e.tool, e.status, e.attempts) for e in effects] == [("publish_report", "completed", 1)]
    approvals = [e.payload for e in events if e.kind == "approval"]
    assert [(a["tool"], a["decision"], a["user"]) for a in approvals] == [
        ("publish_report", "approve", "eve")
    ]
    # The model saw the tool's result, once; the governed model accounted both calls.
    assert writer_model.remaining == 0
    assert sum(e.kind == "model_call" for e in events) == 2


# -- direct calls: callbacks off, thread pools -----------------------------------------

POLICY = """\
agents:
  direct:
    tools: {allow: [lookup, publish]}
tools:
  publish:
    side_effects: true
    requires_approval: {roles: [editor]}
"""


class DirectState(TypedDict, total=False):
    goal: str
    messages: Annotated[list[AnyMessage], add_messages]


def _direct_worker(ran: list[str]):
    """A factory whose node calls the tools itself, every way but through a ToolNode."""

    def factory(tools: list, model: Any) -> Any:
        by_name = {t.name: t for t in tools}

        def attempt(label: str, call) -> str:
            try:
                return f"{label}: ran {call()}"
            except PolicyViolation as exc:
                return f"{label}: refused {exc}"

        def work(state: DirectState) -> dict:
            delete, publish = by_name["delete_records"], by_name["publish"]
            with ThreadPoolExecutor(max_workers=1) as pool:
                lines = [
                    attempt(
                        "delete/callbacks-off",
                        lambda: delete.invoke({"table": "customers"}, config={"callbacks": []}),
                    ),
                    attempt(
                        "delete/pool",
                        lambda: pool.submit(delete.invoke, {"table": "customers"}).result(),
                    ),
                    attempt(
                        "publish/pool",
                        lambda: pool.submit(publish.invoke, {"text": "from the pool"}).result(),
                    ),
                    attempt(
                        "publish/callbacks-off",
                        lambda: publish.invoke({"text": "approved"}, config={"callbacks": []}),
                    ),
                ]
            return {"messages": [AIMessage("\n".join(lines))]}

        builder = StateGraph(DirectState)
        builder.add_node("work", work)
        builder.add_edge(START, "work")
        builder.add_edge("work", END)
        return builder

    return factory


def _direct_tools(ran: list[str]) -> list:
    @tool
    def lookup(key: str) -> str:
        """Look up a key."""
        ran.append(f"lookup {key}")
        return key

    @tool
    def delete_records(table: str) -> str:
        """Delete every record of a table."""
        ran.append(f"delete {table}")
        return "deleted"

    @tool
    def publish(text: str) -> str:
        """Publish a text."""
        ran.append(f"publish {text}")
        return f"published {text}"

    return [lookup, delete_records, publish]


def test_direct_calls_with_callbacks_off_or_from_a_thread_pool_are_governed(
    db_url, tmp_path, tenant
):
    ran: list[str] = []
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    agent = AgentSpec(name="direct", tools=_direct_tools(ran), graph=_direct_worker(ran))
    plan = Plan(tasks=[PlannedTask(id="t1", agent="direct", instruction="do it")])
    graph = podium.build_workflow([agent], name="direct", supervisor=plan, policies=policy)
    thread = f"{tenant}-direct"
    with podium.open_runtime(db_url) as rt:
        app = rt.compile(graph)
        app.invoke({"goal": "g"}, _config(thread), context=RunContext(tenant_id=tenant))
        [gate] = pending_gates(app, thread)
        assert (gate.request.tool, gate.request.args) == ("publish", {"text": "approved"})
        assert ran == [], "a tool ran before its gate was decided or against its policy"
        editor = RunContext(tenant_id=tenant, user_id="eve", roles=frozenset({"editor"}))
        out = decide(app, thread, Decision(decision="approve"), context=editor)
        events = rt.services.audit.timeline(thread, tenant)

    assert out["status"] == "completed", out.get("error")
    assert ran == ["publish approved"]
    lines = out["answer"].splitlines()
    assert lines[0].startswith("delete/callbacks-off: refused Refused by policy (default-deny)")
    assert lines[1].startswith("delete/pool: refused Refused by policy (default-deny)")
    assert lines[2].startswith("publish/pool: refused 'publish' needs approval")
    assert "carries no LangGraph step" in lines[2]
    assert lines[3] == "publish/callbacks-off: ran published approved"
    refused = [
        e.payload["details"].get("tool")
        for e in events
        if e.kind == "policy_decision" and not e.payload["allowed"]
    ]
    # Refused before the gate and again when the node ran anew on resume: each audited.
    assert refused == ["delete_records"] * 4
    outside = [e for e in events if e.kind == "error" and e.payload.get("gate")]
    assert [e.payload["tool"] for e in outside] == ["publish", "publish"]
    calls = [e.payload for e in events if e.kind == "tool_call"]
    assert [c["tool"] for c in calls] == ["publish"]
    assert [e.payload["decision"] for e in events if e.kind == "approval"] == ["approve"]


# -- a gated tool called from a pool thread still inside the graph step ----------------

POOL_POLICY = """\
agents:
  pooled:
    tools: {allow: [publish]}
tools:
  publish:
    side_effects: true
    requires_approval: {roles: [editor]}
"""

#: How the worker's node reaches the tool from another thread: a bare pool given the
#: node's config (`invoke`, or `ainvoke` on the pool thread's own event loop), a bare
#: pool running the call in a copy of the node's context, `asyncio.to_thread` from an
#: async node, and LangGraph's own `ToolNode` (sync tools run on LangGraph's executor).
POOL_WAYS = ["pool+config", "pool+config+ainvoke", "pool+copy_context", "to_thread", "tool_node"]


def _pool_worker(how: str, node_threads: list[int]):
    """A factory whose node (or ToolNode) runs the gated tool on another thread."""

    def factory(tools: list, model: Any) -> Any:
        [publish] = tools
        args = {"text": "from the pool"}

        def answer(text: str) -> dict:
            return {"messages": [AIMessage(text)]}

        def node(state: DirectState, config: RunnableConfig) -> dict:
            node_threads.append(threading.get_ident())
            with ThreadPoolExecutor(max_workers=1) as pool:
                if how == "pool+config":
                    future = pool.submit(publish.invoke, args, config)
                elif how == "pool+config+ainvoke":
                    future = pool.submit(asyncio.run, publish.ainvoke(args, config))
                else:
                    future = pool.submit(contextvars.copy_context().run, publish.invoke, args)
                try:
                    return answer(future.result())
                except PolicyViolation as exc:
                    return answer(f"refused: {exc}")

        async def anode(state: DirectState) -> dict:
            node_threads.append(threading.get_ident())
            try:
                return answer(await asyncio.to_thread(publish.invoke, args))
            except PolicyViolation as exc:
                return answer(f"refused: {exc}")

        def ask(state: DirectState) -> dict:
            node_threads.append(threading.get_ident())
            call = {"name": "publish", "args": args, "id": "call-pool", "type": "tool_call"}
            return {"messages": [AIMessage("", tool_calls=[call])]}

        def relay(state: DirectState) -> dict:
            return answer(state["messages"][-1].text)

        builder = StateGraph(DirectState)
        if how == "tool_node":
            builder.add_node("ask", ask)
            builder.add_node("tools", ToolNode(tools))
            builder.add_node("relay", relay)
            builder.add_edge(START, "ask")
            builder.add_edge("ask", "tools")
            builder.add_edge("tools", "relay")
            builder.add_edge("relay", END)
        else:
            builder.add_node("work", anode if how == "to_thread" else node)
            builder.add_edge(START, "work")
            builder.add_edge("work", END)
        return builder

    return factory


def _publish_tool(ran: list[tuple[str, int]]) -> Any:
    @tool
    def publish(text: str) -> str:
        """Publish a text."""
        ran.append((text, threading.get_ident()))
        return f"published {text}"

    return publish


@pytest.mark.parametrize("decision", ["approve", "reject"])
@pytest.mark.parametrize("how", POOL_WAYS)
async def test_a_gated_tool_called_from_a_thread_pool_waits_at_its_gate(
    how, decision, durable_url, tmp_path, tenant
):
    ran: list[tuple[str, int]] = []
    node_threads: list[int] = []
    policy = tmp_path / "policy.yaml"
    policy.write_text(POOL_POLICY, encoding="utf-8")
    agent = AgentSpec(
        name="pooled", tools=[_publish_tool(ran)], graph=_pool_worker(how, node_threads)
    )
    plan = Plan(tasks=[PlannedTask(id="t1", agent="pooled", instruction="publish")])
    graph = podium.build_workflow([agent], name="pooled", supervisor=plan, policies=policy)
    thread = f"{tenant}-{how}"
    ana = RunContext(tenant_id=tenant, user_id="ana")
    editor = RunContext(tenant_id=tenant, user_id="eve", roles=frozenset({"editor"}))
    verdict = Decision(decision=decision)
    if how == "to_thread":  # an async node: the run is async too
        async with podium.open_async_runtime(durable_url) as art:
            app = art.compile(graph)
            await app.ainvoke({"goal": "g"}, _config(thread), context=ana)
            gates = await podium.apending_gates(app, thread)
            assert ran == [], "the tool ran before its gate was decided"
            out = await podium.adecide(app, thread, verdict, context=editor)
            events = art.services.audit.timeline(thread, tenant)
            effects = art.services.effects.list(tenant, thread_id=thread)
    else:
        with podium.open_runtime(durable_url) as rt:
            app = rt.compile(graph)
            app.invoke({"goal": "g"}, _config(thread), context=ana)
            gates = podium.pending_gates(app, thread)
            assert ran == [], "the tool ran before its gate was decided"
            out = podium.decide(app, thread, verdict, context=editor)
            events = rt.services.audit.timeline(thread, tenant)
            effects = rt.services.effects.list(tenant, thread_id=thread)

    [gate] = gates
    assert (gate.request.kind, gate.request.tool, gate.request.args) == (
        "tool",
        "publish",
        {"text": "from the pool"},
    )
    assert out["status"] == "completed", out.get("error")
    approvals = [e.payload for e in events if e.kind == "approval"]
    assert [(a["decision"], a["user"]) for a in approvals] == [(decision, "eve")]
    assert not [e for e in events if e.kind == "error" and e.payload.get("gate")]
    if decision == "approve":
        [(text, ran_on)] = ran
        assert text == "from the pool"
        assert ran_on not in node_threads, "the tool ran on the node's own thread"
        assert [(e.tool, e.status, e.attempts) for e in effects] == [("publish", "completed", 1)]
        assert out["answer"].endswith("published from the pool")
    else:
        assert ran == []
        assert effects == []
        assert "Rejected by eve" in out["answer"]


def test_a_gated_call_from_a_bare_pool_thread_is_refused_with_the_fix(tmp_path, tenant):
    ran: list[tuple[str, int]] = []

    def factory(tools: list, model: Any) -> Any:
        [publish] = tools

        def node(state: DirectState) -> dict:
            with ThreadPoolExecutor(max_workers=1) as pool:
                try:
                    text = pool.submit(publish.invoke, {"text": "lost"}).result()
                except PolicyViolation as exc:
                    text = f"refused: {exc}"
            return {"messages": [AIMessage(text)]}

        builder = StateGraph(DirectState)
        builder.add_node("work", node)
        builder.add_edge(START, "work")
        builder.add_edge("work", END)
        return builder

    policy = tmp_path / "policy.yaml"
    policy.write_text(POOL_POLICY, encoding="utf-8")
    agent = AgentSpec(name="pooled", tools=[_publish_tool(ran)], graph=factory)
    plan = Plan(tasks=[PlannedTask(id="t1", agent="pooled", instruction="publish")])
    graph = podium.build_workflow([agent], name="pooled", supervisor=plan, policies=policy)
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        out = app.invoke({"goal": "g"}, _config("bare"), context=RunContext(tenant_id=tenant))
        events = rt.services.audit.timeline("bare", tenant)

    assert podium.pending_gates(app, "bare") == [] and ran == []
    assert out["answer"].startswith("refused: 'publish' needs approval")
    # Why (no LangGraph step in that thread) and how to fix it.
    for words in ("carries no LangGraph step", "tool.invoke(args, config)", "copy_context"):
        assert words in out["answer"]
    assert [e.payload["gate"] for e in events if e.kind == "error"] == ["outside_graph_step"]


# -- a compiled graph's own tools: the guard raises the same gate -----------------------


def test_the_guard_gates_a_compiled_graphs_own_tool_like_a_governed_one(tmp_path, tenant):
    ran: list[str] = []
    lookup, _delete, publish = _direct_tools(ran)
    model = ScriptedChatModel(
        responses=[tool_call("publish", {"text": "hello"}, id="call-p"), "done"], name="own"
    )
    worker = _react([lookup, publish], model)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.replace("direct", "own"), encoding="utf-8")
    plan = Plan(tasks=[PlannedTask(id="t1", agent="own", instruction="publish")])
    graph = podium.build_workflow(
        [AgentSpec(name="own", graph=worker)], name="own", supervisor=plan, policies=policy
    )
    thread = f"{tenant}-own"
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        app.invoke({"goal": "g"}, _config(thread), context=RunContext(tenant_id=tenant))
        [gate] = pending_gates(app, thread)
        assert (gate.request.kind, gate.request.tool) == ("tool", "publish")
        assert ran == []
        editor = RunContext(tenant_id=tenant, user_id="eve", roles=frozenset({"editor"}))
        out = decide(app, thread, Decision(decision="approve"), context=editor)

    assert out["status"] == "completed", out.get("error")
    assert out["answer"] == "done"
    assert ran == ["publish hello"]


@pytest.mark.parametrize("how", ["pool+copy_context", "pool+config"])
def test_the_guard_gates_a_compiled_graphs_own_tool_called_from_a_pool(how, tmp_path, tenant):
    ran: list[tuple[str, int]] = []
    own_publish = _publish_tool(ran)

    def work(state: DirectState, config: RunnableConfig) -> dict:
        args = {"text": "from the pool"}
        with ThreadPoolExecutor(max_workers=1) as pool:
            if how == "pool+config":
                future = pool.submit(own_publish.invoke, args, config)
            else:
                future = pool.submit(contextvars.copy_context().run, own_publish.invoke, args)
            try:
                return {"messages": [AIMessage(future.result())]}
            except PolicyViolation as exc:
                return {"messages": [AIMessage(f"refused: {exc}")]}

    builder = StateGraph(DirectState)
    builder.add_node("work", work)
    builder.add_edge(START, "work")
    builder.add_edge("work", END)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POOL_POLICY.replace("pooled", "own"), encoding="utf-8")
    plan = Plan(tasks=[PlannedTask(id="t1", agent="own", instruction="publish")])
    agent = AgentSpec(name="own", graph=builder.compile())
    graph = podium.build_workflow([agent], name="own", supervisor=plan, policies=policy)
    thread = f"{tenant}-own-pool"
    editor = RunContext(tenant_id=tenant, user_id="eve", roles=frozenset({"editor"}))
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        out = app.invoke({"goal": "g"}, _config(thread), context=RunContext(tenant_id=tenant))
        gates = podium.pending_gates(app, thread)
        assert ran == []
        if gates:
            out = podium.decide(app, thread, Decision(decision="approve"), context=editor)

    if how == "pool+copy_context":
        assert [g.request.tool for g in gates] == ["publish"]
        assert out["answer"] == "published from the pool"
        assert [text for text, _ in ran] == ["from the pool"]
    else:  # the guard sees no config: the call carries no step, and is refused
        assert gates == [] and ran == []
        assert "carries no LangGraph step" in out["answer"]
        assert "contextvars.copy_context().run" in out["answer"]


@pytest.mark.parametrize("answer", ["not a graph"])
def test_a_factory_that_returns_no_graph_fails_its_task_with_the_fix(answer, tenant):
    agent = AgentSpec(name="broken", graph=lambda tools, model: answer)
    plan = Plan(tasks=[PlannedTask(id="t1", agent="broken", instruction="x")])
    graph = podium.build_workflow([agent], name="broken", supervisor=plan)
    with podium.open_runtime("memory://") as rt:
        out = rt.compile(graph).invoke(
            {"goal": "g"}, _config("b"), context=RunContext(tenant_id=tenant)
        )
    assert out["tasks"]["t1"]["status"] == "dead_lettered"
    assert "the graph factory returned str, not a LangGraph graph" in out["tasks"]["t1"]["error"]
