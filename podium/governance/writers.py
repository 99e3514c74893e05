"""One writer per thread at a run's entry: a run holds its thread's writer lock while it runs.

`PodiumRuntime.compile` marks each graph it compiles with a checkpointer (`WRITER_KEY`);
a podium `Workflow`'s `stream` and `astream` (every run's entry, `invoke` included) then
take the thread's lock (`podium.stores.writers`) before LangGraph reads the thread, and
give it back when the run ends, fails, pauses at a gate, or is cancelled or closed. A
busy thread raises `ThreadBusy` at once and nothing of the run happens.

Writing a thread's state outside a run (`update_state`, as a dead-letter replay does
before it runs the thread on) takes the same lock: `holding_thread` holds it across the
write and the run that follows, and marks the config so that run does not ask for it
again. A run of the thread elsewhere meanwhile is refused, and so is the write while a
run holds the thread.

Not locked: a graph nested in a running graph (its root holds the lock), a run without
a thread id, and graphs compiled for a LangGraph server (compiled without a checkpointer:
the server gives each run its own, and its `multitask_strategy` decides what a second
run on a busy thread does).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config, merge_configs

from podium.context import resolve_context
from podium.governance.binding import bound
from podium.storage.fence import WRITER_FENCE
from podium.stores.services import Services
from podium.stores.writers import HeldThread

#: The configurable key that asks for one writer per thread (`__`: kept out of checkpoints).
WRITER_KEY = "__podium_one_writer"
#: The configurable key of a lock its caller already holds (`holding_thread`).
HELD_KEY = "__podium_held_thread"


@dataclass(frozen=True, slots=True)
class WriterClaim:
    """The lock a run must hold: whose thread, and the stores that lock it; `held` when
    the run's caller holds it already (`holding_thread`), so the run takes nothing."""

    services: Services
    tenant_id: str
    thread_id: str
    held: HeldThread | None = None

    def acquire(self) -> HeldThread:
        return self.services.writers.acquire(self.tenant_id, self.thread_id)


def writer_claim(graph_config: Any, config: Any, context: Any) -> WriterClaim | None:
    """The writer lock a run of a graph (whose own config is `graph_config`) with `config`
    and `context` must hold, or None when it needs none (see the module docstring)."""
    merged = merge_configs(graph_config, ensure_config(config))
    conf = merged.get("configurable") or {}
    if not conf.get(WRITER_KEY) or conf.get("checkpoint_ns"):
        return None
    if conf.get("thread_id") is None:
        return None  # LangGraph itself refuses a checkpointed run without a thread id
    thread_id = str(conf["thread_id"])
    tenant_id = resolve_context(merged, context).tenant_id
    held = conf.get(HELD_KEY)
    if not (isinstance(held, HeldThread) and held.held and held.key == (tenant_id, thread_id)):
        held = None  # not the caller's lock on this thread (`holding_thread`)
    return WriterClaim(bound(merged).services, tenant_id, thread_id, held)


@contextlib.contextmanager
def holding_thread(app: Any, config: Any, context: Any = None) -> Iterator[RunnableConfig]:
    """Hold the writer lock of `config`'s thread for a write and the run after it.

    Yields the config to pass to `app.update_state`, `app.get_state` and the run (its own
    lock is then taken already); when `app` asks for no lock (see `writer_claim`), `config`
    itself. The lock is given back when the block ends.

    Raises:
        ThreadBusy: when a run of the thread (in any process) holds it.
    """
    config = ensure_config(config)
    claim = writer_claim(getattr(app, "config", None), config, context)
    if claim is None or claim.held is not None:
        yield config
        return
    held = claim.acquire()
    try:
        yield merge_configs(config, {"configurable": {HELD_KEY: held}})
    finally:
        held.release()


def holds_thread(config: Any) -> bool:
    """Whether `config` carries its caller's writer lock (`holding_thread` took it)."""
    held = ((config or {}).get("configurable") or {}).get(HELD_KEY)
    return isinstance(held, HeldThread) and held.held


def fenced(config: Any, held: HeldThread) -> RunnableConfig:
    """`config` carrying the run's writer lock, which the PostgreSQL savers check before
    each checkpoint write (`WRITER_FENCE`): a run that lost its lock to another run is
    refused its next write, even in the middle of a step."""
    return merge_configs(ensure_config(config), {"configurable": {WRITER_FENCE: held}})


def one_writer(claim: WriterClaim, run: Callable[[HeldThread], Iterator[Any]]) -> Iterator[Any]:
    """`run(held)`'s chunks, with the thread's writer lock held from the first chunk asked
    for until the run ends or the caller stops reading (nothing to take when its caller
    holds it). After each chunk the lock is made sure of (`HeldThread.check`, when its
    session may have ended), and `run` passes it to its checkpoint writes (`fenced`): a
    run that lost it to another stops with `WriterLockLost` and writes nothing more."""
    if claim.held is not None:
        yield from _checked(claim.held, run)
        return
    held = claim.acquire()
    try:
        yield from _checked(held, run)
    finally:
        held.release()


def _checked(held: HeldThread, run: Callable[[HeldThread], Iterator[Any]]) -> Iterator[Any]:
    with contextlib.closing(run(held)) as chunks:  # type: ignore[type-var]
        for chunk in chunks:
            yield chunk
            if held.suspect():
                held.check()


async def aone_writer(
    claim: WriterClaim, run: Callable[[HeldThread], AsyncIterator[Any]]
) -> AsyncIterator[Any]:
    """`one_writer` for async runs: taking and giving back the lock stay off the loop
    where the database is remote (`Services.run_sync`)."""
    services = claim.services
    if claim.held is not None:
        async with contextlib.aclosing(_achecked(claim.held, services, run)) as chunks:
            async for chunk in chunks:
                yield chunk
        return
    held = await services.run_sync(claim.acquire)
    try:
        async with contextlib.aclosing(_achecked(held, services, run)) as chunks:
            async for chunk in chunks:
                yield chunk
    finally:
        # Shielded: a cancelled run still gives its lock back (the release goes on even
        # if this await is cancelled again).
        await asyncio.shield(asyncio.ensure_future(services.run_sync(held.release)))


async def _achecked(
    held: HeldThread, services: Any, run: Callable[[HeldThread], AsyncIterator[Any]]
) -> AsyncGenerator[Any, None]:
    async with contextlib.aclosing(run(held)) as chunks:  # type: ignore[type-var]
        async for chunk in chunks:
            yield chunk
            if held.suspect():  # no I/O on the loop unless the session may have ended
                await services.run_sync(held.check)
