"""Tenant fairness in the embedded runtime: a tenant's runs in flight stay within its
policy's `max_runs`; a run past it waits for a slot, up to `run_wait`, then is refused."""

from __future__ import annotations

import asyncio
import textwrap

import pytest
from langchain_core.tools import tool

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext, TooManyRuns
from podium.governance.admission import Admitted
from podium.testing import ScriptedChatModel, tool_call

ONE_TASK = Plan(tasks=[PlannedTask(id="t1", agent="worker", instruction="probe")])
POLICY = """
global:
  max_runs: {max_runs}
  run_wait: {run_wait}
agents:
  worker:
    tools: {{allow: [probe]}}
"""


def _graph(tmp_path, seen: list[int], rt_box: list, *, max_runs: int, run_wait: float):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        textwrap.dedent(POLICY.format(max_runs=max_runs, run_wait=run_wait)), encoding="utf-8"
    )

    @tool
    def probe(tenant: str) -> str:
        """Report how many runs of the tenant are in flight."""
        seen.append(rt_box[0].services.run_slots.busy(tenant))
        return "probed"

    def make(tenant: str):
        model = ScriptedChatModel(
            responses=[tool_call("probe", {"tenant": tenant}), "done"], latency=0.05
        )
        agent = AgentSpec(name="worker", tools=[probe], model=model)
        return podium.build_workflow([agent], name="adm", supervisor=ONE_TASK, policies=policy)

    return make


async def test_concurrent_runs_of_a_tenant_never_exceed_max_runs_and_all_complete(tmp_path, tenant):
    seen: list[int] = []
    box: list = []
    make = _graph(tmp_path, seen, box, max_runs=2, run_wait=60)
    async with podium.open_async_runtime(f"sqlite:///{tmp_path / 'p.db'}") as rt:
        box.append(rt)
        graphs = [rt.compile(make(tenant)) for _ in range(6)]
        assert all(isinstance(g, Admitted) for g in graphs)
        outs = await asyncio.gather(
            *(
                g.ainvoke(
                    {"goal": "g"},
                    {"configurable": {"thread_id": f"adm-{i}"}},
                    context=RunContext(tenant_id=tenant),
                )
                for i, g in enumerate(graphs)
            )
        )
        assert rt.services.run_slots.busy(tenant) == 0  # every slot given back
    assert [o["status"] for o in outs] == ["completed"] * 6
    assert len(seen) == 6 and max(seen) <= 2, seen
    assert max(seen) == 2, f"the runs never overlapped, so the limit was not exercised: {seen}"


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


def test_a_run_past_max_runs_waits_run_wait_then_is_refused(tmp_path, tenant):
    seen: list[int] = []
    box: list = []
    make = _graph(tmp_path, seen, box, max_runs=1, run_wait=2.5)
    fake = FakeTime()
    with podium.open_runtime("memory://", clock=fake.clock, sleep=fake.sleep) as rt:
        box.append(rt)
        graph = rt.compile(make(tenant))
        # Another run of the tenant (this process or another) holds the only slot.
        held = rt.services.run_slots.take(tenant, 1).slot_id
        config = {"configurable": {"thread_id": "refused"}}
        with pytest.raises(TooManyRuns) as info:
            graph.invoke({"goal": "g"}, config, context=RunContext(tenant_id=tenant))
        assert fake.slept == pytest.approx(2.5)
        assert (info.value.tenant_id, info.value.limit, info.value.busy) == (tenant, 1, 1)
        message = str(info.value)
        assert repr(tenant) in message and "(global.max_runs) is 1" in message
        assert "raise max_runs (or run_wait)" in message
        assert seen == [] and graph.get_state(config).values == {}  # never started

        # Another tenant is not held up; once the slot is back the tenant's run starts.
        other = rt.compile(make("other-" + tenant)).invoke(
            {"goal": "g"},
            {"configurable": {"thread_id": "other"}},
            context=RunContext(tenant_id="other-" + tenant),
        )
        assert other["status"] == "completed"
        rt.services.run_slots.release(held)
        out = rt.compile(make(tenant)).invoke(
            {"goal": "g"},
            {"configurable": {"thread_id": "after"}},
            context=RunContext(tenant_id=tenant),
        )
    assert out["status"] == "completed"


def test_without_max_runs_the_compiled_graph_is_not_wrapped(tmp_path):
    model = ScriptedChatModel(responses=[])
    graph = podium.build_workflow(
        [AgentSpec(name="worker", model=model)], name="plain", supervisor=ONE_TASK
    )
    with podium.open_runtime("memory://") as rt:
        assert not isinstance(rt.compile(graph), Admitted)
