"""The in-memory buffer in front of the audit log: add events cheaply, write them in batches.

Re-exported by `podium.stores.audit.log`; import it from there.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Protocol

from podium.errors import AuditError
from podium.stores.audit.events import AuditEvent
from podium.stores.audit.write import Joined


class AuditLog(Protocol):
    """What the buffer writes to (`podium.stores.audit.log.AuditLog`, which imports this
    module)."""

    def write(self, events: Sequence[AuditEvent], also: Joined | None = None) -> None: ...


class AuditBuffer:
    """Collects events in memory and writes them in one batch per flush.

    Thread-safe. `add` flushes by itself once `max_size` events wait, except on a thread
    that runs an event loop: a write there would stall every run on the loop, so the
    events wait for the step's flush, which async nodes make off the loop. The runtime
    flushes at step boundaries and on close. A failed flush keeps its events (ahead of
    any added since) and re-raises, so nothing is silently dropped.
    """

    def __init__(self, log: AuditLog, *, max_size: int = 200) -> None:
        if max_size < 1:
            raise AuditError(f"max_size {max_size!r} must be at least 1")
        self._log, self._max_size = log, max_size
        self._pending: list[AuditEvent] = []
        self._lock = threading.Lock()  # guards _pending only; held briefly
        self._flushing = threading.Lock()  # one flush at a time, so batches stay in order

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def add(self, event: AuditEvent) -> None:
        """Queue one event; flushes when `max_size` events are waiting (not on an event
        loop's thread)."""
        with self._lock:
            self._pending.append(event)
            full = len(self._pending) >= self._max_size
        if full and not _on_event_loop():
            self.flush()

    def flush(self, also: Joined | None = None) -> bool:
        """Write everything added so far in one batch, with `also` (see `AuditLog.write`)
        in its transaction; False when nothing was waiting (and `also` was not written)."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return False
            try:
                self._log.write(batch, also)
            except BaseException:
                with self._lock:
                    self._pending[:0] = batch
                raise
            return True

    def __enter__(self) -> AuditBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()


def _on_event_loop() -> bool:
    """Whether this thread is running an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
