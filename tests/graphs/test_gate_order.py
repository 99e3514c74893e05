"""Two gated calls in one model reply: each decision applies to the gate it names.

The payer's one reply asks to pay alice and bob; both calls need approval. LangGraph hands
a task's resume values to its `interrupt()` calls in the order they are reached, so the
gates of one reply are raised one at a time, in call order, before any of its calls run.
The call shown first is made slow to reach its gate (its gate is slow to open), which would
let the other call take its decision if the calls reached their gates in parallel. On
SQLite and PostgreSQL, sync and async, in both orders of the calls and both assignments of
approve/reject.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import tool
from langgraph.types import Command

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext
from podium.gates.decision import (
    PendingGate,
    adecide,
    apending_gates,
    decide,
    pending_gates,
)
from podium.gates.request import Decision, GateRequest
from podium.policies import load_policies
from podium.stores.approvals import GateError
from podium.testing import tool_calls

POLICY = """
global:
  tools: {allow: ["*"]}
tools:
  send_payment:
    side_effects: true
    idempotent: false
    retry: {attempts: 1}
    requires_approval: {roles: [editor]}
"""
AMOUNTS = {"alice": 10, "bob": 20}


class Payments:
    """A side-effecting tool that counts every time it really runs."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def tool(self) -> Any:
        @tool
        def send_payment(to: str, amount: int) -> str:
            """Send `amount` euros to the account `to`."""
            with self._lock:
                self.sent.append((to, amount))
            return f"sent {amount} to {to}"

        return send_payment


class Seen:
    """The payer's last model call: records the messages and answers."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    def __call__(self, messages: list[Any]) -> str:
        self.messages = list(messages)
        return "done"

    def results(self) -> dict[str, str]:
        """The tool result the model saw for each payee (by the call's id)."""
        ids = {
            c["id"]: c["args"]["to"] for m in self.messages for c in getattr(m, "tool_calls", [])
        }
        return {ids[m.tool_call_id]: m.content for m in self.messages if isinstance(m, ToolMessage)}


def _slow_gate_for(rt: Any, payee: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the gate of the call paying `payee` slow to open, so that call is the last to
    reach its `interrupt()` if the calls ran their gates in parallel."""
    approvals = rt.services.approvals
    open_gate = approvals.open

    def slow_open(request: GateRequest, raised_in: str | None = None) -> None:
        if (request.args or {}).get("to") == payee:
            time.sleep(0.3)
        open_gate(request, raised_in)

    monkeypatch.setattr(approvals, "open", slow_open)


def _pay_and_ask(scripted: Any, payments: Payments, seen: Seen, tmp_path: Any) -> Any:
    """A workflow whose one reply pays alice and bob (each behind a gate) and asks a
    question."""
    from podium.tools.human import ask_human

    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(POLICY).lstrip("\n"), encoding="utf-8")
    reply = tool_calls(
        ("send_payment", {"to": "alice", "amount": 10}),
        ("send_payment", {"to": "bob", "amount": 20}),
        ("ask_human", {"question": "Which memo?"}),
    )
    payer = AgentSpec(
        name="payer",
        tools=[payments.tool(), ask_human],
        model=scripted(reply, seen, name="payer"),
    )
    plan = Plan(tasks=[PlannedTask(id="t1", agent="payer", instruction="pay")])
    return podium.build_workflow([payer], name="pay", supervisor=plan, policies=load_policies(path))


def _graph(scripted: Any, payments: Payments, seen: Seen, tmp_path: Any, order: tuple[str, ...]):
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(POLICY).lstrip("\n"), encoding="utf-8")
    reply = tool_calls(*(("send_payment", {"to": p, "amount": AMOUNTS[p]}) for p in order))
    payer = AgentSpec(
        name="payer", tools=[payments.tool()], model=scripted(reply, seen, name="payer")
    )
    plan = Plan(tasks=[PlannedTask(id="t1", agent="payer", instruction="pay alice and bob")])
    return podium.build_workflow([payer], name="pay", supervisor=plan, policies=load_policies(path))


def _editor(tenant: str) -> RunContext:
    return RunContext(tenant_id=tenant, user_id="ed", roles=frozenset({"editor"}))


def _config(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def _only(gates: list[PendingGate]) -> GateRequest:
    [gate] = gates
    return gate.request


def _pending_in_store(rt: Any, tenant: str) -> set[str]:
    rt.services.flush()
    return {r.gate_id for r in rt.services.approvals.pending(tenant)[0]}


DECISIONS = {
    "approve": Decision(decision="approve"),
    "reject": Decision(decision="reject", comment="not this one"),
}
CASES = [
    # (order of the calls in the reply, decision of the first gate, of the second gate)
    (("alice", "bob"), "approve", "reject"),
    (("alice", "bob"), "reject", "approve"),
    (("bob", "alice"), "approve", "reject"),
    (("bob", "alice"), "reject", "approve"),
]


def _expected(order: tuple[str, ...], first: str, second: str) -> list[tuple[str, int]]:
    verdicts = dict(zip(order, (first, second), strict=True))
    return [(p, AMOUNTS[p]) for p in order if verdicts[p] == "approve"]


def _check_results(seen: Seen, order: tuple[str, ...], first: str, second: str) -> None:
    results = seen.results()
    for payee, verdict in zip(order, (first, second), strict=True):
        if verdict == "approve":
            assert results[payee] == f"sent {AMOUNTS[payee]} to {payee}"
        else:
            assert results[payee].startswith("Rejected by ed") and "not this one" in results[payee]


@pytest.mark.parametrize(("order", "first", "second"), CASES)
def test_each_decision_applies_to_the_call_of_its_gate(
    durable_url, scripted, tenant, tmp_path, monkeypatch, order, first, second
):
    payments, seen = Payments(), Seen()
    graph = _graph(scripted, payments, seen, tmp_path, order)
    thread, editor = f"{tenant}-{'-'.join(order)}-{first}", _editor(tenant)
    with podium.open_runtime(durable_url) as rt:
        _slow_gate_for(rt, order[0], monkeypatch)
        app = rt.compile(graph)
        app.invoke({"goal": "pay"}, _config(thread), context=editor)

        # The first call's gate is raised first; the second waits for it. What the store
        # lists as pending is exactly what can be decided.
        one = _only(pending_gates(app, thread))
        assert one.args == {"to": order[0], "amount": AMOUNTS[order[0]]}
        assert _pending_in_store(rt, tenant) == {one.gate_id}
        decide(app, thread, DECISIONS[first], context=editor, gate=one.gate_id)

        # The decision reached the first call only: the other payee was not paid on it.
        assert all(payee == order[0] for payee, _ in payments.sent)
        # No call ran while a gate of the reply was open; the second gate is now shown.
        assert payments.sent == []
        two = _only(pending_gates(app, thread))
        assert two.args == {"to": order[1], "amount": AMOUNTS[order[1]]}
        assert _pending_in_store(rt, tenant) == {two.gate_id}
        record = rt.services.approvals.get(one.gate_id, tenant)
        assert record is not None and record.status == "decided"
        assert record.decision is not None and record.decision["decision"] == first
        out = decide(app, thread, DECISIONS[second], context=editor, gate=two.gate_id)

        assert pending_gates(app, thread) == [] and _pending_in_store(rt, tenant) == set()
    assert out["status"] == "completed"
    assert sorted(payments.sent) == sorted(_expected(order, first, second))
    _check_results(seen, order, first, second)


def test_a_gate_not_yet_raised_cannot_be_decided(durable_url, scripted, tenant, tmp_path):
    payments, seen = Payments(), Seen()
    order = ("alice", "bob")
    graph = _graph(scripted, payments, seen, tmp_path, order)
    thread, editor = f"{tenant}-early", _editor(tenant)
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(graph)
        app.invoke({"goal": "pay"}, _config(thread), context=editor)
        alice = _only(pending_gates(app, thread))
        with pytest.raises(GateError, match="unknown gate 'g-nope'"):
            decide(app, thread, "approve", context=editor, gate="g-nope")
        decide(app, thread, DECISIONS["reject"], context=editor, gate=alice.gate_id)
        bob = _only(pending_gates(app, thread))
        assert bob.gate_id != alice.gate_id
        # A second decision on alice's gate is a double click, not a decision for bob.
        with pytest.raises(GateError, match="already decided"):
            decide(app, thread, "approve", context=editor, gate=alice.gate_id)
        assert _only(pending_gates(app, thread)).gate_id == bob.gate_id
        decide(app, thread, "approve", context=editor)
    assert payments.sent == [("bob", 20)]
    _check_results(seen, order, "reject", "approve")


@pytest.mark.parametrize(("order", "first", "second"), CASES[:2])
async def test_each_decision_applies_to_the_call_of_its_gate_async(
    durable_url, scripted, tenant, tmp_path, monkeypatch, order, first, second
):
    payments, seen = Payments(), Seen()
    graph = _graph(scripted, payments, seen, tmp_path, order)
    thread, editor = f"{tenant}-async-{first}", _editor(tenant)
    async with podium.open_async_runtime(durable_url) as rt:
        _slow_gate_for(rt, order[0], monkeypatch)
        app = rt.compile(graph)
        await app.ainvoke({"goal": "pay"}, _config(thread), context=editor)
        one = _only(await apending_gates(app, thread))
        assert one.args == {"to": order[0], "amount": AMOUNTS[order[0]]}
        await adecide(app, thread, DECISIONS[first], context=editor, gate=one.gate_id)
        assert all(payee == order[0] for payee, _ in payments.sent)
        assert payments.sent == []
        two = _only(await apending_gates(app, thread))
        assert two.args == {"to": order[1], "amount": AMOUNTS[order[1]]}
        out = await adecide(app, thread, DECISIONS[second], context=editor, gate=two.gate_id)
        assert await apending_gates(app, thread) == []
    assert out["status"] == "completed"
    assert sorted(payments.sent) == sorted(_expected(order, first, second))
    _check_results(seen, order, first, second)


def test_each_gate_is_recorded_once_under_the_user_who_decided_it(
    durable_url, scripted, tenant, tmp_path
):
    """ana decides alice's gate, ed bob's: the step that runs again when ed resumes takes
    ana's decision again as ana's, and each decision is audited once, by its decider."""
    payments, seen = Payments(), Seen()
    order = ("alice", "bob")
    graph = _graph(scripted, payments, seen, tmp_path, order)
    thread = f"{tenant}-two-deciders"
    ana = RunContext(tenant_id=tenant, user_id="ana", roles=frozenset({"editor"}))
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(graph)
        app.invoke({"goal": "pay"}, _config(thread), context=ana)
        alice = _only(pending_gates(app, thread))
        decide(app, thread, DECISIONS["reject"], context=ana, gate=alice.gate_id)
        bob = _only(pending_gates(app, thread))
        out = decide(app, thread, "approve", context=_editor(tenant), gate=bob.gate_id)
        rt.services.flush()
        records = {g: rt.services.approvals.get(g, tenant) for g in (alice.gate_id, bob.gate_id)}
        events = rt.services.audit.events(tenant, thread_id=thread)
    assert out["status"] == "completed" and payments.sent == [("bob", 20)]
    assert {g: (r.status, r.decided_by) for g, r in records.items() if r} == {
        alice.gate_id: ("decided", "ana"),
        bob.gate_id: ("decided", "ed"),
    }
    approvals = [
        (e.payload["gate_id"], e.payload["decision"], e.payload["user"])
        for e in events
        if e.kind == "approval"
    ]
    assert approvals == [(alice.gate_id, "reject", "ana"), (bob.gate_id, "approve", "ed")]
    assert seen.results()["alice"].startswith("Rejected by ana")


def test_a_question_asked_beside_gated_calls_gets_its_answer_and_the_calls_their_decisions(
    durable_url, scripted, tenant, tmp_path
):
    """One reply pays alice and bob and asks a question: alice's payment is approved, bob's
    rejected, then the question (raised when the calls run) is answered. The step runs
    again on the answer: the answer reaches the question, bob's rejection stays his."""
    payments, seen = Payments(), Seen()
    graph = _pay_and_ask(scripted, payments, seen, tmp_path)
    thread, editor = f"{tenant}-question", _editor(tenant)
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(graph)
        app.invoke({"goal": "pay"}, _config(thread), context=editor)
        decide(app, thread, "approve", context=editor)
        decide(app, thread, DECISIONS["reject"], context=editor)
        question = _only(pending_gates(app, thread))
        assert question.kind == "question" and payments.sent == [("alice", 10)]
        out = decide(app, thread, Decision(decision="respond", response="rent"), context=editor)
    assert out["status"] == "completed"
    assert payments.sent == [("alice", 10)]
    results = {m.name: m.content for m in seen.messages if isinstance(m, ToolMessage)}
    assert results["ask_human"] == "rent"


def test_a_raw_resume_naming_another_gate_is_not_applied(durable_url, scripted, tenant, tmp_path):
    payments, seen = Payments(), Seen()
    order = ("alice", "bob")
    graph = _graph(scripted, payments, seen, tmp_path, order)
    thread, editor = f"{tenant}-raw-other", _editor(tenant)
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(graph)
        app.invoke({"goal": "pay"}, _config(thread), context=editor)
        [alice] = pending_gates(app, thread)
        other = {"decision": "approve", "gate_id": "g-someoneelse"}
        app.invoke(Command(resume={alice.interrupt_id: other}), _config(thread), context=editor)
        # Passed over: alice's gate is still the one waiting, and nothing ran.
        assert _only(pending_gates(app, thread)).gate_id == alice.request.gate_id
        assert _pending_in_store(rt, tenant) == {alice.request.gate_id}
        assert payments.sent == []
        decide(app, thread, "approve", context=editor)
        decide(app, thread, "approve", context=editor)
    assert sorted(payments.sent) == [("alice", 10), ("bob", 20)]


def _asker(scripted: Any, seen: Seen, tmp_path: Any):
    """One agent whose one reply asks two questions at once."""
    from podium.tools.human import ask_human

    path = tmp_path / "policy.yaml"
    path.write_text("global:\n  tools: {allow: ['*']}\n", encoding="utf-8")
    reply = tool_calls(("ask_human", {"question": "Q1"}), ("ask_human", {"question": "Q2"}))
    asker = AgentSpec(name="asker", tools=[ask_human], model=scripted(reply, seen, name="asker"))
    plan = Plan(tasks=[PlannedTask(id="t1", agent="asker", instruction="ask")])
    return podium.build_workflow([asker], name="ask", supervisor=plan, policies=load_policies(path))


def _slow_question(rt: Any, question: str, monkeypatch: pytest.MonkeyPatch) -> None:
    approvals = rt.services.approvals
    open_gate = approvals.open

    def slow_open(request: GateRequest, raised_in: str | None = None) -> None:
        if request.question == question:
            time.sleep(0.3)
        open_gate(request, raised_in)

    monkeypatch.setattr(approvals, "open", slow_open)


def test_two_questions_of_one_reply_each_get_their_own_answer(
    durable_url, scripted, tenant, tmp_path, monkeypatch
):
    """Questions are gates the calls raise while they run, in parallel: the slow first
    question is reached last, and its answer is handed to it by the other question."""
    seen = Seen()
    graph = _asker(scripted, seen, tmp_path)
    thread, editor = f"{tenant}-questions", _editor(tenant)
    with podium.open_runtime(durable_url) as rt:
        _slow_question(rt, "Q1", monkeypatch)
        app = rt.compile(graph)
        app.invoke({"goal": "ask"}, _config(thread), context=editor)
        answered = []
        while gates := pending_gates(app, thread):
            question = _only(gates)
            answer = Decision(decision="respond", response=f"answer to {question.question}")
            out = decide(app, thread, answer, context=editor, gate=question.gate_id)
            answered.append(question.question)
        assert _pending_in_store(rt, tenant) == set()
    assert sorted(answered) == ["Q1", "Q2"] and out["status"] == "completed"
    calls = {
        c["id"]: c["args"]["question"] for m in seen.messages for c in getattr(m, "tool_calls", [])
    }
    results = {
        calls[m.tool_call_id]: m.content for m in seen.messages if isinstance(m, ToolMessage)
    }
    assert results == {"Q1": "answer to Q1", "Q2": "answer to Q2"}


async def test_two_questions_of_one_reply_each_get_their_own_answer_async(
    durable_url, scripted, tenant, tmp_path, monkeypatch
):
    seen = Seen()
    graph = _asker(scripted, seen, tmp_path)
    thread, editor = f"{tenant}-questions-async", _editor(tenant)
    async with podium.open_async_runtime(durable_url) as rt:
        _slow_question(rt, "Q1", monkeypatch)
        app = rt.compile(graph)
        await app.ainvoke({"goal": "ask"}, _config(thread), context=editor)
        while gates := await apending_gates(app, thread):
            question = _only(gates)
            answer = Decision(decision="respond", response=f"answer to {question.question}")
            out = await adecide(app, thread, answer, context=editor, gate=question.gate_id)
    assert out["status"] == "completed"
    calls = {
        c["id"]: c["args"]["question"] for m in seen.messages for c in getattr(m, "tool_calls", [])
    }
    results = {
        calls[m.tool_call_id]: m.content for m in seen.messages if isinstance(m, ToolMessage)
    }
    assert results == {"Q1": "answer to Q1", "Q2": "answer to Q2"}


def test_raw_resumes_keep_their_gates_once_a_call_of_the_reply_ran(
    durable_url, scripted, tenant, tmp_path
):
    # Raw resumes carry no gate id: LangGraph hands them to the step's interrupts by
    # position. Once alice's payment ran, her gate is not raised again on the next run
    # of the step, but its value still takes its place, so bob's rejection and the
    # question's answer reach their own gates (bob was paid on alice's approval).
    payments, seen = Payments(), Seen()
    graph = _pay_and_ask(scripted, payments, seen, tmp_path)
    thread, editor = f"{tenant}-raw", _editor(tenant)
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(graph)
        app.invoke({"goal": "pay"}, _config(thread), context=editor)
        answers = (
            {"decision": "approve"},
            {"decision": "reject", "comment": "no"},
            {"decision": "respond", "response": "rent"},
        )
        for value in answers:
            [gate] = pending_gates(app, thread)
            out = app.invoke(
                Command(resume={gate.interrupt_id: value}), _config(thread), context=editor
            )
    assert out["status"] == "completed", out.get("error")
    assert payments.sent == [("alice", 10)]
    told = {m.tool_call_id: str(m.content) for m in seen.messages if isinstance(m, ToolMessage)}
    assert any("rent" in text for text in told.values()), told


@pytest.mark.parametrize("how", ["raw", "decide"])
def test_a_rejected_call_stays_unpaid_after_a_crash_between_the_replys_calls(
    durable_url, tenant, tmp_path, how
):
    # Both gates decided (approve alice, reject bob); the process is SIGKILLed after
    # alice's payment, while a third call of the reply runs. The resumed step runs with
    # the same resume values: alice's gate is not raised again, and bob's must still get
    # his rejection, whether the decisions came as raw positional values or by `decide`.
    script = Path(__file__).parent / "recovery_scripts" / "gate_order_flow.py"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    thread = f"{tenant}-kill-{how}"
    args = [sys.executable, str(script), durable_url, tenant, thread, str(tmp_path)]
    child = subprocess.Popen([*args, "first", how], env=env, cwd=tmp_path, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (tmp_path / "blocked").exists():
        assert child.poll() is None, child.stderr.read().decode()[-3000:] if child.stderr else ""
        assert time.monotonic() < deadline, "the first process never reached the slow tool"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    if child.stderr:
        child.stderr.close()
    assert (tmp_path / "sent.txt").read_text().splitlines() == ["alice 10"]
    done = subprocess.run(
        [*args, "second", how], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["status"] == "completed", done.stdout[-2000:]
    assert (tmp_path / "sent.txt").read_text().splitlines() == ["alice 10"]
