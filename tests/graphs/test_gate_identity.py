"""Who decided a gate comes from the caller, never from the decision's payload.

ana (an editor) sends `{"decision": "approve", "user": "ceo@acme"}`: through `decide` and
through a raw LangGraph resume it is refused, and what is finally recorded (approvals table,
audit chain) names ana. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import textwrap
import threading

import pytest
from langchain_core.tools import tool
from langgraph.types import Command

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext
from podium.gates.decision import GateForbidden, decide, pending_gates
from podium.gates.request import Decision, caller_mismatch
from podium.policies import load_policies
from podium.testing import tool_call

FORGED = {"decision": "approve", "user": "ceo@acme"}
POLICY = """
global:
  tools: {allow: ["*"]}
tools:
  send_payment:
    side_effects: true
    idempotent: false
    requires_approval: {roles: [editor]}
"""


class Payments:
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


def _graph(scripted, payments: Payments, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(POLICY).lstrip("\n"), encoding="utf-8")
    payer = AgentSpec(
        name="payer",
        tools=[payments.tool()],
        model=scripted(
            tool_call("send_payment", {"to": "bob", "amount": 10}),
            lambda messages: f"done: {messages[-1].content}",
            name="payer",
        ),
    )
    plan = Plan(tasks=[PlannedTask(id="t1", agent="payer", instruction="pay bob")])
    return podium.build_workflow([payer], name="pay", supervisor=plan, policies=load_policies(path))


def _config(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


def _ana(tenant: str) -> RunContext:
    return RunContext(tenant_id=tenant, user_id="ana", roles=frozenset({"editor"}))


def _recorded(rt, tenant: str, thread: str, gate_id: str):
    rt.services.flush()
    record = rt.services.approvals.get(gate_id, tenant)
    events = rt.services.audit.events(tenant, thread_id=thread)
    return record, events


def test_caller_mismatch_accepts_no_name_or_the_callers_own() -> None:
    assert caller_mismatch(Decision(decision="approve"), "ana") is None
    assert caller_mismatch(Decision(decision="approve", user="ana"), "ana") is None
    problem = caller_mismatch(Decision.model_validate(FORGED), "ana")
    assert problem is not None and "'ceo@acme'" in problem and "'ana'" in problem


def test_decide_refuses_a_decision_naming_another_user(durable_url, scripted, tenant, tmp_path):
    payments = Payments()
    thread = f"{tenant}-forged-api"
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(_graph(scripted, payments, tmp_path))
        app.invoke({"goal": "pay"}, _config(thread), context=_ana(tenant))
        [gate] = pending_gates(app, thread)
        with pytest.raises(GateForbidden, match="names user 'ceo@acme' but the caller is 'ana'"):
            decide(app, thread, Decision.model_validate(FORGED), context=_ana(tenant))
        # Nothing was resumed or recorded: the gate is still open.
        assert rt.services.approvals.get(gate.request.gate_id, tenant).status == "pending"
        assert payments.sent == []
        out = decide(app, thread, Decision(decision="approve"), context=_ana(tenant))
        record, events = _recorded(rt, tenant, thread, gate.request.gate_id)
        verified = rt.services.audit.verify(tenant)
    assert out["status"] == "completed" and payments.sent == [("bob", 10)]
    assert record.decided_by == "ana" and record.decision["user"] == "ana"
    [approval] = [e for e in events if e.kind == "approval"]
    assert str(approval.actor) == "user:ana" and approval.payload["user"] == "ana"
    assert not any("ceo@acme" in repr(e.payload) + str(e.actor) for e in events)
    assert verified.ok


def test_a_raw_resume_naming_another_user_keeps_the_gate_open_and_records_the_caller(
    durable_url, scripted, tenant, tmp_path
):
    """Resuming with LangGraph directly (no `decide`): the graph checks the name itself."""
    payments = Payments()
    thread = f"{tenant}-forged-raw"
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(_graph(scripted, payments, tmp_path))
        app.invoke({"goal": "pay"}, _config(thread), context=_ana(tenant))
        [gate] = pending_gates(app, thread)
        app.invoke(
            Command(resume={gate.interrupt_id: FORGED}), _config(thread), context=_ana(tenant)
        )
        [still] = pending_gates(app, thread)
        assert still.request.gate_id == gate.request.gate_id
        assert "names user 'ceo@acme' but the caller is 'ana'" in still.note
        assert rt.services.approvals.get(gate.request.gate_id, tenant).status == "pending"
        assert payments.sent == []
        # Naming oneself is accepted; the record is the caller's either way.
        out = app.invoke(
            Command(resume={still.interrupt_id: {"decision": "approve", "user": "ana"}}),
            _config(thread),
            context=_ana(tenant),
        )
        record, events = _recorded(rt, tenant, thread, gate.request.gate_id)
    assert out["status"] == "completed" and payments.sent == [("bob", 10)]
    assert record.status == "decided" and record.decided_by == "ana"
    [approval] = [e for e in events if e.kind == "approval"]
    assert str(approval.actor) == "user:ana" and approval.payload["user"] == "ana"
    assert not any("ceo@acme" in repr(e.payload) + str(e.actor) for e in events)


def test_a_rejection_names_the_caller_to_the_agent(scripted, tenant, tmp_path):
    payments = Payments()
    thread = f"{tenant}-reject"
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(_graph(scripted, payments, tmp_path))
        app.invoke({"goal": "pay"}, _config(thread), context=_ana(tenant))
        out = decide(app, thread, Decision(decision="reject", comment="no"), context=_ana(tenant))
    assert payments.sent == []
    assert "done: Rejected by ana: no. The tool was not run." in out["answer"]
