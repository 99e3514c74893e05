"""When a worker's own steps are checkpointed: once per task by default, every step on request.

A worker task here makes two model calls around one tool call (three worker steps). With
`worker_durability="exit"` its namespace holds only the checkpoint written when it stopped;
with "async" one per step. Both give the same run. A gate inside a worker resumes in place
either way (the checkpoint written when the worker stopped at the gate is enough).
"""

from __future__ import annotations

from collections import Counter

import pytest
from langchain_core.tools import tool

import podium
from podium import AgentSpec, ConfigurationError, Plan, PlannedTask, RunContext
from podium.testing import tool_call
from tests.helpers import allowing

PLAN = Plan(
    tasks=[
        PlannedTask(id="t1", agent="fetcher", instruction="fetch a"),
        PlannedTask(id="t2", agent="fetcher", instruction="fetch b", depends_on=["t1"]),
    ]
)


def _workflow(scripted, durability: str, calls: list[str]):
    @tool
    def fetch(item: str) -> str:
        """Fetch an item."""
        calls.append(item)
        return f"fetched {item}"

    model = scripted(
        tool_call("fetch", {"item": "a"}),
        "a done",
        tool_call("fetch", {"item": "b"}),
        "b done",
        name="fetcher",
    )
    agents = [AgentSpec(name="fetcher", tools=[fetch], model=model)]
    return podium.build_workflow(
        agents,
        name="fetching",
        supervisor=PLAN,
        worker_durability=durability,
        policies=allowing(fetcher=["fetch"]),
    )


def _checkpoints_by_namespace(rt, thread: str) -> Counter:
    saved = rt.checkpointer.list({"configurable": {"thread_id": thread}})
    return Counter(c.config["configurable"]["checkpoint_ns"] for c in saved)


@pytest.mark.parametrize("durability", ["exit", "async"])
def test_worker_steps_are_checkpointed_as_worker_durability_says(scripted, durability, tenant):
    calls: list[str] = []
    with podium.open_runtime("sqlite:///worker.db") as rt:
        app = rt.compile(_workflow(scripted, durability, calls))
        config = {"configurable": {"thread_id": "t"}}
        out = app.invoke({"goal": "fetch"}, config, context=RunContext(tenant_id=tenant))
        by_ns = _checkpoints_by_namespace(rt, "t")
    assert out["status"] == "completed" and calls == ["a", "b"]
    assert [out["results"][t]["summary"] for t in ("t1", "t2")] == ["a done", "b done"]
    workers = {ns: n for ns, n in by_ns.items() if ns}
    if durability == "exit":
        assert workers == {}  # a task that finished leaves nothing of its own steps
    else:
        assert len(workers) == 2  # one namespace per task
        assert min(workers.values()) >= 4  # input, model, tools, model (and more)
    assert by_ns[""] >= 5  # the workflow's own steps are checkpointed either way


def test_an_unknown_worker_durability_is_refused(scripted):
    with pytest.raises(ConfigurationError, match="worker_durability must be 'exit'"):
        podium.build_workflow(
            [AgentSpec(name="a", model=scripted(name="a"))], name="w", worker_durability="never"
        )
