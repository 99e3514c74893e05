"""The workflow of the crash-and-resume test, shared by its child scripts.

Two parallel tasks each record one line through the side-effect tool `record` (an
exactly-once tool: it appends to `counter.txt`); the right one calls `wait` in the same
step, which in "block" mode hangs until a file appears that never does (the parent kills
the process meanwhile). A third task joins both. Models are scripted and deterministic:
each reply is chosen from the conversation so far, so a re-run task asks for the same
tool calls (same ids) as the first time.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext
from podium.testing import ScriptedChatModel, tool_call, tool_calls

POLICY = """\
agents:
  left:
    tools: {allow: [record]}
  right:
    tools: {allow: [record, wait]}
tools:
  record: {side_effects: true, idempotent: false}
  wait: {}
"""
BLOCK_LIMIT = 60.0  # a forgotten child gives up after this long


def _tool_results(messages) -> set[str]:
    return {m.name for m in messages if isinstance(m, ToolMessage)}


def _left(messages):
    if "record" in _tool_results(messages):
        return "left done"
    return tool_call("record", {"line": "left"}, id="call-left-record")


def _right(messages):
    if {"record", "wait"} <= _tool_results(messages):
        return "right done"
    # Both in one step: `record` finishes while `wait` hangs, so the kill comes after the
    # effect but before the step's checkpoint, and a resume runs the step again.
    return tool_calls(
        ("record", {"line": "right"}, "call-right-record"), ("wait", {}, "call-right-wait")
    )


def _join(messages):
    text = "\n".join(m.text for m in messages if isinstance(m, HumanMessage))
    parts = [p for p in ("left done", "right done") if p in text]
    return "joined: " + " + ".join(parts)


def _model(reply, name: str) -> ScriptedChatModel:
    # Enough replies for a first run and a re-run; the script is not checked for use,
    # since whether a task runs again after the kill depends on when it died.
    return ScriptedChatModel(responses=[reply] * 8, name=name)


def build(workdir: Path, *, block: bool):
    counter = workdir / "counter.txt"

    @tool
    def record(line: str) -> str:
        """Record one line (a side effect)."""
        with counter.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        return f"recorded {line}"

    @tool
    def wait() -> str:
        """Wait for the downstream system."""
        if block:
            (workdir / "blocked").write_text("yes", encoding="utf-8")
            deadline = time.monotonic() + BLOCK_LIMIT
            while not (workdir / "never").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            raise SystemExit("blocked child was not killed")
        return "waited"

    policy = workdir / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    agents = [
        AgentSpec(name="left", tools=[record], model=_model(_left, "left")),
        AgentSpec(name="right", tools=[record, wait], model=_model(_right, "right")),
        AgentSpec(name="joiner", model=_model(_join, "joiner")),
    ]
    plan = Plan(
        tasks=[
            PlannedTask(id="t1", agent="left", instruction="record left"),
            PlannedTask(id="t2", agent="right", instruction="record right, then wait"),
            PlannedTask(id="t3", agent="joiner", instruction="join", depends_on=["t1", "t2"]),
        ]
    )
    return podium.build_workflow(agents, name="crash_flow", supervisor=plan, policies=policy)


def main(resume: bool) -> None:
    """argv: URL TENANT THREAD WORKDIR [block]; prints the run's outcome as JSON."""
    url, tenant, thread, workdir = sys.argv[1:5]
    block = sys.argv[5:] == ["block"]
    config = {"configurable": {"thread_id": thread}}
    context = RunContext(tenant_id=tenant)
    with podium.open_runtime(url) as rt:
        app = rt.compile(build(Path(workdir), block=block))
        out = app.invoke(None if resume else {"goal": "count"}, config, context=context)
        effects = rt.services.effects.list(tenant, thread_id=thread)
    print(
        json.dumps(
            {
                "status": out["status"],
                "answer": out["answer"],
                "tasks": {t: task["status"] for t, task in out["tasks"].items()},
                "results": {t: r["summary"] for t, r in out["results"].items()},
                "effects": sorted(
                    [e.key.task_id, e.key.call_key, e.status, e.attempts] for e in effects
                ),
            }
        )
    )
