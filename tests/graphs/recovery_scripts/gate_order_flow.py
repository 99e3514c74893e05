"""A child process for tests/graphs/test_gate_order.py: one reply pays alice and bob (each
behind an approval gate) and calls a slow tool; the gates are decided by raw resumes
(one positional value each, as `Command(resume=...)` documents) or by `podium.decide`.

    python gate_order_flow.py URL TENANT THREAD WORKDIR first|second raw|decide

`first` runs and decides both gates (approve alice, reject bob); the calls then run and
the slow tool writes WORKDIR/blocked and sleeps, for the test to SIGKILL the process.
`second` resumes the thread in a new process. Payments are appended to WORKDIR/sent.txt.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

from langchain_core.tools import tool
from langgraph.types import Command

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext
from podium.gates.decision import decide, pending_gates
from podium.gates.request import Decision
from podium.policies import load_policies
from podium.testing import ScriptedChatModel, tool_calls
from tests.graphs.test_gate_order import POLICY

url, tenant, thread, workdir, mode, how = sys.argv[1:7]
work = Path(workdir)


@tool
def send_payment(to: str, amount: int) -> str:
    """Send money."""
    with open(work / "sent.txt", "a", encoding="utf-8") as f:
        f.write(f"{to} {amount}\n")
    return f"sent {amount} to {to}"


@tool
def slow(x: int) -> str:
    """A tool that, in the first process, signals and waits to be killed."""
    if mode == "first":
        (work / "blocked").write_text("1", encoding="utf-8")
        time.sleep(60)
    return "ok"


(work / "policy.yaml").write_text(textwrap.dedent(POLICY), encoding="utf-8")
reply = tool_calls(
    ("send_payment", {"to": "alice", "amount": 10}, "c-alice"),
    ("send_payment", {"to": "bob", "amount": 20}, "c-bob"),
    ("slow", {"x": 1}, "c-slow"),
)
# The second process replays the recorded first reply: its model answers only after.
model = ScriptedChatModel(responses=[reply, "done"] if mode == "first" else ["done"], name="payer")
payer = AgentSpec(name="payer", tools=[send_payment, slow], model=model)
plan = Plan(tasks=[PlannedTask(id="t1", agent="payer", instruction="pay")])
policies = load_policies(work / "policy.yaml")
graph = podium.build_workflow([payer], name="pay", supervisor=plan, policies=policies)
editor = RunContext(tenant_id=tenant, user_id="ed", roles=frozenset({"editor"}))
config = {"configurable": {"thread_id": thread}}
with podium.open_runtime(url) as rt:
    app = rt.compile(graph)
    if mode == "first":
        app.invoke({"goal": "pay"}, config, context=editor)
        for value in ({"decision": "approve"}, {"decision": "reject", "comment": "no"}):
            [gate] = pending_gates(app, thread)
            if how == "raw":
                app.invoke(Command(resume=value), config, context=editor)
            else:
                decision = Decision.model_validate(value)
                decide(app, thread, decision, context=editor, gate=gate.request.gate_id)
    else:
        out = app.invoke(None, config, context=editor)
        for gate in pending_gates(app, thread):
            # A decided gate whose resume value the crash lost waits again: deciding it
            # again as it was decided lets the run go on.
            decision = Decision(decision="reject", comment="no")
            out = decide(app, thread, decision, context=editor, gate=gate.request.gate_id)
        tasks = {k: (v.get("status"), v.get("error")) for k, v in (out.get("tasks") or {}).items()}
        gates = [(g.request.kind, g.request.args) for g in pending_gates(app, thread)]
        print(
            json.dumps(
                {
                    "status": out.get("status"),
                    "tasks": tasks,
                    "error": out.get("error"),
                    "gates": gates,
                }
            )
        )
