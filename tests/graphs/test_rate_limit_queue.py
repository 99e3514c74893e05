"""Rate limits delay calls instead of failing them: many concurrent runs of one tenant
queue for a tight limit, first come, first served, and all complete.

The clock stands still and every wait returns at once, so the calls of all runs book
their turns as if they all arrived in the same instant: the worst case for the queue.
"""

from __future__ import annotations

import asyncio
import textwrap

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import tool

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext
from podium.testing import ScriptedChatModel, tool_calls

RUNS, CALLS = 20, 3
ONE_TASK = Plan(tasks=[PlannedTask(id="t1", agent="worker", instruction="ping thrice")])
# The shipped policy's per-tenant tool limit of the researcher: 30 tool calls a minute.
POLICY = """
agents:
  worker:
    tools: {allow: [ping]}
    rate_limits:
      - {calls: 30, per: 60, kind: tool%s}
"""


class FrozenTime:
    """A clock that never moves; waits are recorded and return at once."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)  # let the other runs go on meanwhile


def _graphs(tmp_path, runs: int, extra: str = ""):
    policy = tmp_path / "policy.yaml"
    policy.write_text(textwrap.dedent(POLICY % extra).lstrip(), encoding="utf-8")
    ran: list[tuple[int, int]] = []
    built = []
    for r in range(runs):

        @tool
        def ping(n: int, r: int = r) -> str:
            """Ping the service."""
            ran.append((r, n))
            return f"pong {n}"

        # Each run has its own scripted model, so concurrent runs never share a script.
        model = ScriptedChatModel(
            responses=[tool_calls(*[("ping", {"n": n}) for n in range(CALLS)]), "pinged"],
            name=f"worker-{r}",
        )
        agent = AgentSpec(name="worker", tools=[ping], model=model)
        graph = podium.build_workflow([agent], name="queue", supervisor=ONE_TASK, policies=policy)
        built.append((graph, model))
    return built, ran


async def _run_all(url: str, built, tenant: str, time: FrozenTime) -> list[dict]:
    async with podium.open_async_runtime(
        url, clock=time.clock, sleep=time.sleep, asleep=time.asleep
    ) as rt:
        return await asyncio.gather(
            *(
                rt.compile(graph).ainvoke(
                    {"goal": "g"},
                    {"configurable": {"thread_id": f"queue-{r}"}},
                    context=RunContext(tenant_id=tenant),
                )
                for r, (graph, _) in enumerate(built)
            )
        )


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_twenty_concurrent_runs_queue_for_the_tenant_limit_and_all_complete(
    kind, tmp_path, tenant
):
    built, ran = _graphs(tmp_path, RUNS)
    url = "memory://" if kind == "memory" else f"sqlite:///{tmp_path / 'podium.db'}"
    time = FrozenTime()
    outs = await _run_all(url, built, tenant, time)

    assert [out["status"] for out in outs] == ["completed"] * RUNS
    assert all(out["tasks"]["t1"]["status"] == "completed" for out in outs)
    assert sorted(ran) == [(r, n) for r in range(RUNS) for n in range(CALLS)]
    # 30 calls found tokens; the other 30 each booked the next one, two seconds apart,
    # the last a full minute away: the bound by default is the limit's refill period.
    booked = sorted(w for w in time.waits if w > 0)
    assert booked == pytest.approx([2.0 * i for i in range(1, RUNS * CALLS - 30 + 1)])
    for _, model in built:
        model.assert_consumed()
        # No call was refused: the model saw only pongs.
        results = [m for m in model.calls[-1] if isinstance(m, ToolMessage)]
        assert [m.content for m in results] == [f"pong {n}" for n in range(CALLS)]


async def test_a_call_past_the_limits_max_wait_fails_its_task_with_the_reason(tmp_path, tenant):
    # With max_wait 20 s, ten calls can queue behind the 30 free ones; a run with a call
    # past that ends failed, its task saying which bucket and which bound.
    built, ran = _graphs(tmp_path, RUNS, extra=", max_wait: 20")
    time = FrozenTime()
    outs = await _run_all("memory://", built, tenant, time)

    assert len(ran) == 40
    assert max(time.waits) == pytest.approx(20.0)
    refused = [out for out in outs if out["status"] != "completed"]
    assert refused, "every run completed although 20 calls could not fit the queue"
    bucket = f"agent:{tenant}:worker"
    for out in refused:
        error = out["tasks"]["t1"]["error"]
        assert out["status"] == "failed", out["status"]
        assert error.startswith("RateLimited:") and bucket in error, error
        assert "more than the 20.00s a call may wait" in error, error
    done = [r for r, out in enumerate(outs) if out["status"] == "completed"]
    assert {r for r, _ in ran} >= set(done)
    assert len(done) + len(refused) == RUNS
