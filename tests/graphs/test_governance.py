"""Policies enforced by the runtime on compiled workflows.

The pure `evaluate_*` functions are table-tested in tests/policies/; here every policy
is written as YAML, loaded by `build_workflow(policies=path)`, and observed from the
outside of a compiled graph: what the tools did, what the scripted models were shown,
what the run returned and what the audit log, the budget store and the usage ledger hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from pydantic import PrivateAttr

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext
from podium.errors import PolicyError
from podium.policies import CallScope, load_policies, rate_limits_for
from podium.testing import ScriptedChatModel, tool_call
from podium.tools import search_corpus
from tests.helpers import BUDGET, USED, budget_race

ONE_TASK = Plan(tasks=[PlannedTask(id="t1", agent="worker", instruction="do the job")])
EMAIL, PHONE, CARD = "ana.lopez@example.com", "+1 415 555 0100", "4111 1111 1111 1111"
PII_MARKERS = ("[email redacted]", "[phone redacted]", "[card redacted]")


def _write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def _run(rt, graph, thread: str, tenant: str) -> dict:
    return rt.compile(graph).invoke(
        {"goal": "g"},
        {"configurable": {"thread_id": thread}},
        context=RunContext(tenant_id=tenant),
    )


def _decisions(rt, thread: str, tenant: str) -> list[dict[str, Any]]:
    """Payloads of the thread's `policy_decision` audit events."""
    events = rt.services.audit.timeline(thread, tenant)
    return [e.payload for e in events if e.kind == "policy_decision"]


class Tools:
    """Tools that record every call that really ran (their side effect)."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, Any]] = []

    def lookup(self):
        @tool
        def lookup(key: str) -> str:
            """Look up the value stored under a key."""
            self.ran.append(("lookup", key))
            return f"value of {key}"

        return lookup

    def delete_records(self):
        @tool
        def delete_records(table: str) -> str:
            """Delete every record of a table."""
            self.ran.append(("delete_records", table))
            return f"deleted {table}"

        return delete_records

    def read_file(self):
        @tool
        def read_file(path: str) -> str:
            """Read a file."""
            self.ran.append(("read_file", path))
            return f"contents of {path}"

        return read_file

    def transfer(self):
        @tool
        def transfer(amount: float) -> str:
            """Transfer an amount of money."""
            self.ran.append(("transfer", amount))
            return f"transferred {amount}"

        return transfer

    def ping(self):
        @tool
        def ping(n: int) -> str:
            """Ping the service."""
            self.ran.append(("ping", n))
            return f"pong {n}"

        return ping

    def customer(self):
        @tool
        def customer(name: str) -> str:
            """Fetch a customer's contact record."""
            self.ran.append(("customer", name))
            return f"{name}: mail {EMAIL}, call {PHONE}; card on file {CARD}."

        return customer


def _ran(tools: Tools, name: str) -> list[Any]:
    return [arg for tool_name, arg in tools.ran if tool_name == name]


# -- tool access ---------------------------------------------------------------------------

DENY_POLICY = """
agents:
  worker:
    tools: {allow: [lookup]}
"""


def _denied_tool_workflow(scripted, tools: Tools, tmp_path: Path):
    model = scripted(
        tool_call("delete_records", {"table": "customers"}),
        tool_call("lookup", {"key": "customers"}),
        "customers left untouched",
        name="worker",
    )
    agent = AgentSpec(name="worker", tools=[tools.lookup(), tools.delete_records()], model=model)
    graph = podium.build_workflow(
        [agent], name="gov", supervisor=ONE_TASK, policies=_write(tmp_path, DENY_POLICY)
    )
    return graph, model


def _assert_denied_tool_refused(out, model, tools: Tools, decisions) -> None:
    assert _ran(tools, "delete_records") == [], "a tool no rule allows was run"
    assert _ran(tools, "lookup") == ["customers"], "the allowed tool should still run"
    refusal = model.calls[1][-1]
    assert isinstance(refusal, ToolMessage)
    assert refusal.status == "error"
    assert refusal.name == "delete_records"
    assert "Refused by policy (default-deny)" in refusal.content
    assert "'delete_records'" in refusal.content
    assert out["status"] == "completed"
    assert out["answer"] == "customers left untouched"
    refused = [d for d in decisions if d["what"] == "tool"]
    assert len(refused) == 1, decisions
    assert refused[0]["allowed"] is False
    assert refused[0]["rule"] == "default-deny"
    assert refused[0]["details"]["tool"] == "delete_records"


def test_denied_tool_is_refused_to_the_model_and_the_run_goes_on(scripted, tmp_path, tenant):
    tools = Tools()
    graph, model = _denied_tool_workflow(scripted, tools, tmp_path)
    with podium.open_runtime("memory://") as rt:
        out = _run(rt, graph, "deny", tenant)
        decisions = _decisions(rt, "deny", tenant)
    _assert_denied_tool_refused(out, model, tools, decisions)


async def test_denied_tool_is_refused_in_async_runs(scripted, tmp_path, tenant):
    tools = Tools()
    graph, model = _denied_tool_workflow(scripted, tools, tmp_path)
    async with podium.open_async_runtime("memory://") as rt:
        out = await rt.compile(graph).ainvoke(
            {"goal": "g"},
            {"configurable": {"thread_id": "deny-async"}},
            context=RunContext(tenant_id=tenant),
        )
        decisions = _decisions(rt, "deny-async", tenant)
    _assert_denied_tool_refused(out, model, tools, decisions)


def test_without_a_policy_every_tool_is_denied_and_the_refusal_says_how_to_allow(scripted, tenant):
    tools = Tools()
    model = scripted(tool_call("lookup", {"key": "customers"}), "nothing looked up", name="worker")
    agent = AgentSpec(name="worker", tools=[tools.lookup()], model=model)
    with pytest.warns(UserWarning, match=r"workflow 'gov' has no policy.*lookup \(worker\)"):
        graph = podium.build_workflow([agent], name="gov", supervisor=ONE_TASK)
    with podium.open_runtime("memory://") as rt:
        out = _run(rt, graph, "baseline", tenant)
        decisions = _decisions(rt, "baseline", tenant)
    assert tools.ran == [], "a tool ran although no policy allows it"
    refusal = model.calls[1][-1]
    assert isinstance(refusal, ToolMessage) and refusal.status == "error"
    assert "the workflow has no policy" in refusal.content
    assert "`agents.worker.tools.allow: [lookup]`" in refusal.content
    assert "build_workflow(policies=...)" in refusal.content
    assert out["status"] == "completed" and out["answer"] == "nothing looked up"
    [refused] = [d for d in decisions if d["what"] == "tool"]
    assert (refused["allowed"], refused["rule"]) == (False, "default-deny")


def test_a_workflow_without_tools_builds_without_a_policy_warning(scripted, recwarn):
    agent = AgentSpec(name="worker", model=scripted(name="worker"))
    podium.build_workflow([agent], name="quiet", supervisor=ONE_TASK)
    assert not [w for w in recwarn if "no policy" in str(w.message)]


# -- argument constraints ----------------------------------------------------------------

ARGS_POLICY = """
agents:
  worker:
    tools: {allow: [read_file, transfer]}
tools:
  read_file:
    args:
      path: {under: reports/}
  transfer:
    args:
      amount: {min: 0, max: 100}
"""


def test_argument_constraints_refuse_the_call_and_the_run_goes_on(scripted, tmp_path, tenant):
    tools = Tools()
    model = scripted(
        tool_call("read_file", {"path": "../etc/passwd"}),
        tool_call("transfer", {"amount": 5000}),
        tool_call("read_file", {"path": "reports/q1.md"}),
        tool_call("transfer", {"amount": 40}),
        "done within the rules",
        name="worker",
    )
    agent = AgentSpec(name="worker", tools=[tools.read_file(), tools.transfer()], model=model)
    graph = podium.build_workflow(
        [agent], name="gov", supervisor=ONE_TASK, policies=_write(tmp_path, ARGS_POLICY)
    )
    with podium.open_runtime("memory://") as rt:
        out = _run(rt, graph, "args", tenant)
        decisions = _decisions(rt, "args", tenant)

    assert tools.ran == [("read_file", "reports/q1.md"), ("transfer", 40)]
    path_refusal, amount_refusal = model.calls[1][-1], model.calls[2][-1]
    for message, rule in (
        (path_refusal, "tools.read_file.args.path.under"),
        (amount_refusal, "tools.transfer.args.amount.max"),
    ):
        assert isinstance(message, ToolMessage) and message.status == "error"
        assert message.content.startswith(f"Refused by policy ({rule})"), message.content
    assert "'../etc/passwd'" in path_refusal.content
    assert "5000" in amount_refusal.content
    assert model.calls[3][-1].content == "contents of reports/q1.md"
    assert model.calls[4][-1].content == "transferred 40.0"
    assert out["status"] == "completed"
    assert out["answer"] == "done within the rules"
    refused = [(d["rule"], d["allowed"]) for d in decisions if d["what"] == "arguments"]
    assert refused == [
        ("tools.read_file.args.path.under", False),
        ("tools.transfer.args.amount.max", False),
    ]


# -- custom worker graphs ----------------------------------------------------------------


class CustomState(TypedDict, total=False):
    goal: str
    messages: Annotated[list[AnyMessage], add_messages]


def _hand_written_agent(model, tools: list) -> Any:
    """A plain LangGraph agent: model -> ToolNode -> model, nothing from podium."""
    bound = model.bind_tools(tools)

    def agent(state: CustomState) -> dict:
        return {"messages": [bound.invoke(state["messages"])]}

    builder = StateGraph(CustomState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition, ["tools", END])
    builder.add_edge("tools", "agent")
    return builder.compile()


def _create_agent(model, tools: list) -> Any:
    from langchain.agents import create_agent

    return create_agent(model, tools)


@pytest.mark.parametrize("make_graph", [_hand_written_agent, _create_agent])
def test_custom_graph_worker_cannot_call_a_denied_tool(make_graph, tmp_path, tenant):
    tools = Tools()
    # Not the `scripted` fixture: how many calls this model gets depends on how the
    # runtime refuses; what must hold is below.
    model = ScriptedChatModel(
        responses=[
            tool_call("delete_records", {"table": "customers"}),
            tool_call("lookup", {"key": "customers"}),
            "gave up",
        ],
        name="custom",
    )
    worker = make_graph(model, [tools.lookup(), tools.delete_records()])
    policy = _write(tmp_path, "agents:\n  custom:\n    tools: {allow: [lookup]}\n")
    plan = Plan(tasks=[PlannedTask(id="t1", agent="custom", instruction="clean up")])
    graph = podium.build_workflow(
        [AgentSpec(name="custom", graph=worker)], name="gov", supervisor=plan, policies=policy
    )
    with podium.open_runtime("memory://") as rt:
        out = _run(rt, graph, "custom", tenant)
        decisions = _decisions(rt, "custom", tenant)

    assert _ran(tools, "delete_records") == [], (
        "a custom graph worker ran a tool its policy denies; status "
        f"{out['status']!r}, answer {out['answer']!r}"
    )
    refused = [d for d in decisions if d["what"] == "tool" and not d["allowed"]]
    assert [(d["rule"], d["details"].get("tool")) for d in refused] == [
        ("default-deny", "delete_records")
    ], decisions
    # As with the built-in worker, the refusal goes back to the model and the run goes on.
    refusal = model.calls[1][-1]
    assert isinstance(refusal, ToolMessage)
    assert refusal.content.startswith("Refused by policy (default-deny)"), refusal.content
    assert _ran(tools, "lookup") == ["customers"]
    assert out["status"] == "completed"
    assert out["answer"] == "gave up"


# -- budgets ------------------------------------------------------------------------------


def test_parallel_workers_never_overspend_the_run_budget(db_url, tmp_path, tenant):
    graph, models = budget_race(tmp_path)
    thread = f"{tenant}-race"
    with podium.open_runtime(db_url) as rt:
        out = _run(rt, graph, thread, tenant)
        spent = rt.services.budgets.spent(tenant, f"run:{thread}:1", "tokens")
        held = rt.services.budgets.reserved(tenant, f"run:{thread}:1", "tokens")
        ledger = rt.services.ledger.totals(tenant, by="thread", thread_id=thread)

    statuses = {t["id"]: t["status"] for t in out["tasks"].values()}
    completed = [t for t, s in statuses.items() if s == "completed"]
    failed = [t for t in out["tasks"].values() if t["status"] == "failed"]
    assert completed, statuses
    assert failed, f"every task fit a budget too small for all of them: {statuses}"
    assert len(completed) + len(failed) == len(models), statuses
    for task in failed:
        assert "BudgetExceeded" in task["error"] and "budget" in task["error"], task["error"]
        assert f"run:{thread}:1" in task["error"]
    assert out["status"] == "partial"
    assert spent <= BUDGET
    assert spent == USED * len(completed)
    assert held == 0, "a reservation was left behind"
    assert sum(m.remaining == 0 for m in models.values()) == len(completed)
    [row] = ledger
    assert row.total_tokens <= BUDGET
    assert row.total_tokens == spent
    assert row.calls == len(completed)


# -- rate limits --------------------------------------------------------------------------

RATE_POLICY = """
agents:
  worker:
    tools: {allow: [ping]}
tools:
  ping:
    rate_limit: {calls: 2, per: 60}
"""


class FakeTime:
    """A clock that moves only when the runtime sleeps (if `advance`), recording each sleep."""

    def __init__(self, *, advance: bool = True) -> None:
        self.now = 1_800_000_000.0
        self.advance = advance
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.advance:
            self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def _pings(scripted, tools: Tools, tmp_path: Path):
    replies = [tool_call("ping", {"n": n}) for n in (1, 2, 3)] + ["pinged"]
    model = scripted(*replies, name="worker")
    agent = AgentSpec(name="worker", tools=[tools.ping()], model=model)
    graph = podium.build_workflow(
        [agent], name="gov", supervisor=ONE_TASK, policies=_write(tmp_path, RATE_POLICY)
    )
    return graph, model


def test_rate_limited_tool_call_waits_for_the_bucket(scripted, tmp_path, tenant):
    tools, fake = Tools(), FakeTime()
    graph, _ = _pings(scripted, tools, tmp_path)
    with podium.open_runtime(
        "memory://", clock=fake.clock, sleep=fake.sleep, asleep=fake.asleep, rate_wait=120
    ) as rt:
        out = _run(rt, graph, "rate", tenant)
    assert _ran(tools, "ping") == [1, 2, 3]
    # Two calls empty the bucket; the third waits for one token: 60 s / 2 calls = 30 s.
    assert fake.sleeps == [pytest.approx(30.0)]
    assert out["status"] == "completed"


async def test_rate_limited_tool_call_waits_in_async_runs(scripted, tmp_path, tenant):
    tools, fake = Tools(), FakeTime()
    graph, _ = _pings(scripted, tools, tmp_path)
    async with podium.open_async_runtime(
        "memory://", clock=fake.clock, sleep=fake.sleep, asleep=fake.asleep, rate_wait=120
    ) as rt:
        out = await rt.compile(graph).ainvoke(
            {"goal": "g"},
            {"configurable": {"thread_id": "rate-async"}},
            context=RunContext(tenant_id=tenant),
        )
    assert _ran(tools, "ping") == [1, 2, 3]
    assert fake.sleeps == [pytest.approx(30.0)]
    assert out["status"] == "completed"


def test_rate_limited_tool_call_is_refused_after_the_wait_budget(tmp_path, tenant):
    # Time stands still: two calls empty the bucket, the third books the next token
    # (30 s away, within rate_wait=40), the fourth's turn would come 60 s away, and it is
    # refused instead of run.
    tools, fake = Tools(), FakeTime(advance=False)
    replies = [tool_call("ping", {"n": n}) for n in (1, 2, 3, 4)] + ["pinged"]
    model = ScriptedChatModel(responses=replies, name="worker")
    agent = AgentSpec(name="worker", tools=[tools.ping()], model=model)
    graph = podium.build_workflow(
        [agent], name="gov", supervisor=ONE_TASK, policies=_write(tmp_path, RATE_POLICY)
    )
    with podium.open_runtime(
        "memory://", clock=fake.clock, sleep=fake.sleep, asleep=fake.asleep, rate_wait=40
    ) as rt:
        out = _run(rt, graph, "rate-refused", tenant)
    assert _ran(tools, "ping") == [1, 2, 3]
    assert fake.sleeps == [pytest.approx(30.0)]
    bucket = f"tool:{tenant}:ping"
    seen = [m.content for call in model.calls[4:] for m in call[-1:] if isinstance(m, ToolMessage)]
    told_model = any(bucket in text and "rate limit" in text for text in seen)
    task = out["tasks"]["t1"]
    failed_task = task["status"] != "completed" and bucket in (task.get("error") or "")
    assert told_model or failed_task, (out["status"], task.get("error"), seen)


SHARED_SCRIPT = """
import json, sys

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext
from podium.testing import ScriptedChatModel, tool_call

url, tenant, policy, label, attempts = sys.argv[1:6]
ran = []


@tool
def ping(n: int) -> str:
    \"\"\"Ping the service.\"\"\"
    ran.append(n)
    return f"pong {n}"


def no_sleep(seconds):
    raise AssertionError(f"rate_wait=0 must never sleep, slept {seconds}")


replies = [tool_call("ping", {"n": n}) for n in range(int(attempts))] + ["done"]
model = ScriptedChatModel(responses=replies, name=label)
plan = Plan(tasks=[PlannedTask(id="t1", agent="worker", instruction="ping")])
graph = podium.build_workflow(
    [AgentSpec(name="worker", tools=[ping], model=model)],
    name="shared",
    supervisor=plan,
    policies=policy,
)
with podium.open_runtime(url, sleep=no_sleep, rate_wait=0.0) as rt:
    out = rt.compile(graph).invoke(
        {"goal": "g"},
        {"configurable": {"thread_id": f"{tenant}-{label}"}},
        context=RunContext(tenant_id=tenant),
    )
print(json.dumps({"ran": len(ran), "status": out["status"]}))
"""

CAPACITY, ATTEMPTS = 4, 3  # two processes try 6 calls against one bucket of 4


def test_rate_limit_is_shared_by_processes_on_postgres(postgres_url, tmp_path, tenant):
    policy = _write(
        tmp_path,
        f"""
        agents:
          worker:
            tools: {{allow: [ping]}}
        tools:
          ping:
            rate_limit: {{calls: {CAPACITY}, per: 3600}}
        """,
    )
    script = tmp_path / "shared_rate.py"
    script.write_text(SHARED_SCRIPT, encoding="utf-8")
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), postgres_url, tenant, str(policy), label, str(ATTEMPTS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        for label in ("a", "b")
    ]
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr[-2000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    total = sum(r["ran"] for r in results)
    assert total <= CAPACITY, results
    # Together they tried more than the bucket holds, so the bucket ended empty.
    assert total == CAPACITY, results
    limits = rate_limits_for(
        load_policies(policy), CallScope(tenant=tenant, agent="worker"), tool="ping"
    )
    assert [limit.key for limit in limits] == [f"tool:{tenant}:ping"]
    with podium.open_runtime(postgres_url, rate_wait=0.0) as rt:
        refused = rt.services.ratelimiter.try_acquire(tenant, limits)
    assert not refused.allowed and refused.key == f"tool:{tenant}:ping"


# -- output filters ----------------------------------------------------------------------

PII_POLICY = """
global:
  output:
    pii: {email: true, phone: true, card: true}
agents:
  worker:
    tools: {allow: [customer]}
"""


def test_pii_in_tool_results_and_the_answer_is_redacted(scripted, tmp_path, tenant):
    tools = Tools()
    model = scripted(
        tool_call("customer", {"name": "Ana"}),
        f"Reach Ana at {EMAIL} or {PHONE}; she pays with {CARD}.",
        name="worker",
    )
    agent = AgentSpec(name="worker", tools=[tools.customer()], model=model)
    graph = podium.build_workflow(
        [agent], name="gov", supervisor=ONE_TASK, policies=_write(tmp_path, PII_POLICY)
    )
    with podium.open_runtime("memory://") as rt:
        out = _run(rt, graph, "pii", tenant)
        decisions = _decisions(rt, "pii", tenant)

    assert _ran(tools, "customer") == ["Ana"]
    seen = model.calls[1][-1]
    assert isinstance(seen, ToolMessage)
    for marker in PII_MARKERS:
        assert marker in seen.content, seen.content
    for raw in (EMAIL, PHONE, CARD, "4111"):
        assert raw not in seen.content, seen.content
        assert raw not in out["answer"], out["answer"]
    for marker in PII_MARKERS:
        assert marker in out["answer"], out["answer"]
    assert out["messages"][-1].content == out["answer"]
    kinds = {(d["what"], d["details"].get("kind")) for d in decisions}
    assert {("output", "email"), ("output", "phone"), ("output", "card")} <= kinds
    assert {("answer", "email"), ("answer", "phone"), ("answer", "card")} <= kinds


# -- model routing -----------------------------------------------------------------------


def test_policy_routes_the_agent_to_another_model(scripted, tmp_path, tenant):
    never = scripted(name="worker")  # an empty script: any call fails the test
    policy = _write(tmp_path, "agents:\n  worker:\n    model: {use: demo}\n")
    graph = podium.build_workflow(
        [AgentSpec(name="worker", model=never)], name="gov", supervisor=ONE_TASK, policies=policy
    )
    with podium.open_runtime("memory://") as rt:
        out = _run(rt, graph, "route", tenant)
        decisions = _decisions(rt, "route", tenant)
        by_model = rt.services.ledger.totals(tenant, by="model", thread_id="route")
    assert never.calls == []
    assert out["status"] == "completed"
    assert out["answer"]
    assert [row.key for row in by_model] == ["demo"]
    [routed] = [d for d in decisions if d["what"] == "model_route"]
    assert routed["rule"] == "agents.worker.model.use"
    assert routed["details"]["model"] == "demo"


ROUTE_UNDER_BUDGET_POLICY = """
workflows:
  gov:
    budgets:
      per_run: {tokens: 10000}
agents:
  worker:
    model: {use: demo}
"""


async def test_a_model_route_under_a_budget_reads_no_spend_on_the_event_loop(
    scripted, tmp_path, tenant, postgres_url, monkeypatch
):
    # No downgrade rule: what was spent cannot change the route, and an async model call
    # prepares on the event loop, where a database read would block every other run.
    never = scripted(name="worker")  # routed to demo: any call fails the test
    graph = podium.build_workflow(
        [AgentSpec(name="worker", model=never)],
        name="gov",
        supervisor=ONE_TASK,
        policies=_write(tmp_path, ROUTE_UNDER_BUDGET_POLICY),
    )
    on_loop: list[tuple[str, str]] = []
    async with podium.open_async_runtime(postgres_url) as rt:
        budgets, spent = rt.services.budgets, rt.services.budgets.spent

        def watched(tenant_id: str, scope_key: str, unit: str) -> float:
            try:
                asyncio.get_running_loop()
                on_loop.append((scope_key, unit))
            except RuntimeError:
                pass  # a worker thread
            return spent(tenant_id, scope_key, unit)

        monkeypatch.setattr(budgets, "spent", watched)
        out = await rt.compile(graph).ainvoke(
            {"goal": "g"},
            {"configurable": {"thread_id": "route-budget"}},
            context=RunContext(tenant_id=tenant),
        )
        decisions = _decisions(rt, "route-budget", tenant)
    assert out["status"] == "completed"
    [routed] = [d for d in decisions if d["what"] == "model_route"]
    assert routed["rule"] == "agents.worker.model.use"
    assert on_loop == [], f"spend read on the event loop: {on_loop}"


USD_BUDGET_POLICY = """
workflows:
  gov:
    budgets:
      per_run: {usd: 0.50}
"""


@pytest.mark.parametrize("priced", [False, True])
def test_a_usd_budget_refuses_a_model_it_cannot_price(priced, scripted, tmp_path, tenant):
    # A model with no price would count as free, and the USD budget would never stop it.
    text = USD_BUDGET_POLICY
    if priced:
        text += "prices:\n  acme-llm-7: {input: 1.0, output: 2.0}\n"
    model = scripted("done", name="worker") if priced else scripted(name="worker")
    model.model_name = "acme-llm-7"  # never called when unpriced: it has no reply scripted
    graph = podium.build_workflow(
        [AgentSpec(name="worker", model=model)],
        name="gov",
        supervisor=ONE_TASK,
        policies=_write(tmp_path, text),
    )
    with podium.open_runtime("memory://") as rt:
        out = _run(rt, graph, "unpriced", tenant)
        rt.services.flush()
        refusals = [
            e.payload["refused"]
            for e in rt.services.audit.timeline("unpriced", tenant)
            if e.kind == "budget"
        ]
        spent = rt.services.ledger.totals(tenant, by="model", thread_id="unpriced")
    if priced:
        assert out["status"] == "completed" and refusals == []
        [row] = spent
        assert (row.key, row.cost_usd > 0) == ("acme-llm-7", True)
        return
    assert out["status"] == "failed"
    task = out["tasks"]["t1"]
    assert task["status"] == "dead_lettered"
    for said in (task["error"], *refusals):
        assert "model 'acme-llm-7' has no price" in said
        assert "workflows.gov.budgets.per_run.usd" in said
        assert "prices: {acme-llm-7: {input:" in said
    assert len(refusals) == 1 and spent == []


def _custom_worker(model: Any, calls: int = 1) -> Any:
    """A compiled graph of its own that calls `model` (not podium's) `calls` times."""
    from langgraph.graph import MessagesState

    def call(state: MessagesState) -> dict:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    previous = START
    for n in range(calls):
        builder.add_node(f"call{n}", call)
        builder.add_edge(previous, f"call{n}")
        previous = f"call{n}"
    return builder.compile()


def test_a_usd_budget_refuses_a_custom_workers_unpriced_model(scripted, tmp_path, tenant):
    # The guard accounts the model calls of a compiled graph's own model: under a USD
    # budget an unpriced one would count as free there too.
    model = scripted(name="custom")  # never called: it has no reply scripted
    model.model_name = "acme-llm-7"
    graph = podium.build_workflow(
        [AgentSpec(name="worker", graph=_custom_worker(model))],
        name="gov",
        supervisor=ONE_TASK,
        policies=_write(tmp_path, USD_BUDGET_POLICY),
    )
    with podium.open_runtime("memory://") as rt:
        out = _run(rt, graph, "custom-unpriced", tenant)
    task = out["tasks"]["t1"]
    assert task["status"] == "dead_lettered", task
    assert "model 'acme-llm-7' has no price" in task["error"]
    assert "prices: {acme-llm-7: {input:" in task["error"]


@pytest.mark.parametrize("mode", ["sync, memory", "async, PostgreSQL"])
def test_a_custom_workers_own_model_spends_the_usd_budget(mode, tmp_path, tenant, request):
    # Each reply reports $0.40 (100k input tokens at $4 per million). The guard holds
    # budget before each call of the graph's own model and settles what it spent: the
    # third call finds $0.80 spent against $0.50 and is refused before it is made.
    usage = {"input_tokens": 100_000, "output_tokens": 0, "total_tokens": 100_000}
    # Two replies only: a third call would fail for want of a reply, not of budget.
    model = ScriptedChatModel(
        responses=[AIMessage("first", usage_metadata=usage)] * 2, name="custom"
    )
    model.model_name = "acme-llm-7"
    text = USD_BUDGET_POLICY + "prices:\n  acme-llm-7: {input: 4.0, output: 4.0}\n"
    graph = podium.build_workflow(
        [AgentSpec(name="worker", graph=_custom_worker(model, calls=3))],
        name="gov",
        supervisor=ONE_TASK,
        policies=_write(tmp_path, text),
    )
    thread, context = "custom-priced", RunContext(tenant_id=tenant)
    config = {"configurable": {"thread_id": thread}}
    if mode.startswith("sync"):
        with podium.open_runtime("memory://") as rt:
            out = rt.compile(graph).invoke({"goal": "g"}, config, context=context)
            rt.services.flush()
            rows = rt.services.ledger.totals(tenant, by="model", thread_id=thread)
            refusals = [e for e in rt.services.audit.timeline(thread, tenant) if e.kind == "budget"]
    else:

        async def run() -> tuple[Any, Any, Any]:
            url = request.getfixturevalue("postgres_url")
            async with podium.open_async_runtime(url) as rt:
                out = await rt.compile(graph).ainvoke({"goal": "g"}, config, context=context)
                rt.services.flush()
                rows = rt.services.ledger.totals(tenant, by="model", thread_id=thread)
                events = rt.services.audit.timeline(thread, tenant)
                return out, rows, [e for e in events if e.kind == "budget"]

        out, rows, refusals = asyncio.run(run())
    assert len(model.calls) == 2
    [row] = rows
    assert row.cost_usd == pytest.approx(0.80)
    task = out["tasks"]["t1"]
    assert task["status"] == "failed", task
    assert "BudgetExceeded" in task["error"] and "0.8 already spent" in task["error"], task["error"]
    assert len(refusals) == 1 and "no room" in refusals[0].payload["refused"]


TOKEN_BUDGET_POLICY = """
workflows:
  gov:
    budgets:
      per_run: {tokens: 1500}
"""
# Each call of a scripted model without max_tokens holds ~1030 tokens (its prompt and
# the default reply reserve): one call fits the 1500-token budget, two at once do not.


def _async_custom_worker(model: Any, before: Any = None, after: Any = None) -> Any:
    """A compiled graph of its own that awaits one call of `model` (on the event loop),
    after `before()` is awaited and with `after()` called however the call ends."""
    from langgraph.graph import MessagesState

    async def call(state: MessagesState) -> dict:
        if before is not None:
            await before()
        try:
            return {"messages": [await model.ainvoke(state["messages"])]}
        finally:
            if after is not None:
                after()

    builder = StateGraph(MessagesState)
    builder.add_node("call", call)
    builder.add_edge(START, "call")
    return builder.compile()


class _HeldModel(ScriptedChatModel):
    """A scripted model whose call, once begun (its budget hold taken), answers only
    when `release` is set, or after 10 s."""

    _begun: asyncio.Event = PrivateAttr(default_factory=asyncio.Event)
    _release: asyncio.Event = PrivateAttr(default_factory=asyncio.Event)

    async def _agenerate(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Any:
        self._begun.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), 10)
        return await super()._agenerate(messages, stop, run_manager, **kw)


@pytest.mark.parametrize("url", ["memory://", "postgres"])
def test_a_custom_workers_async_model_call_never_blocks_the_event_loop_on_budget(
    url, tmp_path, tenant, request
):
    # Two custom workers run in parallel on one event loop; each awaits its graph's own
    # model. The guard runs inline on the loop: waiting there for w1's hold to be settled
    # would stop w1's call too, so w2's call is refused at once instead of after
    # `budget_wait`, and w1's call goes on. w2 calls only once w1's call holds its
    # budget, and w1's call answers only once w2's has ended, whatever the machine's load.
    if url == "postgres":
        url = request.getfixturevalue("postgres_url")
    first = _HeldModel(responses=["one"], name="first")
    second = ScriptedChatModel(responses=[], name="second")  # refused: never called

    async def first_holds() -> None:
        await asyncio.wait_for(first._begun.wait(), 10)

    plan = Plan(
        tasks=[
            PlannedTask(id="t1", agent="w1", instruction="a"),
            PlannedTask(id="t2", agent="w2", instruction="b"),
        ]
    )
    graph = podium.build_workflow(
        [
            AgentSpec(name="w1", graph=_async_custom_worker(first)),
            AgentSpec(
                name="w2",
                graph=_async_custom_worker(second, before=first_holds, after=first._release.set),
            ),
        ],
        name="gov",
        supervisor=plan,
        policies=_write(tmp_path, TOKEN_BUDGET_POLICY),
    )
    thread = "loop-budget"

    async def run() -> tuple[Any, float, float]:
        async with podium.open_async_runtime(url, budget_wait=20.0) as rt:
            started = time.monotonic()
            out = await rt.compile(graph).ainvoke(
                {"goal": "g"},
                {"configurable": {"thread_id": thread}},
                context=RunContext(tenant_id=tenant),
            )
            took = time.monotonic() - started
            held = rt.services.budgets.reserved(tenant, f"run:{thread}:1", "tokens")
            return out, took, held

    out, took, held = asyncio.run(run())
    assert took < 10, f"the event loop was blocked for {took:.1f}s"
    assert out["tasks"]["t1"]["status"] == "completed", out["tasks"]["t1"]
    assert out["tasks"]["t2"]["status"] == "failed", out["tasks"]["t2"]
    assert "BudgetExceeded" in out["tasks"]["t2"]["error"]
    assert len(first.calls) == 1 and held == 0


def _batch_worker(model: Any, lists: int) -> Any:
    """A compiled graph of its own that asks `model` for `lists` replies in one batch."""
    from langgraph.graph import MessagesState

    def call(state: MessagesState, config: RunnableConfig) -> dict:
        batch = [state["messages"]] * lists
        result = model.generate(batch, callbacks=config.get("callbacks"))
        return {"messages": [result.generations[0][0].message]}

    builder = StateGraph(MessagesState)
    builder.add_node("call", call)
    builder.add_edge(START, "call")
    return builder.compile()


@pytest.mark.parametrize("case", ["refused", "failed"])
def test_a_custom_workers_batch_that_stops_leaves_no_budget_held(case, tmp_path, tenant):
    # `generate` with two message lists starts (and holds for) both calls before making
    # either. "refused": the second has no room (the first's hold is in the way), so
    # neither call is made; "failed": the first call fails, and the batch stops without
    # ending the second. Either way no hold may outlive the task (for the TTL, 15
    # minutes, every later call of the run would find it in the way).
    policy = TOKEN_BUDGET_POLICY.replace("1500", "1500" if case == "refused" else "5000")
    replies = [] if case == "refused" else [ValueError("the model broke"), "two"]
    model = ScriptedChatModel(responses=replies, name="batch")
    graph = podium.build_workflow(
        [AgentSpec(name="worker", graph=_batch_worker(model, 2))],
        name="gov",
        supervisor=ONE_TASK,
        policies=_write(tmp_path, policy),
    )
    thread = f"batch-{case}"
    with podium.open_runtime("memory://", budget_wait=20.0) as rt:
        started = time.monotonic()
        out = _run(rt, graph, thread, tenant)
        took = time.monotonic() - started
        held = rt.services.budgets.reserved(tenant, f"run:{thread}:1", "tokens")
    task = out["tasks"]["t1"]
    assert task["status"] in ("failed", "dead_lettered"), task
    assert held == 0
    # A refused call of the batch does not wait for its own batch's hold.
    assert took < 10, f"the batch waited {took:.1f}s for its own hold"


DOWNGRADE_POLICY = """
workflows:
  gov:
    budgets:
      per_run: {tokens: 10000}
    model:
      downgrade: {below_fraction: 0.8, to: demo}
"""


@pytest.mark.parametrize("mode", ["sync, memory", "async, PostgreSQL"])
def test_model_downgrades_when_the_budget_runs_low(mode, scripted, tmp_path, tenant, request):
    usage = {"input_tokens": 2500, "output_tokens": 500, "total_tokens": 3000}
    first = scripted(AIMessage("facts", usage_metadata=usage), name="first")
    second = scripted(name="second")  # 70% of the budget is left: it must never be called
    plan = Plan.chain(("first", "find facts"), ("second", "write it up"))
    graph = podium.build_workflow(
        [AgentSpec(name="first", model=first), AgentSpec(name="second", model=second)],
        name="gov",
        supervisor=plan,
        policies=_write(tmp_path, DOWNGRADE_POLICY),
    )
    if mode.startswith("sync"):
        with podium.open_runtime("memory://") as rt:
            out = _run(rt, graph, "downgrade", tenant)
            decisions = _decisions(rt, "downgrade", tenant)
            rows = rt.services.ledger.totals(tenant, by="agent", thread_id="downgrade")
            models = rt.services.ledger.totals(tenant, by="model", thread_id="downgrade")
    else:  # the async path reads what was spent from the loop's worker thread

        async def run() -> tuple[dict[str, Any], Any, Any, Any]:
            url = request.getfixturevalue("postgres_url")
            async with podium.open_async_runtime(url) as rt:
                out = await rt.compile(graph).ainvoke(
                    {"goal": "g"},
                    {"configurable": {"thread_id": "downgrade"}},
                    context=RunContext(tenant_id=tenant),
                )
                ledger = rt.services.ledger
                return (
                    out,
                    _decisions(rt, "downgrade", tenant),
                    ledger.totals(tenant, by="agent", thread_id="downgrade"),
                    ledger.totals(tenant, by="model", thread_id="downgrade"),
                )

        out, decisions, rows, models = asyncio.run(run())
    by_agent = {row.key: row for row in rows}
    assert len(first.calls) == 1
    assert second.calls == []
    assert out["status"] == "completed"
    assert by_agent["first"].total_tokens == 3000
    assert by_agent["second"].calls == 1
    assert {row.key for row in models} == {"scripted", "demo"}
    [routed] = [d for d in decisions if d["what"] == "model_route"]
    assert routed["rule"] == "workflows.gov.model.downgrade"
    assert routed["details"]["model"] == "demo"


# -- data scopes -------------------------------------------------------------------------

SCOPE_POLICY = """
global:
  tools: {allow: [search_corpus]}
agents:
  outsider:
    data_scopes: []
  insider:
    data_scopes: ["corpus:energy"]
"""


def test_agent_without_the_data_scope_is_refused_the_corpus(scripted, tmp_path, tenant):
    outsider = scripted(
        tool_call("search_corpus", {"query": "heat pump sales"}), "no access", name="outsider"
    )
    insider = scripted(
        tool_call("search_corpus", {"query": "heat pump sales"}), "found it", name="insider"
    )
    plan = Plan(
        tasks=[
            PlannedTask(id="out", agent="outsider", instruction="search"),
            PlannedTask(id="in", agent="insider", instruction="search"),
        ]
    )
    graph = podium.build_workflow(
        [
            AgentSpec(name="outsider", tools=[search_corpus], model=outsider),
            AgentSpec(name="insider", tools=[search_corpus], model=insider),
        ],
        name="gov",
        supervisor=plan,
        policies=_write(tmp_path, SCOPE_POLICY),
    )
    with podium.open_runtime("memory://") as rt:
        out = _run(rt, graph, "scope", tenant)
        decisions = _decisions(rt, "scope", tenant)

    refusal = outsider.calls[1][-1]
    assert isinstance(refusal, ToolMessage)
    assert "agents.outsider.data_scopes" in refusal.content
    assert "'corpus:energy'" in refusal.content
    assert "refused by policy" in refusal.content
    granted = insider.calls[1][-1]
    assert isinstance(granted, ToolMessage) and granted.status != "error"
    assert granted.content.startswith("["), granted.content  # "[source.md] passage..."
    assert out["status"] == "completed"
    [scope] = [d for d in decisions if d["what"] == "data_scope"]
    assert scope["allowed"] is False
    assert scope["rule"] == "agents.outsider.data_scopes"


# -- build-time validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "key_path", "name"),
    [
        (
            """
            agents:
              worker:
                tools: {allow: [lookup]}
              reseacher:
                data_scopes: []
            """,
            4,
            "agents.reseacher",
            "'reseacher'",
        ),
        (
            """
            agents:
              worker:
                tools:
                  allow: [lookup, nuke]
            """,
            4,
            "agents.worker.tools.allow[1]",
            "'nuke'",
        ),
        (
            """
            global:
              timeout: 30
            tools:
              lookup: {timeout: 5}
              nuke: {timeout: 5}
            """,
            5,
            "tools.nuke",
            "'nuke'",
        ),
    ],
    ids=["unknown-agent", "unknown-tool-in-allow", "unknown-tool-section"],
)
def test_policy_naming_unknown_agent_or_tool_fails_the_build(
    scripted, tmp_path, text, line, key_path, name
):
    path = _write(tmp_path, text)
    agent = AgentSpec(name="worker", tools=[Tools().lookup()], model=scripted(name="worker"))
    with pytest.raises(PolicyError) as caught:
        podium.build_workflow([agent], name="gov", supervisor=ONE_TASK, policies=path)
    error = caught.value
    assert (error.path, error.line, error.key_path) == (str(path), line, key_path)
    assert str(error).startswith(f"{path}:{line} {key_path}: "), str(error)
    assert name in str(error)
    assert "known:" in str(error)


@pytest.mark.parametrize("url", ["sqlite", "postgres"])
def test_a_second_call_in_one_step_sees_the_first_calls_real_spend(url, tmp_path, tenant, request):
    # The router's first reply is not a valid choice, so it is asked again in the same
    # step. Its first call's settlement waits for the step's records; the second call's
    # hold writes it first: with the first call counted at its hold (~1,030 tokens) the
    # second (another ~1,030) would not fit the 1,500-token run budget, at its real
    # spend it does.
    url = (
        request.getfixturevalue("postgres_url")
        if url == "postgres"
        else (f"sqlite:///{tmp_path / 'podium.db'}")
    )
    boss = ScriptedChatModel(
        responses=["not a choice", '{"next": "w1", "instruction": "go"}', '{"next": "FINISH"}'],
        name="boss",
    )
    worker = ScriptedChatModel(responses=["done"], name="w1")
    graph = podium.build_workflow(
        [AgentSpec(name="w1", model=worker)],
        name="gov",
        supervisor="router",
        model=boss,
        policies=_write(tmp_path, TOKEN_BUDGET_POLICY),
    )
    with podium.open_runtime(url) as rt:
        out = rt.compile(graph).invoke(
            {"goal": "g"},
            {"configurable": {"thread_id": "asked-twice"}},
            context=RunContext(tenant_id=tenant),
        )
        key = "run:asked-twice:1"
        held = rt.services.budgets.reserved(tenant, key, "tokens")
        spent = rt.services.budgets.spent(tenant, key, "tokens")
        used = sum(row.total_tokens for row in rt.services.ledger.totals(tenant, by="tenant"))
    assert out["status"] == "completed", out.get("error")
    assert len(boss.calls) == 3 and len(worker.calls) == 1
    assert held == 0 and spent == used > 0


async def test_calls_settled_with_their_replies_leave_no_hold_open_for_the_batches(
    postgres_url, tmp_path, tenant
):
    # Async runs on PostgreSQL batch holds and wait a moment for company while enough
    # holds are open; a task's call settles with its recorded reply, and must close its
    # hold there too, or every later batch would wait as if eight calls were in flight.
    agents = [
        AgentSpec(name=f"w{i}", model=ScriptedChatModel(responses=["ok"], name=f"w{i}"))
        for i in range(8)
    ]
    plan = Plan(tasks=[PlannedTask(id=f"t{i}", agent=f"w{i}", instruction="x") for i in range(8)])
    graph = podium.build_workflow(
        agents,
        name="gov",
        supervisor=plan,
        policies=_write(tmp_path, TOKEN_BUDGET_POLICY.replace("1500", "1000000")),
    )
    async with podium.open_async_runtime(postgres_url) as rt:
        out = await rt.compile(graph).ainvoke(
            {"goal": "g"},
            {"configurable": {"thread_id": "batched"}},
            context=RunContext(tenant_id=tenant),
        )
        assert rt.services.budgets.runs_on_loop
        delay = rt.services.budgets.loop_batches().commit_delay()
    assert out["status"] == "completed", out.get("error")
    assert delay == 0.0
