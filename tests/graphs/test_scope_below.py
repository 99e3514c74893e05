"""The task's scope reaches every call below the task, however the code there runs.

A custom worker may call a graph of its own from a node, as LangGraph shows for a
subgraph with its own state (`helper.invoke(inputs)`, no config). When that graph was
compiled by `rt.compile`, its own config carries the runtime's binding, which LangGraph
merges over the node's config: the calls in it must still be made by the task (its
policies, gates and budgets), not by nobody.
"""

from __future__ import annotations

import textwrap
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext
from podium.errors import PolicyViolation
from podium.gates.decision import adecide, apending_gates, decide, pending_gates
from podium.gates.request import Decision
from podium.graphs import build_worker
from podium.testing import tool_call
from podium.tools import search_corpus
from tests.graphs.test_gates import POLICY as PAYMENT_POLICY
from tests.graphs.test_gates import Payments

SCOPE_POLICY = """
global:
  tools: {allow: [search_corpus]}
agents:
  outsider:
    data_scopes: []
"""


class State(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    goal: str


def _policy(tmp_path, text: str):
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def _config(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


def _searcher() -> StateGraph:
    """A helper graph reading the corpus (a data scope the policy may refuse)."""

    def search(state: State) -> dict:
        try:
            found = search_corpus.invoke({"query": "heat pump sales"})
        except PolicyViolation as exc:
            found = f"refused: {exc}"
        return {"messages": [AIMessage(found)]}

    builder = StateGraph(State)
    builder.add_node("search", search)
    builder.add_edge(START, "search")
    builder.add_edge("search", END)
    return builder


def _delegating(helper: Any, how: str) -> Any:
    """A custom worker whose node hands the work to `helper`, as LangGraph's docs call a
    subgraph with its own state: no config, or one of its own without podium's keys."""

    def inputs(state: State) -> dict:
        return {"messages": [HumanMessage(state["messages"][-1].content)]}

    def work(state: State) -> dict:
        if how == "callbacks":
            out = helper.invoke(inputs(state), {"callbacks": []})
        elif how == "with_config":
            out = helper.with_config(run_name="helper").invoke(inputs(state))
        else:
            out = helper.invoke(inputs(state))
        return {"messages": [AIMessage(out["messages"][-1].content)]}

    async def awork(state: State) -> dict:
        out = await helper.ainvoke(inputs(state))
        return {"messages": [AIMessage(out["messages"][-1].content)]}

    builder = StateGraph(State)
    builder.add_node("work", RunnableLambda(work, afunc=awork))
    builder.add_edge(START, "work")
    builder.add_edge("work", END)
    return builder.compile()


@pytest.mark.parametrize("how", ["invoke", "callbacks", "with_config", "ainvoke"])
async def test_a_runtime_compiled_helper_below_a_custom_worker_keeps_the_tasks_data_scope(
    how, tmp_path, tenant
):
    plan = Plan(tasks=[PlannedTask(id="t1", agent="outsider", instruction="search")])
    thread = f"{tenant}-scope-{how}"
    if how == "ainvoke":
        async with podium.open_async_runtime("memory://") as rt:
            worker = _delegating(rt.compile(_searcher()), how)
            graph = podium.build_workflow(
                [AgentSpec(name="outsider", graph=worker)],
                name="scoped",
                supervisor=plan,
                policies=_policy(tmp_path, SCOPE_POLICY),
            )
            out = await rt.compile(graph).ainvoke(
                {"goal": "g"}, _config(thread), context=RunContext(tenant_id=tenant)
            )
            events = rt.services.audit.timeline(thread, tenant)
    else:
        with podium.open_runtime("memory://") as rt:
            worker = _delegating(rt.compile(_searcher()), how)
            graph = podium.build_workflow(
                [AgentSpec(name="outsider", graph=worker)],
                name="scoped",
                supervisor=plan,
                policies=_policy(tmp_path, SCOPE_POLICY),
            )
            out = rt.compile(graph).invoke(
                {"goal": "g"}, _config(thread), context=RunContext(tenant_id=tenant)
            )
            events = rt.services.audit.timeline(thread, tenant)

    assert out["status"] == "completed", out.get("error")
    assert out["answer"].startswith("refused: "), out["answer"]
    assert "agents.outsider.data_scopes" in out["answer"]
    decisions = [e.payload for e in events if e.kind == "policy_decision"]
    assert [(d["what"], d["allowed"]) for d in decisions] == [("data_scope", False)]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["invoke", "ainvoke"])
async def test_podiums_worker_compiled_by_the_runtime_inside_a_custom_worker_raises_the_gate(
    asynchronous, scripted, tmp_path, tenant
):
    payments = Payments()
    model = scripted(
        tool_call("send_payment", {"to": "bob", "amount": 10}), "paid bob", name="payer"
    )
    spec = AgentSpec(name="payer", tools=[payments.tool()])
    plan = Plan(tasks=[PlannedTask(id="t1", agent="payer", instruction="pay bob 10")])
    thread = f"{tenant}-gate"
    editor = RunContext(tenant_id=tenant, user_id="eve", roles=frozenset({"editor"}))

    def workflow(rt: Any) -> Any:
        helper = rt.compile(build_worker(spec, model))
        return podium.build_workflow(
            [AgentSpec(name="payer", graph=_delegating(helper, "invoke"))],
            name="pay",
            supervisor=plan,
            policies=_policy(tmp_path, PAYMENT_POLICY),
        )

    if asynchronous:
        async with podium.open_async_runtime(f"sqlite:///{tmp_path / 'a.db'}") as rt:
            app = rt.compile(workflow(rt))
            await app.ainvoke({"goal": "g"}, _config(thread), context=RunContext(tenant_id=tenant))
            gates = await apending_gates(app, thread)
            sent_at_gate = list(payments.sent)
            if gates:
                out = await adecide(app, thread, Decision(decision="approve"), context=editor)
    else:
        with podium.open_runtime(f"sqlite:///{tmp_path / 's.db'}") as rt:
            app = rt.compile(workflow(rt))
            app.invoke({"goal": "g"}, _config(thread), context=RunContext(tenant_id=tenant))
            gates = pending_gates(app, thread)
            sent_at_gate = list(payments.sent)
            if gates:
                out = decide(app, thread, Decision(decision="approve"), context=editor)

    assert sent_at_gate == [], "paid with no approval"
    assert [(g.request.tool, g.request.agent, g.request.task_id) for g in gates] == [
        ("send_payment", "payer", "t1")
    ]
    assert out["status"] == "completed", out.get("error")
    assert payments.sent == [("bob", 10)]
