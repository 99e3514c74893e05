"""Throughput: concurrent workflows on PostgreSQL (async), every model call with latency.

podium opens its async runtime on the benchmark database; the baseline is the hand-written
LangGraph graph with an `AsyncPostgresSaver` on the same database, over a connection pool of
the same size as podium's (16), configured as langgraph-checkpoint-postgres documents
(autocommit, dict rows, no prepared statements). Figure: runs per second.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import podium
from bench import plain
from bench import workloads as w
from bench.cases._runs import concurrent_runs
from bench.measure import Figure, ainterleave, figure, log
from bench.settings import Settings

PLAIN = "plain LangGraph + AsyncPostgresSaver"
POOL_SIZE = 16


@asynccontextmanager
async def postgres_saver(url: str):
    """An `AsyncPostgresSaver` over its own pool, set up."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    kwargs = {"autocommit": True, "row_factory": dict_row, "prepare_threshold": 0}
    async with AsyncConnectionPool(url, max_size=POOL_SIZE, kwargs=kwargs, open=False) as pool:
        saver = AsyncPostgresSaver(pool)
        await saver.setup()
        yield saver


async def _measure(settings: Settings) -> dict[str, list[float]]:
    k, runs, latency = settings.throughput_k, settings.throughput_runs, settings.throughput_latency
    assert settings.postgres_url is not None
    async with (
        podium.open_async_runtime(settings.postgres_url) as rt,
        postgres_saver(settings.postgres_url) as saver,
    ):
        router, worker = (
            w.router_model(k, "podium", latency=latency),
            w.worker_model(latency=latency),
        )
        podium_app = rt.compile(w.build_podium_router(router, worker, k))
        plain_router = w.router_model(k, "plain", latency=latency)
        plain_app = plain.build_plain_router(plain_router, worker, is_async=True).compile(
            checkpointer=saver
        )
        runners = {
            "podium": lambda: concurrent_runs(podium_app, w.podium_input, w.check_podium, k, runs),
            PLAIN: lambda: concurrent_runs(plain_app, plain.plain_input, w.check_messages, k, runs),
        }
        return await ainterleave(runners, settings.throughput_reps, "throughput")


def run(settings: Settings) -> list[Figure]:
    k, runs = settings.throughput_k, settings.throughput_runs
    ms = settings.throughput_latency * 1000
    metric = f"runs/s, {runs} concurrent x {k} delegations, PostgreSQL, {ms:.0f} ms latency"
    if settings.postgres_url is None:
        note = f"skipped: {settings.postgres_skip}"
        return [Figure("throughput", metric, None, PLAIN, None, None, note=note)]
    log("throughput")
    samples = asyncio.run(_measure(settings))
    return [
        figure("throughput", metric, samples, subject="podium", baseline=PLAIN, target=">= 1.0")
    ]
