"""Fairness: tenant A floods runs while tenant B submits a few; B's p95 completion time.

Embedded async runtime (in-memory database), the router workload with model latency.
Under a policy with `global.max_runs`, A's flood waits for A's own run slots while B's
runs start at once; the figure is B's p95 completion time during A's flood over B's p95
alone (target <= 2). A reference row gives the same ratio without `max_runs`.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import podium
from bench import workloads as w
from bench.cases._runs import config
from bench.measure import Figure, ainterleave, figure, log
from bench.settings import Settings
from podium.policies import load_policies

ALONE, FLOOD = "B alone", "B during A's flood"


def _policy(max_runs: int | None) -> podium.PolicySet:
    policy = load_policies(w.POLICY)
    return policy.model_copy(
        update={"global_": policy.global_.model_copy(update={"max_runs": max_runs})}
    )


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


async def _timed(app, tenant: str, k: int) -> float:
    start = time.perf_counter()
    out = await app.ainvoke(w.podium_input(), config(), context=podium.RunContext(tenant_id=tenant))
    w.check_podium(out, k)
    return time.perf_counter() - start


async def _b_p95(app, s: Settings, flood: bool) -> float:
    k = s.fairness_k
    a = [asyncio.create_task(_timed(app, "a", k)) for _ in range(s.fairness_flood if flood else 0)]
    await asyncio.sleep(0)  # A's runs are submitted first
    b = await asyncio.gather(*(_timed(app, "b", k) for _ in range(s.fairness_b)))
    await asyncio.gather(*a)
    return _p95(b)


async def _measure(s: Settings, max_runs: int | None) -> dict[str, list[float]]:
    k, latency = s.fairness_k, s.fairness_latency
    router = w.router_model(k, "podium", latency=latency)
    graph = podium.build_workflow(
        w.podium_agents(w.worker_model(latency=latency)),
        name="bench",
        supervisor="router",
        model=router,
        max_turns=50,
        policies=_policy(max_runs),
    )
    async with podium.open_async_runtime("memory://") as rt:
        app = rt.compile(graph)
        runners = {ALONE: lambda: _b_p95(app, s, False), FLOOD: lambda: _b_p95(app, s, True)}
        return await ainterleave(runners, s.fairness_reps, f"fairness max_runs={max_runs}")


def run(settings: Settings) -> list[Figure]:
    s = settings
    what = (
        f"B's p95 completion ratio, A floods {s.fairness_flood} runs, B {s.fairness_b}, "
        f"{s.fairness_k} delegations, {s.fairness_latency * 1000:.0f} ms latency, memory"
    )
    log("fairness")
    capped = asyncio.run(_measure(s, s.fairness_max_runs))
    unlimited = asyncio.run(_measure(s, None))
    note = f"p95 of B's {s.fairness_b} completion times (s) per repetition; embedded async"
    return [
        figure(
            "fairness",
            f"{what}, max_runs {s.fairness_max_runs} per tenant",
            capped,
            subject=FLOOD,
            baseline=ALONE,
            target="<= 2.0",
            note=note,
        ),
        figure(
            "fairness",
            f"{what}, no max_runs (reference)",
            unlimited,
            subject=FLOOD,
            baseline=ALONE,
            target=None,
            note=note,
        ),
    ]
