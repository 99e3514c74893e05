"""Gates survive a restart: run until the gate, close the runtime (or end the process),
decide from a fresh runtime or a fresh process; the side effect happens exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import tool

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext
from podium.gates.decision import decide, pending_gates
from podium.gates.request import Decision
from podium.policies import load_policies
from podium.stores.approvals import AlreadyDecided
from podium.testing import ScriptedChatModel, tool_call

ROOT = Path(__file__).resolve().parents[2]
CALL_ID = "call_pay_bob"
POLICY = """
global:
  tools: {allow: ["*"]}
tools:
  send_payment:
    side_effects: true
    idempotent: false
    retry: {attempts: 1}
    args:
      amount: {required: true, max: 1000}
    requires_approval: {roles: [editor], expires_in: 3600}
"""


def build_payroll(counter: str | Path, responses: list[Any], policy_path: str | Path):
    """A one-task workflow whose agent pays bob; every real payment appends a line to
    `counter`, so the count is visible across processes. Returns (graph, model)."""
    counter = Path(counter)

    @tool
    def send_payment(to: str, amount: int) -> str:
        """Send `amount` euros to the account `to`."""
        with counter.open("a", encoding="utf-8") as file:
            file.write(f"{to} {amount}\n")
        return f"sent {amount} to {to}"

    model = ScriptedChatModel(responses=list(responses), name="payer")
    agent = AgentSpec(name="payer", tools=[send_payment], model=model)
    plan = Plan(tasks=[PlannedTask(id="t1", agent="payer", instruction="pay bob")])
    graph = podium.build_workflow(
        [agent], name="payroll", supervisor=plan, policies=load_policies(policy_path)
    )
    return graph, model


FIRST = [tool_call("send_payment", {"to": "bob", "amount": 10}, id=CALL_ID)]
SECOND = [lambda messages: f"paid: {messages[-1].content}"]


def run_until_gate(url: str, tenant: str, thread: str, counter: str, policy: str) -> dict:
    """Start the run; it stops at the gate. Used in-process and by a subprocess."""
    graph, model = build_payroll(counter, FIRST, policy)
    with podium.open_runtime(url) as rt:
        app = rt.compile(graph)
        out = app.invoke(
            {"goal": "pay bob"},
            {"configurable": {"thread_id": thread}},
            context=RunContext(tenant_id=tenant, user_id="starter"),
        )
        gates = [g.request.gate_id for g in pending_gates(app, thread)]
    model.assert_consumed()
    return {"interrupted": "__interrupt__" in out, "gates": gates}


def approve_in_fresh_runtime(url: str, tenant: str, thread: str, counter: str, policy: str) -> dict:
    """Decide the pending gate as an editor from a runtime that never saw the run start."""
    graph, model = build_payroll(counter, SECOND, policy)
    editor = RunContext(tenant_id=tenant, user_id="ed", roles=frozenset({"editor"}))
    with podium.open_runtime(url) as rt:
        app = rt.compile(graph)
        [gate] = pending_gates(app, thread)
        out = decide(app, thread, Decision(decision="approve", user="ed"), context=editor)
    model.assert_consumed()
    return {"gate": gate.request.gate_id, "status": out["status"], "answer": out["answer"]}


def _in_subprocess(function: str, *args: str) -> dict:
    code = (
        "import json, sys\n"
        f"from tests.graphs.test_gates_restart import {function}\n"
        f"print(json.dumps({function}(*sys.argv[1:])))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _lines(counter: Path) -> list[str]:
    return counter.read_text(encoding="utf-8").splitlines() if counter.exists() else []


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(POLICY).lstrip("\n"), encoding="utf-8")
    return path


def test_tool_gate_decided_from_a_fresh_runtime_after_restart(
    durable_url, tenant, tmp_path, policy_file
):
    counter, thread = tmp_path / "payments.txt", f"{tenant}-restart"
    args = (durable_url, tenant, thread, str(counter), str(policy_file))
    started = run_until_gate(*args)
    assert started["interrupted"] and len(started["gates"]) == 1
    assert _lines(counter) == []

    decided = approve_in_fresh_runtime(*args)
    assert decided == {
        "gate": started["gates"][0],
        "status": "completed",
        "answer": "paid: sent 10 to bob",
    }
    assert _lines(counter) == ["bob 10"]

    # A third runtime: replaying the finished thread and deciding again change nothing.
    graph, _ = build_payroll(counter, [], policy_file)
    editor = RunContext(tenant_id=tenant, user_id="eve", roles=frozenset({"editor"}))
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(graph)
        again = app.invoke(None, {"configurable": {"thread_id": thread}}, context=editor)
        with pytest.raises(AlreadyDecided, match="already decided"):
            decide(app, thread, "approve", context=editor, gate=started["gates"][0])
        record = rt.services.approvals.get(started["gates"][0], tenant)
        [effect] = rt.services.effects.list(tenant, thread_id=thread)
    assert again["status"] == "completed"
    assert _lines(counter) == ["bob 10"]
    assert (record.status, record.decided_by) == ("decided", "ed")
    assert effect.status == "completed"


def test_gate_raised_in_one_process_is_decided_in_another(
    durable_url, tenant, tmp_path, policy_file
):
    counter, thread = tmp_path / "payments.txt", f"{tenant}-processes"
    args = (durable_url, tenant, thread, str(counter), str(policy_file))
    started = _in_subprocess("run_until_gate", *args)
    assert started["interrupted"] and len(started["gates"]) == 1
    assert _lines(counter) == []

    decided = _in_subprocess("approve_in_fresh_runtime", *args)
    assert decided["status"] == "completed" and decided["gate"] == started["gates"][0]
    assert decided["answer"] == "paid: sent 10 to bob"
    assert _lines(counter) == ["bob 10"]

    graph, _ = build_payroll(counter, [], policy_file)
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(graph)
        state = app.get_state({"configurable": {"thread_id": thread}})
        record = rt.services.approvals.get(started["gates"][0], tenant)
        assert pending_gates(app, thread) == []
    assert state.values["status"] == "completed" and not state.next
    assert record.status == "decided" and record.decided_by == "ed"
    assert _lines(counter) == ["bob 10"]


def test_plan_gate_survives_a_restart_and_takes_an_edit(durable_url, scripted, tenant):
    boss = scripted(
        json.dumps(
            {"tasks": [{"id": "t1", "agent": "writer", "instruction": "draft", "depends_on": []}]}
        ),
        name="boss",
    )
    writer = scripted(lambda messages: f"wrote: {messages[-1].content[-40:]}", name="writer")
    graph = podium.build_workflow(
        [AgentSpec(name="writer", model=writer)],
        name="planned",
        model=boss,
        approve_plan=True,
        approver_roles=["lead"],
    )
    thread, config = f"{tenant}-plan", {"configurable": {"thread_id": f"{tenant}-plan"}}
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(graph)
        out = app.invoke({"goal": "a brief"}, config, context=RunContext(tenant_id=tenant))
        assert out["__interrupt__"][0].value["kind"] == "plan"
        assert writer.calls == []
    edited = [{"id": "t1", "agent": "writer", "instruction": "draft on solar", "depends_on": []}]
    lead = RunContext(tenant_id=tenant, user_id="lee", roles=frozenset({"lead"}))
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(graph)
        [gate] = pending_gates(app, thread)
        assert gate.request.plan[0]["instruction"] == "draft"
        out = decide(app, thread, Decision(decision="edit", plan=edited), context=lead)
        [info] = rt.threads.list(tenant_id=tenant)
    assert out["status"] == "completed" and info.status == "completed"
    assert out["plan"][0]["instruction"] == "draft on solar"
    assert "draft on solar" in writer.calls[0][-1].content
