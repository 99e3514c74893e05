"""A run whose database stays unreachable ends `failed` with the reason, not with a raise.

A lost connection is retried for the database's retry window (`podium.storage.faults`);
an outage longer than that stops the run where it is. At a workflow's entry (each run of
a workflow compiled by `rt.compile`: see `podium.graphs.intake.Workflow`) the fault
becomes the run's outcome: its last `values` chunk (what `invoke` and `ainvoke` return)
is the state it reached with `status: "failed"` and an `error` that names the database
(masked), what to check and the command that resumes the thread; a `custom` stream gets
a `run_finished` event saying the same, with `reason: "database_unavailable"`. A stream
that asked for neither mode has nothing to carry it, so it raises `DatabaseUnavailable`.

Nothing of the thread is changed: the checkpoint stays the last one written (the
database, checkpoints included, is unreachable anyway), so `podium resume THREAD` (or
`invoke(None, config)`) continues from there once the database is back, each recorded
effect once. The thread index is told `failed` when the database answers that one write.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from podium.governance.writers import WriterClaim
from podium.lifecycle import RunStatus
from podium.storage.faults import DatabaseUnavailable, is_database_fault

#: `reason` of the `run_finished` event of a run stopped by an unreachable database.
DATABASE_UNAVAILABLE = "database_unavailable"


@dataclass(frozen=True, slots=True)
class StreamShape:
    """How a run's stream shapes its chunks (as LangGraph's `stream` arguments say)."""

    modes: tuple[str, ...]
    as_list: bool
    subgraphs: bool
    v2: bool

    @classmethod
    def of(cls, stream_mode: Any, default: Any, kwargs: dict[str, Any]) -> StreamShape:
        mode = default if stream_mode is None else stream_mode
        as_list = not isinstance(mode, str)
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
        return cls(modes, as_list, bool(kwargs.get("subgraphs")), kwargs.get("version") == "v2")

    def root_values(self, chunk: Any) -> dict[str, Any] | None:
        """The state in `chunk` when it is a `values` chunk of the run's own graph."""
        if "values" not in self.modes:
            return None
        mode, namespace, payload = self._parts(chunk)
        if mode == "values" and not namespace and isinstance(payload, dict):
            return payload
        return None

    def _parts(self, chunk: Any) -> tuple[Any, Any, Any]:
        if self.v2:
            return chunk.get("type"), chunk.get("ns"), chunk.get("data")
        if self.subgraphs and self.as_list:
            namespace, mode, payload = chunk
            return mode, namespace, payload
        if self.as_list:
            return chunk[0], (), chunk[1]
        if self.subgraphs:
            return self.modes[0], chunk[0], chunk[1]
        return self.modes[0], (), chunk

    def chunk(self, mode: str, payload: Any) -> Any:
        """A chunk of the run's own graph in stream mode `mode`."""
        if self.v2:
            part = {"type": mode, "ns": (), "data": payload}
            return {**part, "interrupts": ()} if mode == "values" else part
        if self.subgraphs and self.as_list:
            return ((), mode, payload)
        if self.as_list:
            return (mode, payload)
        if self.subgraphs:
            return ((), payload)
        return payload


class Outcome:
    """What the entry saw of a run: the last state it streamed."""

    def __init__(self, shape: StreamShape, claim: WriterClaim) -> None:
        self.shape, self.claim = shape, claim
        self.latest: dict[str, Any] = {}

    def saw(self, chunk: Any) -> None:
        values = self.shape.root_values(chunk)
        if values is not None:
            self.latest = values

    def stopped(self, exc: Exception) -> DatabaseUnavailable:
        """The fault, named for the thread (a bare lost connection, which no retry
        wrapped, is described as an outage of the runtime's database)."""
        if isinstance(exc, DatabaseUnavailable):
            return exc.for_thread(self.claim.thread_id)
        url = getattr(getattr(self.claim.services.db, "url", None), "masked", "the database")
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        fault = DatabaseUnavailable(url, 0, reason, thread_id=self.claim.thread_id)
        fault.__cause__ = exc
        return fault

    def chunks(self, fault: DatabaseUnavailable) -> list[Any]:
        """The chunks that end the run `failed` (empty when no mode can carry it)."""
        shape, error = self.shape, str(fault)
        out = []
        if "custom" in shape.modes:
            event = {
                "event": "run_finished",
                "status": RunStatus.FAILED.value,
                "error": error,
                "reason": DATABASE_UNAVAILABLE,
                "at": time.time(),
            }
            out.append(shape.chunk("custom", event))
        if "values" in shape.modes:
            failed = {**self.latest, "status": RunStatus.FAILED.value, "error": error}
            out.append(shape.chunk("values", failed))
        return out

    def record(self, exc: Exception) -> None:
        """Tell the thread index the run failed, if the database takes that one write.

        Only after `DatabaseUnavailable`: the database is known down then, so the write
        is tried once. A bare lost connection would retry it for the whole window.
        """
        if not isinstance(exc, DatabaseUnavailable):
            return
        try:
            self.claim.services.threads.set_status(self.claim.thread_id, RunStatus.FAILED.value)
        except Exception as again:
            if not is_database_fault(again):
                raise


def failing_softly(outcome: Outcome, run: Callable[[], Iterator[Any]]) -> Iterator[Any]:
    """`run()`'s chunks; a database outage ends them with the run's failure (see the
    module docstring) instead of an exception."""
    ending: list[Any] = []
    try:
        with contextlib.closing(run()) as chunks:  # type: ignore[type-var]
            for chunk in chunks:
                outcome.saw(chunk)
                yield chunk
    except Exception as exc:
        if not is_database_fault(exc):
            raise
        fault = outcome.stopped(exc)
        outcome.record(exc)
        ending = outcome.chunks(fault)
        if not ending:
            raise fault from exc
    yield from ending


async def afailing_softly(
    outcome: Outcome, run: Callable[[], AsyncIterator[Any]]
) -> AsyncIterator[Any]:
    """`failing_softly` for async runs (the index write stays off the event loop)."""
    ending: list[Any] = []
    try:
        async with contextlib.aclosing(run()) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                outcome.saw(chunk)
                yield chunk
    except Exception as exc:
        if not is_database_fault(exc):
            raise
        fault = outcome.stopped(exc)
        await outcome.claim.services.run_sync(outcome.record, exc)
        ending = outcome.chunks(fault)
        if not ending:
            raise fault from exc
    for chunk in ending:
        yield chunk
