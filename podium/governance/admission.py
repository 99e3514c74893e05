"""Admission of embedded runs: a tenant's runs in flight stay within its `max_runs`.

`PodiumRuntime.compile` wraps a graph whose policy sets `max_runs` in `Admitted`: each
`invoke`, `ainvoke`, `stream` and `astream` first takes one of the tenant's run slots
(`podium.stores.run_slots`), waiting up to the policy's `run_wait` seconds for one to come
free, and gives it back when the call returns (a run paused at a gate holds no slot).
Past the wait the call raises `TooManyRuns` and the run never starts. Everything else
(`get_state`, `with_config`, ...) goes to the compiled graph unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from podium.context import resolve_context
from podium.errors import TooManyRuns
from podium.policies.runs import RunLimit, run_limit
from podium.policies.schema import PolicySet
from podium.stores.services import Services

#: Seconds between looks for a free slot while a run waits.
POLL = 0.1


def needs_admission(policy: PolicySet | None) -> bool:
    """Whether `policy` caps any tenant's runs."""
    if policy is None:
        return False
    return policy.global_.max_runs is not None or any(
        block.max_runs is not None for block in policy.tenants.values()
    )


class Admitted:
    """A compiled graph whose runs each take a tenant slot first.

    Args:
        graph: The compiled graph (with podium's stores bound).
        policy: The workflow's policy (its `max_runs` and `run_wait`).
        services: The runtime's stores, clock and sleeps.
    """

    def __init__(self, graph: Any, policy: PolicySet, services: Services) -> None:
        self._graph = graph
        self._policy = policy
        self._services = services

    def __getattr__(self, name: str) -> Any:
        return getattr(self._graph, name)

    def __repr__(self) -> str:
        return f"Admitted({self._graph!r})"

    def invoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        with self._slot(config, kwargs.get("context")):
            return self._graph.invoke(input, config, **kwargs)

    async def ainvoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        async with self._aslot(config, kwargs.get("context")):
            return await self._graph.ainvoke(input, config, **kwargs)

    def stream(self, input: Any, config: Any = None, **kwargs: Any) -> Iterator[Any]:
        with self._slot(config, kwargs.get("context")):
            yield from self._graph.stream(input, config, **kwargs)

    async def astream(self, input: Any, config: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        async with self._aslot(config, kwargs.get("context")):
            async for chunk in self._graph.astream(input, config, **kwargs):
                yield chunk

    def _limit(self, config: Any, context: Any) -> RunLimit | None:
        return run_limit(self._policy, resolve_context(config, context).tenant_id)

    @contextlib.contextmanager
    def _slot(self, config: Any, context: Any) -> Iterator[None]:
        limit, s = self._limit(config, context), self._services
        if limit is None:
            yield
            return
        start = s.clock()
        while True:
            taken = s.run_slots.take(limit.tenant, limit.max_runs)
            if taken.slot_id is not None:
                break
            s.sleep(_pause(limit, taken.busy, s.clock() - start))
        try:
            yield
        finally:
            s.run_slots.release(taken.slot_id)

    @contextlib.asynccontextmanager
    async def _aslot(self, config: Any, context: Any) -> AsyncIterator[None]:
        limit, s = self._limit(config, context), self._services
        if limit is None:
            yield
            return
        start = s.clock()
        while True:
            taken = await s.run_sync(s.run_slots.take, limit.tenant, limit.max_runs)
            if taken.slot_id is not None:
                break
            await s.asleep(_pause(limit, taken.busy, s.clock() - start))
        try:
            yield
        finally:
            await s.run_sync(s.run_slots.release, taken.slot_id)


def _pause(limit: RunLimit, busy: int, waited: float) -> float:
    """How long to sleep before looking again; TooManyRuns once the wait is spent."""
    if waited >= limit.wait:
        raise TooManyRuns(limit.tenant, limit.max_runs, busy, waited, limit.rule)
    return min(POLL, limit.wait - waited)
