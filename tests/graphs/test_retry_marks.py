"""Records of retried work say so: the attempt a LangGraph server gives a run it runs
again (`config["metadata"]["run_attempt"]`, as langgraph-api sets it) marks every audit
event and usage row of that run. (A task's own attempts, counted by podium, are tested
where tasks are killed: tests/graphs/test_exactly_once.py, and stopped by a database
outage: tests/storage/test_database_faults.py.)"""

from __future__ import annotations

from langchain_core.tools import tool

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext
from podium.testing import tool_call
from tests.helpers import allowing


def test_a_server_runs_attempt_marks_every_record_of_the_run(scripted, tenant):
    @tool
    def look_up(item: str) -> str:
        """Look an item up."""
        return f"{item}: found"

    model = scripted(*[tool_call("look_up", {"item": "heat pumps"}), "found it"] * 2, name="finder")
    graph = podium.build_workflow(
        [AgentSpec(name="finder", tools=[look_up], model=model)],
        name="marks",
        supervisor=Plan(tasks=[PlannedTask(id="t1", agent="finder", instruction="find")]),
        policies=allowing(finder=["look_up"]),
    )
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        for thread, attempt in (("first", 1), ("again", 2)):
            config = {"configurable": {"thread_id": thread}, "metadata": {"run_attempt": attempt}}
            out = app.invoke({"goal": "find"}, config, context=RunContext(tenant_id=tenant))
            assert out["status"] == "completed"
        first = rt.services.audit.timeline("first", tenant)
        again = rt.services.audit.timeline("again", tenant)
        rows = rt.db.query(
            "SELECT thread_id, step_attempt, run_attempt FROM podium_usage WHERE tenant_id = ?",
            (tenant,),
        )
    kinds = {e.kind for e in again}
    assert {"plan", "dispatch", "model_call", "tool_call", "tool_result"} <= kinds
    assert {e.payload.get("run_attempt") for e in again} == {2}
    assert not any("run_attempt" in e.payload or "step_attempt" in e.payload for e in first)
    # The task itself ran once in each run: no step attempt.
    assert sorted((r["thread_id"], r["step_attempt"], r["run_attempt"]) for r in rows) == [
        ("again", 1, 2),
        ("again", 1, 2),
        ("first", 1, 1),
        ("first", 1, 1),
    ]
