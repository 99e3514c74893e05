"""Fan-out: N independent tasks, each a model call with simulated latency, against one task.

podium runs a static plan of N independent tasks and, interleaved, the same workflow with a
one-task plan; the figure is total time over one task's time (1.0 is perfect parallelism).
Measured with `invoke` (LangGraph's thread pool) and with `ainvoke` (the event loop). The
hand-written `Send` graph is measured the same way as a reference.
"""

from __future__ import annotations

import asyncio
from functools import partial

import podium
from bench import plain
from bench import workloads as w
from bench.cases._runs import atimed_run, timed_run
from bench.measure import Figure, ainterleave, figure, interleave, log
from bench.settings import Settings


def _no_check(output: dict, k: int) -> None:
    if len(output.get("results") or []) != k:
        raise RuntimeError(f"fan-out baseline produced {len(output.get('results') or [])} results")


def _apps(rt: podium.PodiumRuntime, n: int, latency: float, is_async: bool) -> dict[str, tuple]:
    worker = w.worker_model(latency=latency)
    saver = rt.checkpointer
    return {
        f"podium {n} tasks": (rt.compile(w.build_podium_plan(worker, n)), w.podium_input, n),
        "podium 1 task": (rt.compile(w.build_podium_plan(worker, 1)), w.podium_input, 1),
        f"plain {n} tasks": (
            plain.build_plain_fanout(worker, n, is_async=is_async).compile(checkpointer=saver),
            dict,
            n,
        ),
        "plain 1 task": (
            plain.build_plain_fanout(worker, 1, is_async=is_async).compile(checkpointer=saver),
            dict,
            1,
        ),
    }


def _check(name: str):
    return w.check_podium if name.startswith("podium") else _no_check


def _figures(samples: dict, n: int, mode: str, latency: float) -> list[Figure]:
    metric = f"{n} tasks / 1 task, {mode}, {latency * 1000:.0f} ms model latency"
    return [
        figure(
            "fan-out",
            metric,
            samples,
            subject=f"podium {n} tasks",
            baseline="podium 1 task",
            target="<= 1.3",
            note="seconds per run",
        ),
        figure(
            "fan-out",
            metric,
            samples,
            subject=f"plain {n} tasks",
            baseline="plain 1 task",
            target=None,
            note="reference: hand-written Send graph, seconds per run",
        ),
    ]


def _sync(settings: Settings) -> dict[str, list[float]]:
    n, latency = settings.fanout_tasks, settings.fanout_latency
    with podium.open_runtime("memory://") as rt:
        apps = _apps(rt, n, latency, is_async=False)
        runners = {
            name: partial(timed_run, app, make, _check(name), k)
            for name, (app, make, k) in apps.items()
        }
        return interleave(runners, settings.reps, "fan-out/invoke")


async def _async(settings: Settings) -> dict[str, list[float]]:
    n, latency = settings.fanout_tasks, settings.fanout_latency
    async with podium.open_async_runtime("memory://") as rt:
        apps = _apps(rt, n, latency, is_async=True)
        runners = {
            name: partial(atimed_run, app, make, _check(name), k)
            for name, (app, make, k) in apps.items()
        }
        return await ainterleave(runners, settings.reps, "fan-out/ainvoke")


def run(settings: Settings) -> list[Figure]:
    n, latency = settings.fanout_tasks, settings.fanout_latency
    log("fan-out: invoke")
    figures = _figures(_sync(settings), n, "invoke", latency)
    log("fan-out: ainvoke")
    return figures + _figures(asyncio.run(_async(settings)), n, "ainvoke", latency)
