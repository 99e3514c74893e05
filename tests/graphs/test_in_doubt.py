"""In doubt is a state: a task whose side effect is in doubt waits, and so does its run.

The ledger is given a call that started and never reported (what a process killed
mid-tool leaves; `test_exactly_once.py` makes one with a real SIGKILL). The task moves
to `waiting` in the checkpoint, the run's status is `waiting` in the state, in what
`invoke` returns and in the thread index, an effect gate waits for an operator, and each
answer (done / retry / abandon) lets the run finish with the effect run at most once.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.tools import tool

import podium
from podium import AgentSpec, Decision, Plan, PlannedTask, RunContext
from podium.stores.effects.keys import EffectKey
from podium.testing import tool_call

POLICY = """\
agents:
  payer:
    tools: {allow: [pay]}
tools:
  pay: {side_effects: true, idempotent: false}
"""


def _config(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def _workflow(tmp_path, scripted, payments: list[int], tasks: list[str]) -> Any:
    @tool
    def pay(amount: int) -> str:
        """Pay an amount (a side effect)."""
        payments.append(amount)
        return f"paid {amount}"

    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    # Two model calls per task: the reply asking for `pay` (the task's second run replays
    # it), then the answer after the tool's result. Tasks run in parallel, so each reply
    # is made for the task that asks.
    model = scripted(*[_reply] * (2 * len(tasks)), name="payer")
    agent = AgentSpec(name="payer", tools=[pay], model=model)
    plan = Plan(
        tasks=[PlannedTask(id=t, agent="payer", instruction=f"pay 5 for {t}") for t in tasks]
    )
    return podium.build_workflow([agent], name="payments", supervisor=plan, policies=policy)


def _reply(messages: list[BaseMessage]) -> Any:
    if any(isinstance(m, ToolMessage) for m in messages):
        return "paid"
    task = re.search(r"pay 5 for (t\d+)", messages[-1].text)
    assert task is not None, messages[-1].text
    return tool_call("pay", {"amount": 5}, id=f"call-pay-{task.group(1)}")


def _in_doubt(rt: Any, tenant: str, thread: str, task: str) -> EffectKey:
    """Leave `pay` of `task` (round 1) started and never reported in the ledger."""
    key = EffectKey(tenant, thread, task, f"r1:call-pay-{task}")
    rt.services.effects.begin(key, "pay", {"amount": 5})
    return key


def _transitions(task: dict[str, Any]) -> list[str]:
    return [entry["to"] for entry in task["history"]]


@pytest.mark.parametrize(
    ("answer", "paid", "ledger"),
    [
        ("done", [], ("completed", "mark_done", 1)),
        ("retry", [5], ("completed", "rerun", 2)),
        ("abandon", [], ("failed", "abandon", 1)),
    ],
)
def test_a_task_with_an_effect_in_doubt_waits_and_so_does_its_run(
    answer, paid, ledger, durable_url, tmp_path, scripted, tenant
):
    payments: list[int] = []
    graph = _workflow(tmp_path, scripted, payments, ["t1"])
    thread = f"{tenant}-{answer}"
    ana = RunContext(tenant_id=tenant, user_id="ana")
    oncall = RunContext(tenant_id=tenant, user_id="oncall")
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(graph)
        _in_doubt(rt, tenant, thread, "t1")
        out = app.invoke({"goal": "pay"}, _config(thread), context=ana)

        # Waiting, in everything the embedded API reads.
        assert out["status"] == "waiting"
        assert app.get_state(_config(thread)).values["status"] == "waiting"
        assert rt.threads.get(thread, tenant_id=tenant).status == "waiting"
        task = out["tasks"]["t1"]
        assert task["status"] == "waiting"
        assert _transitions(task) == ["initializing", "running", "waiting"]
        assert "effect in doubt: pay started at" in task["history"][-1]["reason"]
        [gate] = podium.pending_gates(app, thread)
        assert (gate.request.kind, gate.request.tool, gate.request.task_id) == (
            "effect",
            "pay",
            "t1",
        )
        assert payments == [], "an effect in doubt ran again before anyone answered"

        done = podium.decide(app, thread, Decision(decision=answer), context=oncall)
        info = rt.threads.get(thread, tenant_id=tenant)
        [effect] = rt.services.effects.list(tenant, thread_id=thread)
        events = rt.services.audit.timeline(thread, tenant)

    assert (done["status"], info.status) == ("completed", "completed")
    assert _transitions(done["tasks"]["t1"]) == [
        "initializing",
        "running",
        "waiting",
        "running",
        "completed",
    ]
    assert done["tasks"]["t1"].get("replay_ns") is None  # kept only while it waited
    assert payments == paid
    assert (effect.status, effect.resolution, effect.attempts) == ledger
    assert effect.resolved_by == "oncall"
    assert [
        (e.payload["kind"], e.payload["decision"], e.payload["user"])
        for e in events
        if e.kind == "approval"
    ] == [("effect", answer, "oncall")]
    moves = [(e.payload["from"], e.payload["to"]) for e in events if e.kind == "transition"]
    assert moves.count(("running", "waiting")) == 1
    assert sum(bool(e.kind == "error" and e.payload.get("in_doubt")) for e in events) == 1


GATED = POLICY.replace(
    "idempotent: false}", "idempotent: false, requires_approval: {roles: [editor]}}"
)


class Crash(BaseException):
    """What a process killed mid-tool leaves: the effect happened, nothing reported."""


@pytest.mark.parametrize("approval", ["approve", "edit"])
def test_an_approved_call_found_in_doubt_is_not_asked_again(
    approval, durable_url, tmp_path, scripted, tenant
):
    # Approved, started, then the process died: the task runs again, finds the effect in
    # doubt, waits, and runs once more with its recorded replies, so it reaches the same
    # approval gate: the decision given before stands (edits included), it is not asked
    # again, and the effect gate is what waits.
    payments: list[int] = []
    crashes = [Crash("killed mid-tool")]

    @tool
    def pay(amount: int) -> str:
        """Pay an amount (a side effect)."""
        payments.append(amount)
        if crashes:
            raise crashes.pop()
        return f"paid {amount}"

    policy = tmp_path / "policy.yaml"
    policy.write_text(GATED, encoding="utf-8")
    graph = podium.build_workflow(
        [AgentSpec(name="payer", tools=[pay], model=scripted(_reply, _reply, name="payer"))],
        name="payments",
        supervisor=Plan(tasks=[PlannedTask(id="t1", agent="payer", instruction="pay 5 for t1")]),
        policies=policy,
    )
    thread = f"{tenant}-gated-{approval}"
    ana = RunContext(tenant_id=tenant, user_id="ana", roles=("editor",))
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(graph)
        app.invoke({"goal": "pay"}, _config(thread), context=ana)
        [gate] = podium.pending_gates(app, thread)
        assert gate.request.kind == "tool"
        decision = Decision(decision=approval, args={"amount": 7} if approval == "edit" else None)
        with pytest.raises(Crash):
            podium.decide(app, thread, decision, context=ana)
        amount = 7 if approval == "edit" else 5
        assert payments == [amount]

        out = app.invoke(None, _config(thread), context=ana)  # the process restarted
        assert out["status"] == "waiting"
        [gate] = podium.pending_gates(app, thread)
        assert gate.request.kind == "effect", "the approval was asked for again"
        assert gate.request.args == {"amount": amount}
        done = podium.decide(app, thread, Decision(decision="done"), context=ana)
        events = rt.services.audit.timeline(thread, tenant)

    assert done["status"] == "completed"
    assert payments == [amount]  # the approved call, run once
    assert [e.payload["kind"] for e in events if e.kind == "approval"] == ["tool", "effect"]


def test_two_tasks_in_doubt_in_one_step_wait_together(durable_url, tmp_path, scripted, tenant):
    payments: list[int] = []
    graph = _workflow(tmp_path, scripted, payments, ["t1", "t2"])
    thread = f"{tenant}-two"
    oncall = RunContext(tenant_id=tenant, user_id="oncall")
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(graph)
        for task in ("t1", "t2"):
            _in_doubt(rt, tenant, thread, task)
        out = app.invoke({"goal": "pay"}, _config(thread), context=RunContext(tenant_id=tenant))
        gates = podium.pending_gates(app, thread)
        assert out["status"] == "waiting"
        assert {t: out["tasks"][t]["status"] for t in ("t1", "t2")} == {
            "t1": "waiting",
            "t2": "waiting",
        }
        assert sorted(g.request.task_id for g in gates) == ["t1", "t2"]
        by_task = {g.request.task_id: g.request.gate_id for g in gates}
        # One decided: the other still waits, and so does the run.
        out = podium.decide(
            app, thread, Decision(decision="done"), context=oncall, gate=by_task["t1"]
        )
        assert out["status"] == "waiting"
        assert [g.request.task_id for g in podium.pending_gates(app, thread)] == ["t2"]
        out = podium.decide(app, thread, Decision(decision="retry"), context=oncall)
        info = rt.threads.get(thread, tenant_id=tenant)

    assert (out["status"], info.status) == ("completed", "completed")
    assert payments == [5]


async def test_an_async_run_waits_for_an_effect_in_doubt(durable_url, tmp_path, scripted, tenant):
    payments: list[int] = []
    graph = _workflow(tmp_path, scripted, payments, ["t1"])
    thread = f"{tenant}-async"
    oncall = RunContext(tenant_id=tenant, user_id="oncall")
    async with podium.open_async_runtime(durable_url) as rt:
        app = rt.compile(graph)
        _in_doubt(rt, tenant, thread, "t1")
        out = await app.ainvoke(
            {"goal": "pay"}, _config(thread), context=RunContext(tenant_id=tenant)
        )
        assert (out["status"], out["tasks"]["t1"]["status"]) == ("waiting", "waiting")
        assert rt.threads.get(thread, tenant_id=tenant).status == "waiting"
        [gate] = await podium.apending_gates(app, thread)
        assert gate.request.kind == "effect"
        out = await podium.adecide(app, thread, Decision(decision="done"), context=oncall)

    assert out["status"] == "completed"
    assert payments == []
