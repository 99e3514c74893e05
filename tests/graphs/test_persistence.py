"""One workflow, every back end: run, crash, resume; and workflows nested as workers."""

from __future__ import annotations

import json
from enum import Enum

import pytest
from langchain_core.tools import tool

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext
from podium.gates.decision import decide
from podium.gates.request import Decision
from podium.testing import tool_call
from tests.helpers import allowing, run_demo


def _config(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


def test_demo_workflow_runs_on_every_backend(db_url, tenant):
    with podium.open_runtime(db_url) as rt:
        app = rt.compile(podium.build_research_brief())
        out = run_demo(app, f"{tenant}-run", tenant=tenant)
        history = list(app.get_state_history(_config(f"{tenant}-run")))
        [info] = rt.threads.list(tenant_id=tenant)
    assert out["status"] == "completed"
    assert out["answer"].startswith("# Brief:")
    assert {t["status"] for t in out["tasks"].values()} == {"completed"}
    assert len(history) >= 6  # a checkpoint per step: input, supervisor, waves, aggregate
    assert info.status == "completed"


class Crash(BaseException):
    """An abrupt stop (like Ctrl-C or a dying process): not a task failure podium handles."""


class Flaky:
    """A tool that stops the run on its first `failures` calls, counting every call."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def tool(self):
        @tool
        def fetch(item: str) -> str:
            """Fetch an item."""
            self.calls += 1
            if self.calls <= self.failures:
                raise Crash("the process went away")
            return f"fetched {item}"

        return fetch


def _crashing_workflow(scripted, flaky: Flaky, steady_calls: list[str]):
    @tool
    def steady(item: str) -> str:
        """Fetch an item that always works."""
        steady_calls.append(item)
        return f"steady {item}"

    agents = [
        AgentSpec(
            name="fragile",
            tools=[flaky.tool()],
            model=scripted(tool_call("fetch", {"item": "x"}), "fragile done", name="fragile"),
        ),
        AgentSpec(
            name="sturdy",
            tools=[steady],
            model=scripted(tool_call("steady", {"item": "y"}), "sturdy done", name="sturdy"),
        ),
        AgentSpec(name="joiner", model=scripted("joined", name="joiner")),
    ]
    plan = Plan(
        tasks=[
            PlannedTask(id="t1", agent="fragile", instruction="fetch x"),
            PlannedTask(id="t2", agent="sturdy", instruction="fetch y"),
            PlannedTask(id="t3", agent="joiner", instruction="join", depends_on=["t1", "t2"]),
        ]
    )
    policy = allowing(fragile=["fetch"], sturdy=["steady"])
    return podium.build_workflow(agents, name="crashy", supervisor=plan, policies=policy)


def test_run_interrupted_by_an_exception_resumes_from_the_checkpoint(db_url, scripted, tenant):
    flaky, steady_calls = Flaky(failures=1), []
    graph = _crashing_workflow(scripted, flaky, steady_calls)
    config, context = _config(f"{tenant}-crash"), RunContext(tenant_id=tenant)
    with podium.open_runtime(db_url) as rt:
        app = rt.compile(graph)
        with pytest.raises(Crash, match="the process went away"):
            app.invoke({"goal": "g"}, config, context=context)
        assert app.get_state(config).next  # the run stopped mid-way, checkpoint kept
        if db_url == "memory://":
            out = app.invoke(None, config, context=context)
    if db_url != "memory://":
        # A new runtime, as a new process would open it.
        with podium.open_runtime(db_url) as rt:
            out = rt.compile(graph).invoke(None, config, context=context)
    assert out["status"] == "completed"
    assert out["answer"] == "joined"
    assert flaky.calls == 2
    # The parallel task that finished before the crash was not run again
    # (its scripted model would have raised on a third call).
    assert steady_calls == ["y"]


def test_workflows_nest_as_workers_two_levels_deep(durable_url, scripted, tenant):
    @tool
    def lookup(key: str) -> str:
        """Look a key up."""
        return f"value-of-{key}"

    leaf = AgentSpec(
        name="leaf",
        tools=[lookup],
        model=scripted(tool_call("lookup", {"key": "k"}), "leaf found value-of-k", name="leaf"),
    )
    inner = podium.build_workflow(
        [leaf],
        name="inner",
        supervisor=Plan(tasks=[PlannedTask(id="i1", agent="leaf", instruction="look up k")]),
        policies=allowing(leaf=["lookup"]),
    ).compile()
    middle = podium.build_workflow(
        [
            AgentSpec(name="team", graph=inner),
            AgentSpec(
                name="editor", model=scripted("edited: leaf found value-of-k", name="editor")
            ),
        ],
        name="middle",
        supervisor=Plan.chain(("team", "get k"), ("editor", "edit")),
    ).compile()
    outer = podium.build_workflow(
        [AgentSpec(name="department", graph=middle)],
        name="outer",
        supervisor=Plan(tasks=[PlannedTask(id="o1", agent="department", instruction="report")]),
    )
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(outer)
        out = app.invoke(
            {"goal": "find k"}, _config(f"{tenant}-nest"), context=RunContext(tenant_id=tenant)
        )
        [info] = rt.threads.list(tenant_id=tenant)
    assert out["status"] == "completed"
    assert out["answer"] == "edited: leaf found value-of-k"
    # Usage of the nested agents is attributed to the outer worker.
    assert out["usage"]["department"]["calls"] == 3
    # Only the root graph writes the thread index.
    assert info.workflow == "outer"


def test_nested_failure_fails_the_outer_task(scripted):
    inner = podium.build_workflow(
        [AgentSpec(name="leaf", model=scripted(name="leaf"))],
        name="inner",
        model=scripted("not a plan", "still not a plan", name="inner-boss"),
    ).compile()
    outer = podium.build_workflow(
        [AgentSpec(name="team", graph=inner)],
        name="outer",
        supervisor=Plan(tasks=[PlannedTask(id="o1", agent="team", instruction="x")]),
    )
    with podium.open_runtime("memory://") as rt:
        out = rt.compile(outer).invoke({"goal": "g"}, _config("nested-fail"))
    assert out["tasks"]["o1"]["status"] == "dead_lettered"
    assert "could not make a valid plan" in out["tasks"]["o1"]["error"]
    assert out["status"] == "failed"


def _enums(value: object, path: str = "") -> list[str]:
    """Where `value` holds an enum member (a `TaskStatus` or `RunStatus` is a str too)."""
    if isinstance(value, Enum):
        return [f"{path}: {value!r}"]
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in _enums(v, f"{path}.{k}")]
    if isinstance(value, list | tuple):
        return [hit for i, v in enumerate(value) for hit in _enums(v, f"{path}[{i}]")]
    return []


def test_checkpoints_hold_statuses_as_plain_strings(durable_url, scripted, tenant):
    """Every status a run writes (the gates' pending ones included) is stored as the plain
    string, so a checkpoint reads back without podium's classes, as LangGraph's strict
    msgpack mode requires."""
    plan = {"tasks": [{"id": "t1", "agent": "writer", "instruction": "draft", "depends_on": []}]}
    graph = podium.build_workflow(
        [AgentSpec(name="writer", model=scripted("a draft", name="writer"))],
        name="gated",
        model=scripted(json.dumps(plan), name="boss"),
        approve_plan=True,
        approve_answer=True,
        approver_roles=["lead"],
    )
    thread = f"{tenant}-plain"
    lead = RunContext(tenant_id=tenant, user_id="lee", roles=frozenset({"lead"}))
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(graph)
        app.invoke({"goal": "a brief"}, _config(thread), context=RunContext(tenant_id=tenant))
        decide(app, thread, Decision(decision="approve"), context=lead)
        out = decide(app, thread, Decision(decision="approve"), context=lead)
    assert out["status"] == "completed"
    with podium.open_runtime(durable_url) as rt:  # read back from the database only
        history = list(rt.compile(graph).get_state_history(_config(thread)))
    statuses = {s.values.get("status") for s in history}
    assert {"awaiting_plan_approval", "awaiting_answer_approval", "completed"} <= statuses
    assert [hit for s in history for hit in _enums(s.values, "values")] == []
