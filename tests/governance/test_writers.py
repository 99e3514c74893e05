"""One writer per thread inside one process, on every back end: a run holds its thread's
lock while it runs and gives it back however it ends; a thread waiting at a gate is free.
(Two processes: tests/graphs/test_one_writer.py.)"""

from __future__ import annotations

import asyncio

import pytest

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext, ThreadBusy
from podium.governance.writers import WRITER_KEY, writer_claim


def _graph(scripted, *replies, approve_plan: bool = False, latency: float = 0.0):
    agents = [AgentSpec(name="solo", model=scripted(*replies, name="solo", latency=latency))]
    plan = Plan(tasks=[PlannedTask(id="t1", agent="solo", instruction="do it")])
    return podium.build_workflow(agents, name="solo", supervisor=plan, approve_plan=approve_plan)


def _config(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


def _free(rt, tenant: str, thread: str) -> bool:
    try:
        rt.services.writers.acquire(tenant, thread).release()
    except ThreadBusy:
        return False
    return True


def test_a_second_run_of_a_running_thread_is_refused_before_it_does_anything(
    db_url, scripted, tenant
):
    ctx = RunContext(tenant_id=tenant)
    with podium.open_runtime(db_url) as rt:
        app = rt.compile(_graph(scripted, "done"))
        running = app.stream({"goal": "g"}, _config(f"{tenant}-th"), context=ctx)
        next(running)  # the run has started and holds the thread
        with pytest.raises(
            ThreadBusy, match=f"thread '{tenant}-th' of tenant '{tenant}' is already running"
        ):
            app.invoke({"goal": "other"}, _config(f"{tenant}-th"), context=ctx)
        with pytest.raises(ThreadBusy):
            app.invoke(None, _config(f"{tenant}-th"), context=ctx)  # a resume alike
        assert not _free(rt, tenant, f"{tenant}-th")
        list(running)  # the first run goes on undisturbed (the model is called once)
        assert _free(rt, tenant, f"{tenant}-th")
        state = app.get_state(_config(f"{tenant}-th")).values
        assert state["status"] == "completed" and state["goal"] == "g"
        # Another thread is not held up by a running one.
        other = rt.compile(_graph(scripted, "done", "done"))
        running = other.stream({"goal": "g"}, _config(f"{tenant}-th2"), context=ctx)
        next(running)
        out = other.invoke({"goal": "g"}, _config(f"{tenant}-th3"), context=ctx)
        assert out["status"] == "completed"
        list(running)


def test_a_run_stopped_by_its_reader_gives_the_thread_back(db_url, scripted, tenant):
    ctx = RunContext(tenant_id=tenant)
    with podium.open_runtime(db_url) as rt:
        app = rt.compile(_graph(scripted, "done"))
        running = app.stream({"goal": "g"}, _config(f"{tenant}-th"), context=ctx)
        next(running)
        running.close()
        assert _free(rt, tenant, f"{tenant}-th")
        assert app.invoke(None, _config(f"{tenant}-th"), context=ctx)["status"] == "completed"


def test_a_thread_waiting_at_a_gate_is_not_locked(db_url, scripted, tenant):
    ctx = RunContext(tenant_id=tenant, user_id="ann")
    with podium.open_runtime(db_url) as rt:
        app = rt.compile(_graph(scripted, "done", approve_plan=True))
        out = app.invoke({"goal": "g"}, _config(f"{tenant}-th"), context=ctx)
        assert out["__interrupt__"]  # waiting at the plan gate: nothing runs
        assert _free(rt, tenant, f"{tenant}-th")
        out = podium.decide(app, f"{tenant}-th", "approve", context=ctx)
        assert out["status"] == "completed"
        assert _free(rt, tenant, f"{tenant}-th")


def test_a_failed_run_gives_the_thread_back(db_url, scripted, tenant):
    ctx = RunContext(tenant_id=tenant)
    with podium.open_runtime(db_url) as rt:
        app = rt.compile(_graph(scripted, ValueError("model broke")))
        out = app.invoke({"goal": "g"}, _config(f"{tenant}-th"), context=ctx)
        assert out["status"] == "failed"
        assert _free(rt, tenant, f"{tenant}-th")


async def test_async_runs_of_one_thread_are_refused_and_a_cancelled_run_frees_it(
    db_url, scripted, tenant
):
    ctx = RunContext(tenant_id=tenant)
    async with podium.open_async_runtime(db_url) as rt:
        app = rt.compile(_graph(scripted, "done", "done", latency=0.2))
        running = app.astream({"goal": "g"}, _config(f"{tenant}-th"), context=ctx)
        await anext(running)
        with pytest.raises(ThreadBusy):
            await app.ainvoke(None, _config(f"{tenant}-th"), context=ctx)
        async for _ in running:
            pass
        assert _free(rt, tenant, f"{tenant}-th")

        started = asyncio.Event()

        async def run() -> None:
            async for _ in app.astream({"goal": "g"}, _config(f"{tenant}-th2"), context=ctx):
                started.set()

        task = asyncio.create_task(run())
        await started.wait()
        assert not _free(rt, tenant, f"{tenant}-th2")
        task.cancel()  # cancelled while its model call waits
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)  # let the shielded release finish
        for _ in range(100):
            if _free(rt, tenant, f"{tenant}-th2"):
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("a cancelled run kept its thread")
        assert (await app.ainvoke(None, _config(f"{tenant}-th2"), context=ctx))[
            "status"
        ] == "completed"


def test_graphs_for_a_server_and_nested_runs_take_no_lock(scripted, tenant):
    with podium.open_runtime("memory://") as rt:
        runtime_graph = rt.compile(_graph(scripted))
        server_graph = rt.compile(_graph(scripted), checkpointer=None)
    claim = writer_claim(runtime_graph.config, _config("th"), RunContext(tenant_id=tenant))
    assert claim is not None and (claim.tenant_id, claim.thread_id) == (tenant, "th")
    assert WRITER_KEY not in server_graph.config["configurable"]
    assert writer_claim(server_graph.config, _config("th"), None) is None
    nested = {"configurable": {"thread_id": "th", "checkpoint_ns": "solo:1"}}
    assert writer_claim(runtime_graph.config, nested, None) is None
    assert writer_claim(runtime_graph.config, {}, None) is None  # no thread id
