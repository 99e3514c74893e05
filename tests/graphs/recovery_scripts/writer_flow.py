"""The workflow of the one-writer tests, loaded by `podium resume` through PODIUM_WORKFLOWS.

`writer_flow=writer_flow:build`. Task t1 ("left") answers at once; task t2 ("joiner")
depends on it, and its model call appends this process's pid to `calls.txt`, leaves a
`joining` marker, and waits until a `go` file appears (bounded), so a test can hold a
resume in the middle of the join while it starts another. WRITER_WORKDIR names the
folder of those files.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import podium
from podium import AgentSpec, Plan, PlannedTask
from podium.testing import ScriptedChatModel

WAIT_LIMIT = 60.0  # a forgotten process gives up after this long


def _join(_messages) -> str:
    workdir = Path(os.environ["WRITER_WORKDIR"])
    with (workdir / "calls.txt").open("a", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\n")
    (workdir / "joining").write_text(str(os.getpid()), encoding="utf-8")
    deadline = time.monotonic() + WAIT_LIMIT
    while not (workdir / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return "joined"


def build(model=None):
    """Two tasks; the second waits for a `go` file in the middle of its model call."""
    agents = [
        AgentSpec(name="left", model=ScriptedChatModel(responses=["left done"] * 2, name="left")),
        AgentSpec(name="joiner", model=ScriptedChatModel(responses=[_join] * 2, name="joiner")),
    ]
    plan = Plan(
        tasks=[
            PlannedTask(id="t1", agent="left", instruction="say left"),
            PlannedTask(id="t2", agent="joiner", instruction="join", depends_on=["t1"]),
        ]
    )
    return podium.build_workflow(agents, name="writer_flow", supervisor=plan)
