"""A one-task payment flow whose model makes up new tool-call ids on every call (as real
providers do), shared by the exactly-once and in-doubt crash tests.

`random_ids_flow.py URL TENANT THREAD WORKDIR MODE` with MODE:
  reference  run to the end undisturbed;
  block      `pay` runs, then `wait` (same step) hangs until the parent kills the process;
  hang       `pay` writes its line, then hangs itself (the kill leaves it in doubt);
  resume     continue the thread (nothing hangs any more);
  done       answer the thread's effect gate with `done` (as user "oncall") and continue.
Prints the outcome as JSON: status, answer, pending gates, task statuses, the thread
index's status, effects, usage, model calls.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

from langchain_core.messages import ToolMessage
from langchain_core.tools import tool

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext
from podium.gates.decision import pending_gates
from podium.testing import ScriptedChatModel, tool_calls

POLICY = """\
agents:
  payer:
    tools: {allow: [pay, wait]}
    budgets:
      per_run: {tokens: 1000000}
tools:
  pay: {side_effects: true, idempotent: false}
  wait: {}
"""
HANG_LIMIT = 60.0


def _reply(messages):
    if any(isinstance(m, ToolMessage) for m in messages):
        return "paid"
    # A new id for every call, every time: what a provider does on a re-run.
    return tool_calls(
        ("pay", {"amount": 5}, f"call_{uuid.uuid4().hex}"),
        ("wait", {}, f"call_{uuid.uuid4().hex}"),
    )


def _hang(workdir: Path) -> None:
    (workdir / "blocked").write_text("yes", encoding="utf-8")
    deadline = time.monotonic() + HANG_LIMIT
    while time.monotonic() < deadline:
        time.sleep(0.05)
    raise SystemExit("hung child was not killed")


def build(workdir: Path, mode: str, model: ScriptedChatModel):
    ledger = workdir / "payments.txt"

    @tool
    def pay(amount: int) -> str:
        """Pay an amount (a side effect)."""
        with ledger.open("a", encoding="utf-8") as f:
            f.write(f"paid {amount}\n")
            f.flush()
            os.fsync(f.fileno())
        if mode == "hang":
            _hang(workdir)
        return f"paid {amount}"

    @tool
    def wait() -> str:
        """Wait for the bank."""
        if mode == "block":
            _hang(workdir)
        return "waited"

    policy = workdir / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    agent = AgentSpec(name="payer", tools=[pay, wait], model=model)
    plan = Plan(tasks=[PlannedTask(id="t1", agent="payer", instruction="pay 5")])
    return podium.build_workflow([agent], name="random_ids", supervisor=plan, policies=policy)


def build_from_env(model=None):
    """The flow for the CLI (`PODIUM_WORKFLOWS=random_ids=random_ids_flow:build_from_env`)."""
    scripted = ScriptedChatModel(responses=[_reply] * 4, name="payer")
    return build(Path(os.environ["RANDOM_IDS_WORKDIR"]), "resume", scripted)


def main() -> None:
    url, tenant, thread, workdir, mode = sys.argv[1:6]
    model = ScriptedChatModel(responses=[_reply] * 4, name="payer")
    config = {"configurable": {"thread_id": thread}}
    key = os.environ.get("PODIUM_AUDIT_KEY", "").encode() or None
    with podium.open_runtime(url, audit_key=key) as rt:
        app = rt.compile(build(Path(workdir), "resume" if mode == "done" else mode, model))
        if mode == "done":
            oncall = RunContext(tenant_id=tenant, user_id="oncall")
            out = podium.decide(app, thread, podium.Decision(decision="done"), context=oncall)
        else:
            inputs = None if mode == "resume" else {"goal": "pay"}
            out = app.invoke(inputs, config, context=RunContext(tenant_id=tenant))
        gates = [g.request.model_dump() for g in pending_gates(app, thread)]
        thread_status = rt.threads.get(thread, tenant_id=tenant).status
        effects = rt.services.effects.list(tenant, thread_id=thread)
        usage = rt.services.ledger.totals(tenant, by="thread", thread_id=thread)
        spent = rt.services.budgets.spent(tenant, f"agent:{thread}:1:payer", "tokens")
    print(
        json.dumps(
            {
                "status": out.get("status"),
                "answer": out.get("answer"),
                "gates": gates,
                "tasks": {t: task["status"] for t, task in (out.get("tasks") or {}).items()},
                "thread_status": thread_status,
                "effects": sorted([e.key.task_id, e.tool, e.status, e.attempts] for e in effects),
                "usage_calls": sum(row.calls for row in usage),
                "usage_tokens": sum(row.total_tokens for row in usage),
                "budget_spent": spent,
                "model_calls": len(model.calls),
            }
        )
    )


if __name__ == "__main__":
    main()
