"""Human gates on compiled workflows: tool-call, plan and answer approvals, questions,
nested and parallel gates, refusals, idempotence and expiry escalation."""

from __future__ import annotations

import argparse
import json
import textwrap
import threading
import time

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.types import Command

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext
from podium.commands.approvals import cmd_approvals
from podium.gates.decision import GateForbidden, adecide, apending_gates, decide, pending_gates
from podium.gates.request import Decision, GateRequest
from podium.graphs.research_brief import DEMO_GOAL
from podium.policies import PolicySet, load_policies
from podium.stores.approvals import AlreadyDecided, GateError
from podium.testing import tool_call
from podium.tools.human import ask_human
from tests.helpers import allowing

EXPIRES_IN = 3600
POLICY = f"""
global:
  tools: {{allow: ["*"]}}
tools:
  send_payment:
    side_effects: true
    idempotent: false
    retry: {{attempts: 1}}
    args:
      to: {{required: true, pattern: "[a-z]+"}}
      amount: {{required: true, min: 1, max: 1000}}
    requires_approval: {{roles: [editor], expires_in: {EXPIRES_IN}}}
"""


# -- helpers ------------------------------------------------------------------------------


class Payments:
    """A side-effecting tool that counts every time it really runs."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def tool(self):
        @tool
        def send_payment(to: str, amount: int) -> str:
            """Send `amount` euros to the account `to`."""
            with self._lock:
                self.sent.append((to, amount))
            return f"sent {amount} to {to}"

        return send_payment


class FakeClock:
    """An injectable clock: time moves only when the test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Seen:
    """A scripted reply that records what the model received and answers from it."""

    def __init__(self, answer=lambda last: f"saw: {last.content}") -> None:
        self.messages: list = []
        self.answer = answer

    def __call__(self, messages):
        self.messages = list(messages)
        return self.answer(messages[-1])

    @property
    def last(self):
        return self.messages[-1]


def _policy(tmp_path, text: str = POLICY) -> PolicySet:
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return load_policies(path)


def _config(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


def _ctx(tenant: str, *roles: str, user: str = "ed") -> RunContext:
    return RunContext(tenant_id=tenant, user_id=user, roles=frozenset(roles))


def _payer_workflow(scripted, payments: Payments, policy, seen: Seen, args=None, name="pay"):
    """One agent that asks to pay bob 10 and then answers from what it saw."""
    payer = AgentSpec(
        name="payer",
        tools=[payments.tool()],
        model=scripted(
            tool_call("send_payment", args or {"to": "bob", "amount": 10}), seen, name="payer"
        ),
    )
    plan = Plan(tasks=[PlannedTask(id="t1", agent="payer", instruction="pay bob")])
    return podium.build_workflow([payer], name=name, supervisor=plan, policies=policy)


def _start(app, thread: str, tenant: str) -> dict:
    return app.invoke({"goal": "pay"}, _config(thread), context=_ctx(tenant))


def _only_gate(app, thread: str):
    [gate] = pending_gates(app, thread)
    return gate


# -- tool-call approval -------------------------------------------------------------------


def test_tool_gate_is_raised_before_the_side_effect_and_approve_runs_it_once(
    db_url, scripted, tenant, tmp_path
):
    payments, seen = Payments(), Seen()
    graph = _payer_workflow(scripted, payments, _policy(tmp_path), seen)
    thread = f"{tenant}-approve"
    with podium.open_runtime(db_url) as rt:
        app = rt.compile(graph)
        out = _start(app, thread, tenant)
        [interrupt] = out["__interrupt__"]
        payload = json.loads(json.dumps(interrupt.value))  # JSON-serialisable as it is
        request = GateRequest.model_validate(payload)
        assert request.kind == "tool" and request.tool == "send_payment"
        assert request.args == {"to": "bob", "amount": 10}
        assert (request.agent, request.task_id, request.workflow) == ("payer", "t1", "pay")
        assert request.roles == ["editor"] and request.tenant_id == tenant
        assert request.rule == "tools.send_payment.requires_approval"
        assert request.expires_at == pytest.approx(request.requested_at + EXPIRES_IN)
        assert payments.sent == []  # nothing happened while the gate is pending
        gate = _only_gate(app, thread)
        assert gate.request == request and gate.interrupt_id == interrupt.id
        assert rt.services.approvals.get(request.gate_id, tenant).status == "pending"

        out = decide(app, thread, Decision(decision="approve"), context=_ctx(tenant, "editor"))
        record = rt.services.approvals.get(request.gate_id, tenant)
        assert pending_gates(app, thread) == []
        rt.services.flush()
        [audited] = rt.services.audit.events(tenant, kind="approval", thread_id=thread)
        events = rt.services.audit.timeline(thread, tenant)
        by_attempt = rt.services.ledger.totals(tenant, by="attempt", thread_id=thread)
    assert out["status"] == "completed"
    assert payments.sent == [("bob", 10)]
    # The task ran again after the decision, to continue, not to retry: no retry marks.
    assert [e.kind for e in events].count("tool_result") == 1
    assert not any("step_attempt" in e.payload for e in events)
    assert [(r.key, r.calls) for r in by_attempt] == [("1", 2)]
    assert isinstance(seen.last, ToolMessage) and seen.last.content == "sent 10 to bob"
    assert out["answer"] == "saw: sent 10 to bob"
    assert record.status == "decided" and record.decided_by == "ed"
    assert record.decision["decision"] == "approve"
    assert audited.payload["gate_id"] == request.gate_id
    assert audited.payload["decision"] == "approve"


def test_replays_after_approval_do_not_repeat_the_side_effect(scripted, tenant, tmp_path):
    payments, seen = Payments(), Seen()
    graph = _payer_workflow(scripted, payments, _policy(tmp_path), seen)
    thread, editor = f"{tenant}-replay", _ctx(tenant, "editor")
    with podium.open_runtime(f"sqlite:///{tmp_path / 'p.db'}") as rt:
        app = rt.compile(graph)
        _start(app, thread, tenant)
        gate = _only_gate(app, thread)
        out = decide(app, thread, "approve", context=editor)
        assert out["status"] == "completed" and payments.sent == [("bob", 10)]

        # Re-invoking the finished thread runs nothing again.
        again = app.invoke(None, _config(thread), context=editor)
        assert again["status"] == "completed" and payments.sent == [("bob", 10)]
        # Resuming the old interrupt again (a raw LangGraph resume) runs nothing again.
        resume = {gate.interrupt_id: Decision(decision="approve").model_dump()}
        app.invoke(Command(resume=resume), _config(thread), context=editor)
        assert payments.sent == [("bob", 10)]
        # Deciding the gate again through podium is refused.
        with pytest.raises(AlreadyDecided, match="already decided"):
            decide(app, thread, "approve", context=editor, gate=gate.request.gate_id)
        [effect] = rt.services.effects.list(tenant)
    assert payments.sent == [("bob", 10)]
    assert effect.status == "completed" and effect.tool == "send_payment"


def test_reject_returns_the_comment_to_the_agent_and_the_tool_never_runs(
    scripted, tenant, tmp_path
):
    payments, seen = Payments(), Seen()
    graph = _payer_workflow(scripted, payments, _policy(tmp_path), seen)
    thread = f"{tenant}-reject"
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        _start(app, thread, tenant)
        gate = _only_gate(app, thread)
        out = decide(
            app,
            thread,
            Decision(decision="reject", comment="bob is not a supplier", user="ed"),
            context=_ctx(tenant, "editor"),
        )
        record = rt.services.approvals.get(gate.request.gate_id, tenant)
        assert rt.services.effects.list(tenant) == []
    assert payments.sent == []
    assert isinstance(seen.last, ToolMessage) and seen.last.status == "error"
    assert seen.last.tool_call_id == seen.messages[-2].tool_calls[0]["id"]
    assert "Rejected by ed: bob is not a supplier" in seen.last.content
    assert "not run" in seen.last.content
    assert out["status"] == "completed"  # the agent adapted and answered
    assert "bob is not a supplier" in out["answer"]
    assert record.decision["decision"] == "reject"


def test_edit_runs_the_tool_with_the_new_arguments(scripted, tenant, tmp_path):
    payments, seen = Payments(), Seen()
    graph = _payer_workflow(scripted, payments, _policy(tmp_path), seen)
    thread = f"{tenant}-edit"
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        _start(app, thread, tenant)
        out = decide(
            app,
            thread,
            Decision(decision="edit", args={"to": "carol", "amount": 20}),
            context=_ctx(tenant, "editor"),
        )
    assert payments.sent == [("carol", 20)]
    assert seen.last.content == "sent 20 to carol"
    assert out["answer"] == "saw: sent 20 to carol"


@pytest.mark.parametrize(
    ("bad_args", "note"),
    [
        ({"to": "carol", "amount": "lots"}, "edited arguments do not fit 'send_payment'"),
        ({"to": "carol"}, "edited arguments do not fit 'send_payment'"),
        ({"to": "carol", "amount": 5000}, "edited arguments refused"),
        ({"to": "Carol!", "amount": 5}, "edited arguments refused"),
    ],
    ids=["schema-type", "schema-missing", "policy-max", "policy-pattern"],
)
def test_invalid_edit_keeps_the_gate_open_with_a_note(scripted, tenant, tmp_path, bad_args, note):
    payments, seen = Payments(), Seen()
    graph = _payer_workflow(scripted, payments, _policy(tmp_path), seen)
    thread, editor = f"{tenant}-bad-edit", _ctx(tenant, "editor")
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        _start(app, thread, tenant)
        before = _only_gate(app, thread)
        out = decide(app, thread, Decision(decision="edit", args=bad_args), context=editor)
        assert "__interrupt__" in out
        after = _only_gate(app, thread)
        assert after.request.gate_id == before.request.gate_id
        assert after.note is not None and note in after.note
        assert payments.sent == []
        # The approvals index agrees: the gate is still open, listed in the inbox.
        gate_id = before.request.gate_id
        assert rt.services.approvals.get(gate_id, tenant).status == "pending"
        assert [r.gate_id for r in rt.services.approvals.pending(tenant)[0]] == [gate_id]
        # The gate is still open: a valid decision goes through.
        out = decide(
            app,
            thread,
            Decision(decision="edit", args={"to": "carol", "amount": 7}),
            context=editor,
        )
    assert out["status"] == "completed"
    assert payments.sent == [("carol", 7)]


def test_ask_human_response_is_the_tool_result_the_model_sees(scripted, tenant):
    seen = Seen()
    agent = AgentSpec(
        name="clerk",
        tools=[ask_human],
        model=scripted(tool_call("ask_human", {"question": "Which city?"}), seen, name="clerk"),
    )
    plan = Plan(tasks=[PlannedTask(id="t1", agent="clerk", instruction="book a trip")])
    graph = podium.build_workflow(
        [agent], name="trip", supervisor=plan, policies=allowing(clerk=["ask_human"])
    )
    thread = f"{tenant}-ask"
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        out = _start(app, thread, tenant)
        json.dumps(out["__interrupt__"][0].value)
        gate = _only_gate(app, thread)
        assert (gate.request.kind, gate.request.question) == ("question", "Which city?")
        assert gate.request.agent == "clerk"
        with pytest.raises(GateError, match="question gate takes"):
            decide(app, thread, "approve", context=_ctx(tenant))
        out = decide(
            app, thread, Decision(decision="respond", response="Lisbon"), context=_ctx(tenant)
        )
    assert isinstance(seen.last, ToolMessage) and seen.last.content == "Lisbon"
    assert out["answer"] == "saw: Lisbon"


async def test_tool_gate_on_an_async_runtime(scripted, tenant, tmp_path):
    payments, seen = Payments(), Seen()
    graph = _payer_workflow(scripted, payments, _policy(tmp_path), seen)
    thread = f"{tenant}-async"
    async with podium.open_async_runtime("memory://") as rt:
        app = rt.compile(graph)
        await app.ainvoke({"goal": "pay"}, _config(thread), context=_ctx(tenant))
        [gate] = await apending_gates(app, thread)
        assert gate.request.tool == "send_payment" and payments.sent == []
        with pytest.raises(GateForbidden):
            await adecide(app, thread, "approve", context=_ctx(tenant))
        out = await adecide(app, thread, "approve", context=_ctx(tenant, "editor"))
        events = rt.services.audit.timeline(thread, tenant)
    assert out["status"] == "completed" and payments.sent == [("bob", 10)]
    assert seen.last.content == "sent 10 to bob"
    assert events and not any("step_attempt" in e.payload for e in events)


# -- plan approval -------------------------------------------------------------------------


def _plan_json(*tasks: tuple[str, str, str]) -> str:
    return json.dumps(
        {
            "tasks": [
                {"id": i, "agent": a, "instruction": text, "depends_on": []} for i, a, text in tasks
            ]
        }
    )


def _planned(scripted, tmp_path, *, via: str, researcher=(), writer=()):
    boss = scripted(_plan_json(("t1", "researcher", "find facts")), name="boss")
    agents = [
        AgentSpec(name="researcher", model=scripted(*researcher, name="researcher")),
        AgentSpec(name="writer", model=scripted(*writer, name="writer")),
    ]
    if via == "flag":
        return podium.build_workflow(agents, name="planned", model=boss, approve_plan=True)
    policy = _policy(tmp_path, "workflows:\n  planned:\n    approve_plan: true\n")
    return podium.build_workflow(agents, name="planned", model=boss, policies=policy)


@pytest.mark.parametrize("via", ["flag", "policy"])
def test_plan_gate_carries_the_plan_and_approve_dispatches(scripted, tenant, tmp_path, via):
    graph = _planned(scripted, tmp_path, via=via, researcher=["facts"])
    thread = f"{tenant}-plan-ok"
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        out = _start(app, thread, tenant)
        value = json.loads(json.dumps(out["__interrupt__"][0].value))
        assert value["kind"] == "plan"
        assert [(t["id"], t["agent"], t["instruction"]) for t in value["plan"]] == [
            ("t1", "researcher", "find facts")
        ]
        assert value["rule"] == "workflows.planned.approve_plan"
        assert out["tasks"]["t1"]["status"] == "queued"  # nothing dispatched yet
        out = decide(app, thread, "approve", context=_ctx(tenant))
    assert out["status"] == "completed"
    assert out["answer"] == "facts"
    assert out["tasks"]["t1"]["status"] == "completed"


def test_plan_gate_edit_replaces_the_plan(scripted, tenant, tmp_path):
    writer = Seen(lambda last: "wrote it")
    graph = _planned(scripted, tmp_path, via="flag", writer=[writer])
    thread = f"{tenant}-plan-edit"
    edited = [{"id": "w1", "agent": "writer", "instruction": "write the brief", "depends_on": []}]
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        _start(app, thread, tenant)
        out = decide(app, thread, Decision(decision="edit", plan=edited), context=_ctx(tenant))
    assert out["status"] == "completed"
    assert list(out["tasks"]) == ["w1"] and out["tasks"]["w1"]["agent"] == "writer"
    assert [t["id"] for t in out["plan"]] == ["w1"]
    assert "write the brief" in writer.last.content
    assert out["answer"] == "wrote it"


def test_invalid_edited_plan_keeps_the_plan_gate_open_with_a_note(scripted, tenant, tmp_path):
    graph = _planned(scripted, tmp_path, via="flag", researcher=["facts"])
    thread = f"{tenant}-plan-bad"
    ghost = [{"id": "x", "agent": "ghost", "instruction": "haunt", "depends_on": []}]
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        _start(app, thread, tenant)
        before = _only_gate(app, thread)
        decide(app, thread, Decision(decision="edit", plan=ghost), context=_ctx(tenant))
        after = _only_gate(app, thread)
        assert after.request.gate_id == before.request.gate_id
        assert "edited plan is invalid" in after.note and "ghost" in after.note
        gate_id = before.request.gate_id
        assert rt.services.approvals.get(gate_id, tenant).status == "pending"
        out = decide(app, thread, "approve", context=_ctx(tenant))
    assert out["status"] == "completed" and out["answer"] == "facts"


def test_plan_gate_reject_ends_the_run_failed_with_the_comment(scripted, tenant, tmp_path):
    graph = _planned(scripted, tmp_path, via="flag")  # no worker may be called
    thread = f"{tenant}-plan-reject"
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        _start(app, thread, tenant)
        out = decide(
            app,
            thread,
            Decision(decision="reject", comment="research first"),
            context=_ctx(tenant, user="ann"),
        )
        [info] = rt.threads.list(tenant_id=tenant)
    assert out["status"] == "failed"
    assert out["error"] == "plan rejected by ann: research first"
    assert "research first" in out["answer"]
    assert info.status == "failed"


# -- answer approval -----------------------------------------------------------------------


def _answered(scripted, **kwargs):
    agents = [AgentSpec(name="writer", model=scripted("draft answer", name="writer"))]
    plan = Plan(tasks=[PlannedTask(id="t1", agent="writer", instruction="write")])
    return podium.build_workflow(
        agents, name="answered", supervisor=plan, approve_answer=True, **kwargs
    )


@pytest.mark.parametrize(
    ("decision", "status", "answer"),
    [
        (Decision(decision="approve"), "completed", "draft answer"),
        (Decision(decision="edit", answer="final answer"), "completed", "final answer"),
    ],
    ids=["approve", "edit"],
)
def test_answer_gate_approve_and_edit(scripted, tenant, decision, status, answer):
    thread = f"{tenant}-answer"
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(_answered(scripted))
        out = _start(app, thread, tenant)
        value = json.loads(json.dumps(out["__interrupt__"][0].value))
        assert (value["kind"], value["answer"]) == ("answer", "draft answer")
        assert not any(m.content == "draft answer" and m.type == "ai" for m in out["messages"])
        out = decide(app, thread, decision, context=_ctx(tenant))
        [info] = rt.threads.list(tenant_id=tenant)
    assert out["status"] == status and info.status == status
    assert out["answer"] == answer
    last = out["messages"][-1]
    assert isinstance(last, AIMessage) and last.content == answer


def test_answer_gate_reject_fails_the_run(scripted, tenant):
    thread = f"{tenant}-answer-reject"
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(_answered(scripted, approver_roles=["editor"]))
        _start(app, thread, tenant)
        assert _only_gate(app, thread).request.roles == ["editor"]
        out = decide(
            app,
            thread,
            Decision(decision="reject", comment="too vague", user="ed"),
            context=_ctx(tenant, "editor"),
        )
    assert out["status"] == "failed"
    assert out["error"] == "answer rejected by ed: too vague"
    assert "too vague" in out["messages"][-1].content


# -- nested and parallel gates -------------------------------------------------------------


def test_gate_two_levels_deep_surfaces_at_the_top_and_resumes_in_place(scripted, tenant, tmp_path):
    payments, seen = Payments(), Seen(lambda last: f"leaf {last.content}")
    leaf = AgentSpec(
        name="leaf",
        tools=[payments.tool()],
        model=scripted(tool_call("send_payment", {"to": "bob", "amount": 10}), seen, name="leaf"),
    )
    inner = podium.build_workflow(
        [leaf],
        name="inner",
        supervisor=Plan(tasks=[PlannedTask(id="i1", agent="leaf", instruction="pay")]),
        policies=_policy(tmp_path),
    ).compile()
    middle = podium.build_workflow(
        [AgentSpec(name="team", graph=inner)],
        name="middle",
        supervisor=Plan(tasks=[PlannedTask(id="m1", agent="team", instruction="pay")]),
    ).compile()
    outer = podium.build_workflow(
        [AgentSpec(name="department", graph=middle)],
        name="outer",
        supervisor=Plan(tasks=[PlannedTask(id="o1", agent="department", instruction="pay")]),
    )
    thread = f"{tenant}-nested"
    with podium.open_runtime(f"sqlite:///{tmp_path / 'n.db'}") as rt:
        app = rt.compile(outer)
        out = _start(app, thread, tenant)
        json.dumps([i.value for i in out["__interrupt__"]])
        gate = _only_gate(app, thread)
        assert (gate.request.workflow, gate.request.agent, gate.request.task_id) == (
            "inner",
            "leaf",
            "i1",
        )
        assert gate.request.thread_id == thread
        assert payments.sent == []
        out = decide(app, thread, "approve", context=_ctx(tenant, "editor"))
    assert out["status"] == "completed"
    assert out["answer"] == "leaf sent 10 to bob"
    assert payments.sent == [("bob", 10)]
    assert out["tasks"]["o1"]["status"] == "completed"


PAYEES = {"t1": ("alpha", "alice"), "t2": ("beta", "bob"), "t3": ("gamma", "carol")}


def _three_payers(scripted, payments: Payments, tmp_path):
    """Three parallel tasks, each on its own agent, each paying its own payee."""
    agents, seen = [], {}
    for task_id, (agent, payee) in PAYEES.items():
        seen[task_id] = Seen(lambda last, who=payee: f"{who}: {last.content}")
        agents.append(
            AgentSpec(
                name=agent,
                tools=[payments.tool()],
                model=scripted(
                    tool_call("send_payment", {"to": payee, "amount": 10}),
                    seen[task_id],
                    name=agent,
                ),
            )
        )
    plan = Plan(
        tasks=[PlannedTask(id=t, agent=a, instruction=f"pay {p}") for t, (a, p) in PAYEES.items()]
    )
    graph = podium.build_workflow(
        agents, name="payroll", supervisor=plan, policies=_policy(tmp_path)
    )
    return graph, seen


def _gates_by_task(app, thread: str) -> dict[str, str]:
    return {g.request.task_id: g.request.gate_id for g in pending_gates(app, thread)}


def test_three_parallel_gates_are_listed_together_and_decided_one_by_one(
    scripted, tenant, tmp_path
):
    payments = Payments()
    graph, seen = _three_payers(scripted, payments, tmp_path)
    thread, editor = f"{tenant}-one-by-one", _ctx(tenant, "editor")
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        out = _start(app, thread, tenant)
        assert len(out["__interrupt__"]) == 3
        gates = _gates_by_task(app, thread)
        assert set(gates) == {"t1", "t2", "t3"} and len(set(gates.values())) == 3
        assert {g.request.args["to"] for g in pending_gates(app, thread)} == {
            "alice",
            "bob",
            "carol",
        }
        assert len(rt.services.approvals.pending(tenant)[0]) == 3

        decide(app, thread, "approve", context=editor, gate=gates["t1"])
        assert payments.sent == [("alice", 10)]
        assert set(_gates_by_task(app, thread)) == {"t2", "t3"}
        # The first gate is gone: deciding it again is a double click.
        with pytest.raises(AlreadyDecided, match="already decided"):
            decide(app, thread, "approve", context=editor, gate=gates["t1"])

        decide(
            app,
            thread,
            Decision(decision="reject", comment="not bob"),
            context=editor,
            gate=gates["t2"],
        )
        assert set(_gates_by_task(app, thread)) == {"t3"}
        out = decide(app, thread, "approve", context=editor)  # bare: only one is left
    assert sorted(payments.sent) == [("alice", 10), ("carol", 10)]
    assert isinstance(seen["t2"].last, ToolMessage) and "not bob" in seen["t2"].last.content
    assert seen["t1"].last.content == "sent 10 to alice"
    results = {t: r["summary"] for t, r in out["results"].items()}
    assert results["t1"] == "alice: sent 10 to alice"
    assert results["t2"].startswith("bob: Rejected by") and "not bob" in results["t2"]
    assert results["t3"] == "carol: sent 10 to carol"
    assert out["status"] == "completed"


def test_parallel_gates_decided_at_once_each_decision_reaches_its_own_task(
    scripted, tenant, tmp_path
):
    payments = Payments()
    graph, seen = _three_payers(scripted, payments, tmp_path)
    thread, editor = f"{tenant}-at-once", _ctx(tenant, "editor")
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        _start(app, thread, tenant)
        gates = _gates_by_task(app, thread)

        with pytest.raises(GateError, match="3 gates are pending") as bare:
            decide(app, thread, "approve", context=editor)
        assert all(g in str(bare.value) for g in gates.values())
        with pytest.raises(GateError, match="unknown gate 'g-nope'") as unknown:
            decide(app, thread, "approve", context=editor, gate="g-nope")
        assert all(g in str(unknown.value) for g in gates.values())
        with pytest.raises(GateError, match="unknown gate 'g-nope'"):
            decide(
                app,
                thread,
                {gates["t1"]: Decision(decision="approve"), "g-nope": Decision(decision="approve")},
                context=editor,
            )
        # The refusals resumed nothing and claimed nothing.
        assert payments.sent == [] and len(pending_gates(app, thread)) == 3
        assert {r.status for r in rt.services.approvals.pending(tenant)[0]} == {"pending"}

        out = decide(
            app,
            thread,
            {
                gates["t1"]: Decision(decision="approve"),
                gates["t2"]: Decision(decision="reject", comment="bob is blocked"),
                gates["t3"]: Decision(decision="edit", args={"to": "carol", "amount": 99}),
            },
            context=editor,
        )
        assert pending_gates(app, thread) == []
    assert sorted(payments.sent) == [("alice", 10), ("carol", 99)]
    assert isinstance(seen["t2"].last, ToolMessage) and "bob is blocked" in seen["t2"].last.content
    results = {t: r["summary"] for t, r in out["results"].items()}
    assert results["t1"] == "alice: sent 10 to alice"
    assert "bob is blocked" in results["t2"]
    assert results["t3"] == "carol: sent 99 to carol"
    assert out["status"] == "completed"


# -- refusals ------------------------------------------------------------------------------


def test_user_without_the_role_is_refused_and_the_gate_stays_open(scripted, tenant, tmp_path):
    payments, seen = Payments(), Seen()
    graph = _payer_workflow(scripted, payments, _policy(tmp_path), seen)
    thread = f"{tenant}-forbidden"
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        _start(app, thread, tenant)
        gate = _only_gate(app, thread)
        with pytest.raises(GateForbidden, match="editor") as refused:
            decide(app, thread, "approve", context=_ctx(tenant, "viewer", user="vic"))
        assert "'vic'" in str(refused.value)
        assert _only_gate(app, thread).request.gate_id == gate.request.gate_id
        assert rt.services.approvals.get(gate.request.gate_id, tenant).status == "pending"
        assert payments.sent == []
        out = decide(app, thread, "approve", context=_ctx(tenant, "editor"))
        record = rt.services.approvals.get(gate.request.gate_id, tenant)
    assert out["status"] == "completed" and payments.sent == [("bob", 10)]
    assert record.decided_by == "ed"


def test_deciding_the_same_gate_twice_is_refused_and_the_effect_happens_once(
    scripted, tenant, tmp_path
):
    payments, seen = Payments(), Seen()
    graph = _payer_workflow(scripted, payments, _policy(tmp_path), seen)
    thread, editor = f"{tenant}-twice", _ctx(tenant, "editor")
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        _start(app, thread, tenant)
        gate_id = _only_gate(app, thread).request.gate_id
        decide(app, thread, Decision(decision="approve", user="ed"), context=editor)
        with pytest.raises(AlreadyDecided, match="already decided") as second:
            decide(app, thread, "reject", context=_ctx(tenant, "editor", user="eve"), gate=gate_id)
        assert "approve by ed" in str(second.value)
        with pytest.raises(GateError, match="no pending gate"):
            decide(app, thread, "approve", context=editor)
    assert payments.sent == [("bob", 10)]


def test_two_concurrent_decisions_on_one_gate_only_one_wins(
    durable_url, scripted, tenant, tmp_path
):
    """A double click or two browser tabs: both decide at once; one decision is applied."""
    payments, seen = Payments(), Seen()
    graph = _payer_workflow(scripted, payments, _policy(tmp_path), seen)
    thread = f"{tenant}-race"
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(graph)
        _start(app, thread, tenant)
        gate_id = _only_gate(app, thread).request.gate_id
        barrier, outcomes = threading.Barrier(2), {}

        def click(user: str, verdict: str) -> None:
            barrier.wait()
            try:
                decide(
                    app, thread, verdict, context=_ctx(tenant, "editor", user=user), gate=gate_id
                )
                outcomes[user] = "applied"
            except AlreadyDecided as exc:
                outcomes[user] = str(exc)

        workers = [
            threading.Thread(target=click, args=("ann", "approve")),
            threading.Thread(target=click, args=("bea", "reject")),
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=30)
        record = rt.services.approvals.get(gate_id, tenant)
        state = app.get_state(_config(thread)).values
    assert len(outcomes) == 2 and list(outcomes.values()).count("applied") == 1
    [winner] = [u for u, o in outcomes.items() if o == "applied"]
    [loser] = [o for o in outcomes.values() if o != "applied"]
    assert "already decided" in loser and f"by {winner}" in loser
    assert record.decided_by == winner
    assert payments.sent == ([("bob", 10)] if winner == "ann" else [])
    assert state["status"] == "completed"


def test_raw_resume_by_a_user_without_the_role_keeps_the_gate_open(scripted, tenant, tmp_path):
    """Resuming with LangGraph directly (not `decide`) is checked inside the graph too."""
    payments, seen = Payments(), Seen()
    graph = _payer_workflow(scripted, payments, _policy(tmp_path), seen)
    thread = f"{tenant}-raw"
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        _start(app, thread, tenant)
        gate = _only_gate(app, thread)
        resume = {gate.interrupt_id: Decision(decision="approve").model_dump()}
        app.invoke(Command(resume=resume), _config(thread), context=_ctx(tenant, "viewer"))
        still = _only_gate(app, thread)
        assert still.request.gate_id == gate.request.gate_id
        assert "may not decide" in still.note
        assert payments.sent == []
        out = decide(app, thread, "approve", context=_ctx(tenant, "editor"))
    assert out["status"] == "completed" and payments.sent == [("bob", 10)]


# -- expiry and escalation ------------------------------------------------------------------


def test_expired_gate_is_escalated_never_approved_and_can_still_be_decided(
    scripted, tenant, tmp_path
):
    payments, seen = Payments(), Seen()
    graph = _payer_workflow(scripted, payments, _policy(tmp_path), seen)
    clock = FakeClock(1_700_000_000.0)
    thread = f"{tenant}-expiry"
    with podium.open_runtime(f"sqlite:///{tmp_path / 'e.db'}", clock=clock) as rt:
        app = rt.compile(graph)
        _start(app, thread, tenant)
        gate_id = _only_gate(app, thread).request.gate_id
        approvals = rt.services.approvals

        clock.now += EXPIRES_IN - 1
        records, escalated = approvals.pending(tenant)
        assert [(r.gate_id, r.status) for r in records] == [(gate_id, "pending")]
        assert escalated == []

        clock.now += 2
        records, escalated = approvals.pending(tenant)
        assert [(r.gate_id, r.status) for r in records] == [(gate_id, "escalated")]
        assert [r.gate_id for r in escalated] == [gate_id]
        assert escalated[0].escalated_at == clock.now
        # Newly escalated only once; it stays listed, open, and nothing ran.
        records, escalated = approvals.pending(tenant)
        assert [r.status for r in records] == ["escalated"] and escalated == []
        assert payments.sent == [] and _only_gate(app, thread).request.gate_id == gate_id

        out = decide(app, thread, "approve", context=_ctx(tenant, "editor"))
        record = approvals.get(gate_id, tenant)
        assert approvals.pending(tenant) == ([], [])
    assert out["status"] == "completed" and payments.sent == [("bob", 10)]
    assert record.status == "decided" and record.escalated_at is not None


def test_approvals_command_escalates_expired_gates_and_records_an_audit_event(
    scripted, tenant, tmp_path, capsys
):
    payments, seen = Payments(), Seen()
    graph = _payer_workflow(scripted, payments, _policy(tmp_path), seen)
    # The gate was raised two hours ago (by the injected clock); the command, run now with
    # the real clock, finds it past its expiry.
    clock = FakeClock(time.time() - 2 * EXPIRES_IN)
    url, thread = f"sqlite:///{tmp_path / 'cli.db'}", f"{tenant}-cli"
    with podium.open_runtime(url, clock=clock) as rt:
        app = rt.compile(graph)
        _start(app, thread, tenant)
        gate_id = _only_gate(app, thread).request.gate_id

    assert cmd_approvals(argparse.Namespace(db=url, tenant=tenant)) == 0
    captured = capsys.readouterr()
    assert gate_id in captured.out and "escalated" in captured.out
    assert f"escalated: gate {gate_id}" in captured.err

    with podium.open_runtime(url, clock=clock) as rt:
        app = rt.compile(graph)
        [event] = rt.services.audit.events(tenant, kind="escalation")
        assert event.payload["gate_id"] == gate_id and event.thread_id == thread
        assert rt.services.approvals.get(gate_id, tenant).status == "escalated"
        assert payments.sent == []
        # Listing again escalates nothing new.
        assert cmd_approvals(argparse.Namespace(db=url, tenant=tenant)) == 0
        assert len(rt.services.audit.events(tenant, kind="escalation")) == 1
        out = decide(app, thread, "approve", context=_ctx(tenant, "editor"))
    assert out["status"] == "completed" and payments.sent == [("bob", 10)]


# -- the thread index while a run waits at a gate ------------------------------------------


def _stored_status(rt, thread: str, tenant: str) -> str:
    """The status the thread index holds (what the server, metrics and SQL readers see)."""
    return rt.threads.get(thread, tenant_id=tenant).status


def test_index_says_waiting_at_the_demos_publish_gate_then_completed(durable_url, tenant):
    thread = f"{tenant}-brief"
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(podium.build_research_brief())
        out = app.invoke({"goal": DEMO_GOAL}, _config(thread), context=_ctx(tenant))
        assert out["__interrupt__"] and _only_gate(app, thread).request.tool == "publish_report"
        assert _stored_status(rt, thread, tenant) == "waiting"
        with pytest.raises(GateForbidden):
            decide(app, thread, "approve", context=_ctx(tenant))
        assert _stored_status(rt, thread, tenant) == "waiting"
        out = decide(app, thread, "approve", context=_ctx(tenant, "editor"))
        assert out["status"] == "completed"
        assert _stored_status(rt, thread, tenant) == "completed"


async def test_index_says_waiting_at_a_gate_of_an_async_run(durable_url, tenant):
    thread = f"{tenant}-abrief"
    async with podium.open_async_runtime(durable_url) as rt:
        app = rt.compile(podium.build_research_brief())
        await app.ainvoke({"goal": DEMO_GOAL}, _config(thread), context=_ctx(tenant))
        assert len(await apending_gates(app, thread)) == 1
        assert _stored_status(rt, thread, tenant) == "waiting"
        out = await adecide(app, thread, "approve", context=_ctx(tenant, "editor"))
        assert out["status"] == "completed"
        assert _stored_status(rt, thread, tenant) == "completed"


def test_index_says_waiting_at_a_question_gate_then_completed(durable_url, scripted, tenant):
    agent = AgentSpec(
        name="clerk",
        tools=[ask_human],
        model=scripted(tool_call("ask_human", {"question": "Which city?"}), Seen(), name="clerk"),
    )
    plan = Plan(tasks=[PlannedTask(id="t1", agent="clerk", instruction="book a trip")])
    graph = podium.build_workflow(
        [agent], name="trip", supervisor=plan, policies=allowing(clerk=["ask_human"])
    )
    thread = f"{tenant}-question"
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(graph)
        _start(app, thread, tenant)
        assert _only_gate(app, thread).request.kind == "question"
        assert _stored_status(rt, thread, tenant) == "waiting"
        out = decide(
            app, thread, Decision(decision="respond", response="Lisbon"), context=_ctx(tenant)
        )
        assert out["answer"] == "saw: Lisbon"
        assert _stored_status(rt, thread, tenant) == "completed"


def test_index_says_waiting_at_a_gate_of_an_inner_workflow_then_completed(
    durable_url, scripted, tenant, tmp_path
):
    payments = Payments()
    inner = _payer_workflow(scripted, payments, _policy(tmp_path), Seen(), name="inner")
    outer = podium.build_workflow(
        [AgentSpec(name="team", graph=inner.compile())],
        name="outer",
        supervisor=Plan(tasks=[PlannedTask(id="o1", agent="team", instruction="pay")]),
    )
    thread = f"{tenant}-inner"
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(outer)
        _start(app, thread, tenant)
        assert _only_gate(app, thread).request.workflow == "inner"
        assert _stored_status(rt, thread, tenant) == "waiting"
        out = decide(app, thread, "approve", context=_ctx(tenant, "editor"))
        assert out["status"] == "completed" and payments.sent == [("bob", 10)]
        assert _stored_status(rt, thread, tenant) == "completed"


def test_index_says_waiting_at_plan_and_answer_gates(durable_url, scripted, tenant, tmp_path):
    boss = scripted(_plan_json(("t1", "writer", "write")), name="boss")
    agents = [AgentSpec(name="writer", model=scripted("draft answer", name="writer"))]
    graph = podium.build_workflow(
        agents, name="reviewed", model=boss, approve_plan=True, approve_answer=True
    )
    thread = f"{tenant}-reviewed"
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(graph)
        _start(app, thread, tenant)
        assert _only_gate(app, thread).request.kind == "plan"
        assert _stored_status(rt, thread, tenant) == "waiting"
        decide(app, thread, "approve", context=_ctx(tenant))
        assert _only_gate(app, thread).request.kind == "answer"
        assert _stored_status(rt, thread, tenant) == "waiting"
        out = decide(app, thread, "approve", context=_ctx(tenant))
        assert out["status"] == "completed"
        assert _stored_status(rt, thread, tenant) == "completed"


def test_index_stays_waiting_until_the_last_parallel_gate_is_decided(
    durable_url, scripted, tenant, tmp_path
):
    payments = Payments()
    graph, _seen = _three_payers(scripted, payments, tmp_path)
    thread, editor = f"{tenant}-three", _ctx(tenant, "editor")
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(graph)
        _start(app, thread, tenant)
        gates = _gates_by_task(app, thread)
        assert _stored_status(rt, thread, tenant) == "waiting"
        decide(app, thread, "approve", context=editor, gate=gates["t1"])
        assert _stored_status(rt, thread, tenant) == "waiting"
        decide(app, thread, "approve", context=editor, gate=gates["t2"])
        assert _stored_status(rt, thread, tenant) == "waiting"
        out = decide(app, thread, "approve", context=editor)
        assert out["status"] == "completed" and len(payments.sent) == 3
        assert _stored_status(rt, thread, tenant) == "completed"


class IndexReader:
    """A scripted reply that reads the thread index while the run is under way."""

    def __init__(self) -> None:
        self.rt = None
        self.thread, self.tenant = "", ""
        self.seen: list[str] = []

    def __call__(self, messages) -> str:
        self.seen.append(_stored_status(self.rt, self.thread, self.tenant))
        return "done"


def test_index_runs_again_once_a_raw_resume_decides_parallel_gates_at_once(
    durable_url, scripted, tenant, tmp_path
):
    """LangGraph's own `Command(resume={interrupt id: decision, ...})`, no `decide`: each
    gate is marked decided from inside its task, and the last of them lets the thread run."""
    payments, reader = Payments(), IndexReader()
    agents = [
        AgentSpec(
            name=agent,
            tools=[payments.tool()],
            model=scripted(tool_call("send_payment", {"to": payee, "amount": 10}), Seen()),
        )
        for agent, payee in (("alpha", "alice"), ("beta", "bob"))
    ]
    agents.append(AgentSpec(name="checker", model=scripted(reader, name="checker")))
    plan = Plan(
        tasks=[
            PlannedTask(id="t1", agent="alpha", instruction="pay alice"),
            PlannedTask(id="t2", agent="beta", instruction="pay bob"),
            PlannedTask(id="t3", agent="checker", instruction="check", depends_on=["t1", "t2"]),
        ]
    )
    graph = podium.build_workflow(
        agents, name="payroll", supervisor=plan, policies=_policy(tmp_path)
    )
    thread = f"{tenant}-raw-parallel"
    with podium.open_runtime(durable_url) as rt:
        reader.rt, reader.thread, reader.tenant = rt, thread, tenant
        app = rt.compile(graph)
        _start(app, thread, tenant)
        gates = pending_gates(app, thread)
        assert len(gates) == 2 and _stored_status(rt, thread, tenant) == "waiting"
        resume = {g.interrupt_id: Decision(decision="approve").model_dump() for g in gates}
        out = app.invoke(Command(resume=resume), _config(thread), context=_ctx(tenant, "editor"))
        assert out["status"] == "completed" and len(payments.sent) == 2
        assert reader.seen == ["running"]
        assert {rt.services.approvals.get(g.request.gate_id, tenant).status for g in gates} == {
            "decided"
        }


def test_a_gate_left_open_by_an_earlier_round_does_not_keep_the_next_one_waiting(
    durable_url, scripted, tenant
):
    reader = IndexReader()
    boss = scripted(_plan_json(("t1", "writer", "one")), _plan_json(("t1", "writer", "two")))
    agents = [AgentSpec(name="writer", model=scripted(reader, name="writer"))]
    graph = podium.build_workflow(agents, name="reviewed", model=boss, approve_plan=True)
    thread = f"{tenant}-rounds"
    with podium.open_runtime(durable_url) as rt:
        reader.rt, reader.thread, reader.tenant = rt, thread, tenant
        app = rt.compile(graph)
        _start(app, thread, tenant)
        stale = _only_gate(app, thread).request.gate_id
        # A new goal on the thread while the first plan waits: a new round.
        app.invoke({"goal": "pay again"}, _config(thread), context=_ctx(tenant))
        assert _only_gate(app, thread).request.gate_id != stale
        assert _stored_status(rt, thread, tenant) == "waiting"
        out = decide(app, thread, "approve", context=_ctx(tenant))
        assert out["status"] == "completed"
        # The writer ran after the only live gate was decided: the thread was running.
        assert reader.seen == ["running"]
        # The first round's gate cannot be decided any more: it is not listed as pending.
        assert rt.services.approvals.get(stale, tenant).status == "abandoned"
        assert rt.services.approvals.pending(tenant)[0] == []
