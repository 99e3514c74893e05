"""A workflow for the `podium dlq` CLI test, loaded through PODIUM_WORKFLOWS.

`dlq_flow=dlq_flow:build` (with this directory on PYTHONPATH). Phase "fail" (the first
run, in the test process) has the worker's model break, so the task is dead-lettered;
phase "fixed" (the CLI's replay, the default) has it answer.
"""

from __future__ import annotations

import os

import podium
from podium import AgentSpec, Plan, PlannedTask
from podium.testing import ScriptedChatModel

NAME = "dlq_flow"
ANSWER = "fixed answer"
ERROR = "the model broke"


def build(model=None, *, phase: str | None = None):
    phase = phase or os.environ.get("PODIUM_TEST_DLQ_PHASE", "fixed")
    reply = ValueError(ERROR) if phase == "fail" else ANSWER
    worker = ScriptedChatModel(responses=[reply], name="worker")
    plan = Plan(tasks=[PlannedTask(id="t1", agent="worker", instruction="write the answer")])
    return podium.build_workflow(
        [AgentSpec(name="worker", model=worker)], name=NAME, supervisor=plan
    )
