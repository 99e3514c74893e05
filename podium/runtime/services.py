"""Services: podium's stores on one database, plus the clock and sleep the runtime uses.

A graph compiled by `rt.compile` finds its runtime's services in the run config. A graph
compiled without a runtime (plain `graph.compile()`) gets process-local services on an
in-memory database, so policies, budgets and recovery still apply.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import Any

from langchain_core.runnables import RunnableConfig

from podium.runtime.db import Database, SqliteDatabase

RUNTIME_KEY = "__podium_runtime"

#: Threads for database calls made from async runs. asyncio's default pool has only
#: cores + 4 threads, which many concurrent runs would queue on.
_OFFLOAD = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="podium-db")


class Services:
    """The stores of one runtime database, created on first use.

    Attributes:
        db: The database.
        clock: Seconds since the epoch (injectable so tests never sleep).
        sleep: Blocking sleep used by retries in synchronous runs.
        asleep: Sleep used by retries in asynchronous runs.
        audit_key: HMAC key of the audit chain, or None for plain SHA-256.
    """

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        audit_key: bytes | None = None,
        model_timeout: float | None = None,
        rate_wait: float = 30.0,
        offload: bool | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.sleep = sleep
        self.asleep = asleep
        self.audit_key = audit_key
        self.model_timeout = model_timeout
        self.rate_wait = rate_wait
        self._offload = offload

    @cached_property
    def governor(self):
        from podium.runtime.governor import Governor

        return Governor(self)

    @cached_property
    def recorder(self):
        from podium.runtime.events import Recorder

        return Recorder(self.audit, self.ledger)

    @property
    def offload(self) -> bool:
        """Whether async code moves database calls off the event loop: always when asked
        (a server's loop serves many runs), else on PostgreSQL, where a round trip would
        stall every run on the loop (SQLite calls take microseconds)."""
        if self._offload is not None:
            return self._offload
        return self.db.dialect == "postgres"

    async def run_sync(self, fn: Any, *args: Any) -> Any:
        """Call `fn(*args)` from async code, in a worker thread when `offload` says so."""
        if self.offload:
            context = contextvars.copy_context()
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(_OFFLOAD, functools.partial(context.run, fn, *args))
        return fn(*args)

    def open_stores(self) -> None:
        """Create every store now (their tables are set up once, before any run), so no
        run pays for it, or blocks an event loop with it, on first use."""
        for name in (
            "threads",
            "approvals",
            "dead_letters",
            "ratelimiter",
            "budgets",
            "ledger",
            "breakers",
            "effects",
            "audit",
            "recorder",
            "governor",
        ):
            getattr(self, name)

    def flush(self) -> None:
        """Write buffered audit events and usage rows (called at the end of each step)."""
        if "recorder" in self.__dict__:
            self.recorder.flush()

    async def aacquire(self, tenant_id: str, limits: Any) -> None:
        """Wait (without blocking the event loop) until every rate limit has room."""
        from podium.runtime.ratelimit import RateLimited

        waited = 0.0
        while True:
            decision = await self.run_sync(lambda: self.ratelimiter.try_acquire(tenant_id, limits))
            if decision.allowed:
                return
            if waited + decision.retry_after > self.rate_wait:
                raise RateLimited(
                    tenant_id, decision.key or "?", decision.retry_after, self.rate_wait, waited
                )

            await self.asleep(decision.retry_after)
            waited += decision.retry_after

    @cached_property
    def threads(self):
        from podium.runtime.threads import ThreadIndex

        return ThreadIndex(self.db)

    @cached_property
    def approvals(self):
        from podium.runtime.approvals import Approvals

        return Approvals(self.db, clock=self.clock)

    @cached_property
    def ratelimiter(self):
        from podium.runtime.ratelimit import RateLimiter

        return RateLimiter(self.db, clock=self.clock)

    @cached_property
    def budgets(self):
        from podium.runtime.budgets import open_budgets

        return open_budgets(self.db, clock=self.clock)

    @cached_property
    def ledger(self):
        from podium.runtime.ledger import UsageLedger

        return UsageLedger(self.db, clock=self.clock)

    @cached_property
    def breakers(self):
        from podium.runtime.breakers import CircuitBreakers

        return CircuitBreakers(self.db, clock=self.clock)

    @cached_property
    def effects(self):
        from podium.runtime.effects import EffectLedger

        return EffectLedger(self.db, clock=self.clock)

    @cached_property
    def audit(self):
        from podium.runtime.audit import AuditLog

        return AuditLog(self.db, key=self.audit_key, clock=self.clock)

    @cached_property
    def dead_letters(self):
        from podium.runtime.dead_letters import DeadLetters

        return DeadLetters(self.db, clock=self.clock)


_default: Services | None = None
_default_lock = threading.Lock()


def default_services() -> Services:
    """Process-local services on an in-memory database (graphs compiled without a runtime)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Services(SqliteDatabase(":memory:"))
        return _default


def services_for(config: RunnableConfig | None) -> Services:
    """The services of the runtime that compiled the running graph (or the default ones)."""
    runtime: Any = ((config or {}).get("configurable") or {}).get(RUNTIME_KEY)
    return runtime.services if runtime is not None else default_services()
