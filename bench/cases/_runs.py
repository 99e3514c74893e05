"""Timed runs shared by the cases: one workflow invocation, checked, returning a figure."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

Check = Callable[[dict[str, Any], int], None]


def config(**extra: Any) -> dict[str, Any]:
    """A run config on a fresh thread."""
    return {"configurable": {"thread_id": str(uuid.uuid4())}, **extra}


def timed_run(app: Any, make_input: Callable[[], dict], check: Check, k: int) -> float:
    """Seconds one run of `app` takes; its output must show `k` delegations."""
    start = time.perf_counter()
    output = app.invoke(make_input(), config())
    elapsed = time.perf_counter() - start
    check(output, k)
    return elapsed


async def atimed_run(app: Any, make_input: Callable[[], dict], check: Check, k: int) -> float:
    """`timed_run` with `ainvoke`."""
    start = time.perf_counter()
    output = await app.ainvoke(make_input(), config())
    elapsed = time.perf_counter() - start
    check(output, k)
    return elapsed


def per_delegation_ms(app: Any, make_input: Callable[[], dict], check: Check, k: int):
    """A runner returning milliseconds per delegation of one run."""
    return lambda: timed_run(app, make_input, check, k) * 1000 / k


async def concurrent_runs(
    app: Any, make_input: Callable[[], dict], check: Check, k: int, runs: int
) -> float:
    """Runs per second of `runs` workflows started at once on `app`."""
    start = time.perf_counter()
    outputs = await asyncio.gather(*(app.ainvoke(make_input(), config()) for _ in range(runs)))
    elapsed = time.perf_counter() - start
    for output in outputs:
        check(output, k)
    return runs / elapsed
