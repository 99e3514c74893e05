"""Workflow graphs compiled on a real checkpointer: planning, dispatch, parallelism, failure."""

from __future__ import annotations

import json
import threading
import time

import pytest
from langchain_core.tools import tool

import podium
from podium import AgentSpec, Plan, PlannedTask
from podium.nodes.prompts import REPAIR
from podium.testing import tool_call
from tests.helpers import allowing, run_demo

DIAMOND = Plan(
    tasks=[
        PlannedTask(id="a", agent="alpha", instruction="start"),
        PlannedTask(id="b", agent="beta", instruction="left", depends_on=["a"]),
        PlannedTask(id="c", agent="gamma", instruction="right", depends_on=["a"]),
        PlannedTask(id="d", agent="delta", instruction="join", depends_on=["b", "c"]),
    ]
)
SLEEP = 0.3


#: Tasks that must run at the same time: each waits (bounded) for the other to arrive.
MEET = ("b", "c")


class Clock:
    """Records when each sleepy tool call started and ended; the calls labelled in MEET
    wait for each other, so they finish only if they run at the same time."""

    def __init__(self) -> None:
        self.spans: dict[str, tuple[float, float]] = {}
        self.arrived = {label: threading.Event() for label in MEET}
        self.met: dict[str, bool] = {}
        self.lock = threading.Lock()

    def tool(self):
        @tool
        def sleepy(label: str) -> str:
            """Sleep a little and return the label."""
            start = time.monotonic()
            if label in self.arrived:
                self.arrived[label].set()
                (other,) = (o for o in MEET if o != label)
                # Run one after the other, the first would wait here in vain.
                self.met[label] = self.arrived[other].wait(timeout=10)
            time.sleep(SLEEP)
            with self.lock:
                self.spans[label] = (start, time.monotonic())
            return f"slept {label}"

        return sleepy


def _diamond_agents(scripted, clock: Clock) -> list[AgentSpec]:
    names = {"alpha": "a", "beta": "b", "gamma": "c", "delta": "d"}
    return [
        AgentSpec(
            name=agent,
            tools=[clock.tool()],
            model=scripted(tool_call("sleepy", {"label": label}), f"{label} done", name=agent),
        )
        for agent, label in names.items()
    ]


DIAMOND_POLICY = allowing(**{agent: ["sleepy"] for agent in ("alpha", "beta", "gamma", "delta")})


def _config(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


def test_diamond_runs_independent_tasks_concurrently(scripted):
    clock = Clock()
    graph = podium.build_workflow(
        _diamond_agents(scripted, clock),
        name="diamond",
        supervisor=DIAMOND,
        policies=DIAMOND_POLICY,
    )
    with podium.open_runtime("memory://") as rt:
        out = rt.compile(graph).invoke({"goal": "g"}, _config("diamond-1"))
    assert out["status"] == "completed"
    assert out["answer"] == "d done"
    assert clock.met == {"b": True, "c": True}, "b and c did not run at the same time"
    (b0, b1), (c0, c1) = clock.spans["b"], clock.spans["c"]
    assert b0 < c1 and c0 < b1, "b and c did not overlap"
    assert clock.spans["d"][0] >= max(b1, c1)  # the join waits for both


async def test_diamond_concurrent_in_async_runs(scripted):
    clock = Clock()
    graph = podium.build_workflow(
        _diamond_agents(scripted, clock),
        name="diamond",
        supervisor=DIAMOND,
        policies=DIAMOND_POLICY,
    )
    async with podium.open_async_runtime("memory://") as rt:
        out = await rt.compile(graph).ainvoke({"goal": "g"}, _config("diamond-async"))
    assert out["status"] == "completed"
    assert clock.met == {"b": True, "c": True}, "b and c did not run at the same time"


def test_lifecycle_history_is_recorded(scripted):
    agents = [AgentSpec(name="solo", model=scripted("ok", name="solo"))]
    plan = Plan(tasks=[PlannedTask(id="t1", agent="solo", instruction="do it")])
    with podium.open_runtime("memory://") as rt:
        out = rt.compile(podium.build_workflow(agents, name="one", supervisor=plan)).invoke(
            {"goal": "g"}, _config("life")
        )
    steps = [(h["from"], h["to"]) for h in out["tasks"]["t1"]["history"]]
    assert steps == [
        ("queued", "initializing"),
        ("initializing", "running"),
        ("running", "completed"),
    ]
    assert out["messages"][-1].content == "ok"
    assert out["messages"][0].content == "g"


def _plan_json(*tasks: tuple[str, str, list[str]]) -> str:
    return json.dumps(
        {
            "tasks": [
                {"id": i, "agent": a, "instruction": f"do {i}", "depends_on": d}
                for i, a, d in tasks
            ]
        }
    )


def test_invalid_plan_is_repaired_once(scripted):
    boss = scripted(
        _plan_json(("t1", "reseacher", [])),
        _plan_json(("t1", "researcher", []), ("t2", "writer", ["t1"])),
        name="boss",
    )
    agents = [
        AgentSpec(name="researcher", model=scripted("facts", name="researcher")),
        AgentSpec(name="writer", model=scripted("brief", name="writer")),
    ]
    with podium.open_runtime("memory://") as rt:
        out = rt.compile(podium.build_workflow(agents, name="repair", model=boss)).invoke(
            {"goal": "g"}, _config("repair")
        )
    assert out["status"] == "completed"
    assert out["answer"] == "brief"
    repair_prompt = boss.calls[1][-1].content
    assert repair_prompt.startswith(REPAIR.split("{")[0])
    assert "unknown agent 'reseacher'" in repair_prompt


def test_fallback_agents_are_not_offered_to_the_planner(scripted):
    # The model first gives the fallback agent a task of its own: refused like an unknown
    # agent, and the repaired plan runs without it.
    boss = scripted(
        _plan_json(("t1", "librarian", []), ("t2", "writer", ["t1"])),
        _plan_json(("t1", "researcher", []), ("t2", "writer", ["t1"])),
        name="boss",
    )
    agents = [
        AgentSpec(
            name="researcher",
            description="Finds facts.",
            model=scripted("facts", name="researcher"),
            fallback="librarian",
        ),
        AgentSpec(name="librarian", description="Slower, thorough search.", model="demo"),
        AgentSpec(name="writer", description="Writes.", model=scripted("brief", name="writer")),
    ]
    with podium.open_runtime("memory://") as rt:
        out = rt.compile(podium.build_workflow(agents, name="fallbacks", model=boss)).invoke(
            {"goal": "g"}, _config("fallbacks")
        )
    planner_prompt = boss.calls[0][0].content
    assert "- researcher: Finds facts." in planner_prompt
    assert "- writer: Writes." in planner_prompt
    assert "librarian" not in planner_prompt
    assert "unknown agent 'librarian'" in boss.calls[1][-1].content
    assert out["status"] == "completed"
    assert [t["agent"] for t in out["tasks"].values()] == ["researcher", "writer"]


def test_the_demo_planner_gives_fallback_agents_no_task():
    agents = [
        AgentSpec(name="researcher", description="Finds facts.", fallback="librarian"),
        AgentSpec(name="librarian", description="Slower, thorough search."),
        AgentSpec(name="writer", description="Writes the brief."),
    ]
    with podium.open_runtime("memory://") as rt:
        out = rt.compile(podium.build_workflow(agents, name="demo_fallbacks")).invoke(
            {"goal": "Write a brief on heat pumps"}, _config("demo-fallbacks")
        )
    assert out["status"] == "completed"
    agents_given_tasks = {t["agent"] for t in out["tasks"].values()}
    assert "librarian" not in agents_given_tasks and "researcher" in agents_given_tasks


def test_invalid_plan_twice_fails_cleanly(scripted):
    boss = scripted("no plan here", _plan_json(("t1", "ghost", [])), name="boss")
    agents = [AgentSpec(name="researcher", model=scripted(name="researcher"))]
    with podium.open_runtime("memory://") as rt:
        out = rt.compile(podium.build_workflow(agents, name="bad", model=boss)).invoke(
            {"goal": "g"}, _config("bad")
        )
    assert out["status"] == "failed"
    assert "could not make a valid plan" in out["error"]
    assert "unknown agent 'ghost'" in out["error"]
    assert out["answer"].startswith("The run failed:")


def test_router_picks_agents_until_finish(scripted):
    boss = scripted(
        '{"next": "researcher", "instruction": "find"}',
        '{"next": "writer", "instruction": "write"}',
        '{"next": "FINISH"}',
        name="boss",
    )
    agents = [
        AgentSpec(name="researcher", model=scripted("facts", name="researcher")),
        AgentSpec(name="writer", model=scripted("brief", name="writer")),
    ]
    with podium.open_runtime("memory://") as rt:
        out = rt.compile(
            podium.build_workflow(agents, name="routed", supervisor="router", model=boss)
        ).invoke({"goal": "g"}, _config("router"))
    assert out["status"] == "completed"
    assert out["answer"] == "brief"
    assert [t["agent"] for t in out["tasks"].values()] == ["researcher", "writer"]
    # The router sees summaries of finished tasks, not transcripts.
    assert "t1 researcher: facts" in boss.calls[1][-1].content
    assert out["tasks"]["t2"]["depends_on"] == ["t1"]


def test_router_turn_limit_stops_the_run(scripted):
    boss = scripted(*['{"next": "solo", "instruction": "again"}'] * 3, name="boss")
    agents = [AgentSpec(name="solo", model=scripted("x", "x", name="solo"))]
    graph = podium.build_workflow(agents, name="loop", supervisor="router", model=boss, max_turns=2)
    with podium.open_runtime("memory://") as rt:
        out = rt.compile(graph).invoke({"goal": "g"}, _config("loop"))
    assert out["status"] == "failed"
    assert "2 delegations without finishing (max_turns=2)" in out["error"]
    assert [t["status"] for t in out["tasks"].values()] == ["completed", "completed"]


def test_router_may_finish_on_the_turn_after_the_limit(scripted):
    boss = scripted('{"next": "solo", "instruction": "once"}', '{"next": "FINISH"}', name="boss")
    agents = [AgentSpec(name="solo", model=scripted("done", name="solo"))]
    graph = podium.build_workflow(agents, name="edge", supervisor="router", model=boss, max_turns=1)
    with podium.open_runtime("memory://") as rt:
        out = rt.compile(graph).invoke({"goal": "g"}, _config("edge"))
    assert out["status"] == "completed" and out["answer"] == "done"


def test_failed_task_cancels_dependents_and_keeps_other_results(scripted):
    plan = Plan(
        tasks=[
            PlannedTask(id="t1", agent="looper", instruction="never ends"),
            PlannedTask(id="t2", agent="solo", instruction="fine"),
            PlannedTask(id="t3", agent="solo", instruction="after t1", depends_on=["t1"]),
        ]
    )

    @tool
    def noop() -> str:
        """Do nothing."""
        return "nothing"

    agents = [
        AgentSpec(
            name="looper",
            tools=[noop],
            max_steps=2,
            model=scripted(tool_call("noop"), tool_call("noop"), name="looper"),
        ),
        AgentSpec(name="solo", model=scripted("fine result", name="solo")),
    ]
    with podium.open_runtime("memory://") as rt:
        graph = podium.build_workflow(
            agents, name="partial", supervisor=plan, policies=allowing(looper=["noop"])
        )
        out = rt.compile(graph).invoke({"goal": "g"}, _config("partial"))
    tasks = out["tasks"]
    assert tasks["t1"]["status"] == "dead_lettered"
    assert "max_steps=2" in tasks["t1"]["error"]
    assert tasks["t3"]["status"] == "cancelled"
    assert tasks["t2"]["status"] == "completed"
    assert out["status"] == "partial"
    assert "fine result" in out["answer"] and "t1 (looper): dead_lettered" in out["answer"]


def test_max_concurrency_bounds_each_wave(scripted):
    clock = Clock()
    agents = [
        AgentSpec(
            name=n,
            tools=[clock.tool()],
            model=scripted(tool_call("sleepy", {"label": n}), "ok", name=n),
        )
        for n in ("one", "two")
    ]
    plan = Plan(tasks=[PlannedTask(id=n, agent=n, instruction="x") for n in ("one", "two")])
    graph = podium.build_workflow(
        agents,
        name="bounded",
        supervisor=plan,
        max_concurrency=1,
        policies=allowing(one=["sleepy"], two=["sleepy"]),
    )
    with podium.open_runtime("memory://") as rt:
        rt.compile(graph).invoke({"goal": "g"}, _config("bounded"))
    (a0, a1), (b0, b1) = clock.spans["one"], clock.spans["two"]
    assert a1 <= b0 or b1 <= a0, "tasks overlapped despite max_concurrency=1"


def test_follow_up_starts_a_new_round_on_the_same_thread():
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(podium.build_research_brief())
        first = run_demo(app, "chat", goal="Write a brief on heat pump adoption")
        second = run_demo(
            app, "chat", inputs={"messages": [("user", "Now a brief on rooftop solar")]}
        )
    assert first["round"] == 1 and second["round"] == 2
    assert second["goal"] == "Now a brief on rooftop solar"
    assert "rooftop" in second["answer"].lower()
    kinds = [m.type for m in second["messages"]]
    assert kinds == ["human", "ai", "human", "ai"]
    assert set(second["tasks"]) == {t["id"] for t in second["plan"]}


def test_context_tenant_is_recorded_in_the_thread_index(tenant):
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(podium.build_research_brief())
        run_demo(app, "idx", tenant=tenant, goal="Write a brief on heat pumps")
        [info] = rt.threads.list(tenant_id=tenant)
        assert rt.threads.list(tenant_id="someone-else") == []
    assert (info.thread_id, info.workflow, info.status) == ("idx", "research_brief", "completed")


def test_build_time_validation_names_the_fix():
    agents = [AgentSpec(name="a")]
    bad_plan = Plan(tasks=[PlannedTask(id="t1", agent="b", instruction="x")])
    with pytest.raises(podium.ConfigurationError, match="unknown agent 'b'"):
        podium.build_workflow(agents, name="w", supervisor=bad_plan)
    with pytest.raises(podium.ConfigurationError, match="supervisor must be"):
        podium.build_workflow(agents, name="w", supervisor="boss")
    with pytest.raises(podium.ConfigurationError, match="max_concurrency"):
        podium.build_workflow(agents, name="w", max_concurrency=0)
