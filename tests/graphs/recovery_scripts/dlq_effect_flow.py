"""A one-task workflow whose worker sends a report (a side effect) for `podium dlq` tests.

`dlq_effect_flow=dlq_effect_flow:build` (with this directory on PYTHONPATH). Each `send`
appends a line to the file PODIUM_TEST_DLQ_SENT names, so a test counts the sends of
every process. The worker's model acts as a provider's would: it asks for a `send`, with
a call id of its own making, until the conversation holds enough results, then answers.
Phase "fail" (the first run) has the model break after one send, so the task is
dead-lettered; phase "hang" (a replay the test kills) has it touch PODIUM_TEST_DLQ_MARK
and hang after two; phase "fixed" (the default) has it answer after two.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from langchain_core.messages import ToolMessage
from langchain_core.tools import tool

import podium
from podium import AgentSpec, Plan, PlannedTask
from podium.testing import ScriptedChatModel, tool_call

NAME = "dlq_effect_flow"
ANSWER = "report sent"
ERROR = "the model broke after sending"
POLICY = """
agents:
  worker:
    tools: {allow: [send]}
tools:
  send: {side_effects: true, idempotent: false}
"""


@tool
def send(to: str) -> str:
    """Send the report (a side effect: it must happen once per replay)."""
    with open(os.environ["PODIUM_TEST_DLQ_SENT"], "a", encoding="utf-8") as sent:
        sent.write(f"{os.getpid()} {to}\n")
    return f"sent to {to}"


def build(model=None, *, phase: str | None = None):
    phase = phase or os.environ.get("PODIUM_TEST_DLQ_PHASE", "fixed")

    def reply(messages: list) -> object:
        results = sum(isinstance(m, ToolMessage) for m in messages)
        if results < (1 if phase == "fail" else 2):
            return tool_call("send", {"to": "ops"}, id=f"call-{uuid.uuid4().hex[:8]}")
        if phase == "fail":
            return ValueError(ERROR)
        if phase == "hang":
            Path(os.environ["PODIUM_TEST_DLQ_MARK"]).touch()
            time.sleep(600)
        return ANSWER

    worker = ScriptedChatModel(responses=[reply] * 4, name="worker")
    plan = Plan(tasks=[PlannedTask(id="t1", agent="worker", instruction="send the report")])
    policy = Path(os.environ["PODIUM_TEST_DLQ_SENT"]).with_name("policy.yaml")
    policy.write_text(POLICY, encoding="utf-8")
    return podium.build_workflow(
        [AgentSpec(name="worker", tools=[send], model=worker)],
        name=NAME,
        supervisor=plan,
        policies=policy,
    )
