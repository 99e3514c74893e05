"""Services: podium's stores on one database, plus the clock and sleep the runtime uses.

A typed, frozen value built eagerly by `Services.open` (every table is set up then,
before any run, so no run pays for it or blocks an event loop with it). The composition
root (`podium.runtime`) builds one per runtime and binds it, with the governor, to every
graph it compiles.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, TypeVarTuple

from podium.errors import RateLimited
from podium.storage.database import Database
from podium.stores.approvals import Approvals
from podium.stores.audit import AuditLog
from podium.stores.breakers import CircuitBreakers
from podium.stores.budgets import Budgets, open_budgets
from podium.stores.dead_letters import DeadLetters
from podium.stores.effects import EffectLedger
from podium.stores.ledger import UsageLedger
from podium.stores.ratelimit import RateLimiter
from podium.stores.recorder import Recorder
from podium.stores.replies import MemoryReplies, ModelReplies
from podium.stores.run_slots import RunSlots
from podium.stores.threads import ThreadIndex
from podium.stores.writers import ThreadWriters, open_writers

#: Threads for database calls made from async runs. asyncio's default pool has only
#: cores + 4 threads, which many concurrent runs would queue on.
_OFFLOAD = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="podium-db")

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """The stores of one runtime database, and how the runtime waits.

    Attributes:
        db: The database.
        clock: Seconds since the epoch (injectable so tests never sleep).
        sleep: Blocking sleep used by retries in synchronous runs.
        asleep: Sleep used by retries in asynchronous runs.
        audit_key: HMAC key of the audit chain, or None for plain SHA-256.
        model_timeout: Seconds a model call may take when no policy says otherwise.
        rate_wait: Caps every rate limit's own wait bound (its `max_wait`, else its refill
            period `per`); None leaves the policy's bounds as they are.
        budget_wait: Most seconds a model call waits for other calls' budget holds to be
            settled or released (when that would make room) before it is refused.
        offload: Whether async code moves database calls off the event loop.
    """

    db: Database
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    asleep: Callable[[float], Awaitable[None]]
    audit_key: bytes | None
    model_timeout: float | None
    rate_wait: float | None
    budget_wait: float
    offload: bool
    threads: ThreadIndex
    approvals: Approvals
    ratelimiter: RateLimiter
    run_slots: RunSlots
    writers: ThreadWriters
    budgets: Budgets
    ledger: UsageLedger
    breakers: CircuitBreakers
    effects: EffectLedger
    audit: AuditLog
    dead_letters: DeadLetters
    recorder: Recorder
    replies: ModelReplies

    @classmethod
    def open(
        cls,
        db: Database,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        audit_key: bytes | None = None,
        model_timeout: float | None = None,
        rate_wait: float | None = None,
        budget_wait: float = 30.0,
        offload: bool | None = None,
    ) -> Services:
        """Create every store on `db` now.

        `offload` defaults to true on PostgreSQL, where a round trip would stall every
        run on the loop (SQLite calls take microseconds); a server whose loop serves many
        runs sets it.
        """
        audit = AuditLog(db, key=audit_key, clock=clock)
        ledger = UsageLedger(db, clock=clock)
        return cls(
            db=db,
            clock=clock,
            sleep=sleep,
            asleep=asleep,
            audit_key=audit_key,
            model_timeout=model_timeout,
            rate_wait=rate_wait,
            budget_wait=budget_wait,
            offload=offload if offload is not None else db.dialect == "postgres",
            threads=ThreadIndex(db),
            approvals=Approvals(db, clock=clock),
            ratelimiter=RateLimiter(db, clock=clock),
            run_slots=RunSlots(db, clock=clock),
            writers=open_writers(db),
            budgets=open_budgets(db, clock=clock),
            ledger=ledger,
            breakers=CircuitBreakers(db, clock=clock),
            effects=EffectLedger(db, clock=clock),
            audit=audit,
            dead_letters=DeadLetters(db, clock=clock),
            recorder=Recorder(audit, ledger),
            replies=(MemoryReplies if db.in_memory else ModelReplies)(db, ledger, clock=clock),
        )

    async def run_sync(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        """Call `fn(*args)` from async code, in a worker thread when `offload` says so."""
        if self.offload:
            context = contextvars.copy_context()
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(_OFFLOAD, functools.partial(context.run, fn, *args))
        return fn(*args)

    def flush(self) -> None:
        """Write buffered audit events and usage rows (called at the end of each step)."""
        self.recorder.flush()

    async def aacquire(self, tenant_id: str, limits: Any) -> None:
        """Book a turn in every rate limit, then wait for it without blocking the event loop.

        Raises:
            RateLimited: when a bucket's queue is longer than its wait bound.
        """
        decision = await self.run_sync(
            lambda: self.ratelimiter.reserve(tenant_id, limits, cap=self.rate_wait)
        )
        if not decision.allowed:
            raise RateLimited(tenant_id, decision.key or "?", decision.retry_after, decision.bound)
        if decision.wait > 0:
            await self.asleep(decision.wait)
