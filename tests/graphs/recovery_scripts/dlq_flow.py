"""A workflow for the `podium dlq` CLI test, loaded through PODIUM_WORKFLOWS.

`dlq_flow=dlq_flow:build` (with this directory on PYTHONPATH). Phase "fail" (the first
run, in the test process) has the worker's model break, so the task is dead-lettered;
phase "fixed" (the CLI's replay, the default) has it answer; phase "hang" has the model
create the file PODIUM_TEST_DLQ_MARK names and then hang, so the test can kill the
replay mid-run.

`dlq_chain=dlq_flow:build_chain` is the same with a second task, t2 of agent "writer",
that depends on t1 (so t1's dead letter cancels it and its replay puts it back).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import podium
from podium import AgentSpec, Plan, PlannedTask
from podium.testing import ScriptedChatModel

NAME = "dlq_flow"
CHAIN = "dlq_chain"
ANSWER = "fixed answer"
ERROR = "the model broke"


def build(model=None, *, phase: str | None = None):
    phase = phase or os.environ.get("PODIUM_TEST_DLQ_PHASE", "fixed")
    reply: object = ValueError(ERROR) if phase == "fail" else ANSWER
    if phase == "hang":
        reply = _hang
    worker = ScriptedChatModel(responses=[reply], name="worker")
    plan = Plan(tasks=[PlannedTask(id="t1", agent="worker", instruction="write the answer")])
    return podium.build_workflow(
        [AgentSpec(name="worker", model=worker)], name=NAME, supervisor=plan
    )


def build_chain(model=None, *, phase: str | None = None):
    phase = phase or os.environ.get("PODIUM_TEST_DLQ_PHASE", "fixed")
    worker = ScriptedChatModel(
        responses=[ValueError(ERROR) if phase == "fail" else ANSWER], name="worker"
    )
    writer = ScriptedChatModel(responses=[ANSWER], name="writer")
    plan = Plan(
        tasks=[
            PlannedTask(id="t1", agent="worker", instruction="write the answer"),
            PlannedTask(id="t2", agent="writer", instruction="check it", depends_on=["t1"]),
        ]
    )
    return podium.build_workflow(
        [AgentSpec(name="worker", model=worker), AgentSpec(name="writer", model=writer)],
        name=CHAIN,
        supervisor=plan,
    )


def _hang(messages: object) -> str:
    Path(os.environ["PODIUM_TEST_DLQ_MARK"]).touch()
    time.sleep(600)
    raise AssertionError("the test kills the replay before this")
