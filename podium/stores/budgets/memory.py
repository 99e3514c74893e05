"""Budgets of the in-memory runtime (`memory://`), kept in this process's memory.

The rules are `Budgets`' own and the same tests check both: every level of a claim must
have room for spend plus live holds plus the amount; holds older than the TTL are
abandoned; a settlement records the actual spend even past the limit or after its hold
was purged, and settling twice records once. What differs is where holds and totals
live. An in-memory runtime's data dies with its process, so no other process can hold
budget beside it: a check and its hold are one step under a lock, not SQL statements on
every model call (as LangGraph's `InMemorySaver` keeps checkpoints in dicts).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence

from podium.stores.budgets.sql import Claim, Reservation, refusal_of
from podium.stores.budgets.store import DEFAULT_HOLD_WAIT, DEFAULT_TTL, BudgetExceeded, Budgets

Level = tuple[str, str, str]  # (tenant_id, scope_key, unit)


class MemoryBudgets(Budgets):
    """`Budgets` without a database: see the module docstring.

    Args:
        clock: Seconds since the epoch; injected by tests.
        reservation_ttl: Seconds after which an unsettled reservation is abandoned.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        reservation_ttl: float = DEFAULT_TTL,
        hold_wait: float = DEFAULT_HOLD_WAIT,
    ) -> None:
        self._clock, self._ttl, self.hold_wait = clock, reservation_ttl, hold_wait
        self._purged: dict[str, float] = {}
        self._lock = threading.Lock()
        self._holds: dict[str, Reservation] = {}  # live holds by reservation id
        self._held: dict[Level, dict[str, float]] = {}  # level -> {reservation id: amount}
        self._spent: dict[Level, float] = {}
        # Settled reservations, so a second settlement records nothing (kept, as the
        # tables keep their spent rows).
        self._settled: set[str] = set()

    @property
    def runs_on_loop(self) -> bool:
        return False

    def _try_hold(
        self, tenant_id: str, claims: Sequence[Claim], ref: str
    ) -> tuple[Reservation, BudgetExceeded | None]:
        now = self._clock()
        reservation = Reservation(uuid.uuid4().hex, tenant_id, ref, tuple(claims), now)
        self._purge_now_and_then(tenant_id, now)
        with self._lock:
            sums = {}
            for claim in claims:
                spent, held = self._level(tenant_id, claim.scope_key, claim.unit, now)
                sums[(claim.scope_key, claim.unit)] = (spent, held + claim.amount)
            refusal = refusal_of(tenant_id, claims, sums)
            if refusal is None:
                self._holds[reservation.reservation_id] = reservation
                for claim in claims:
                    level = (tenant_id, claim.scope_key, claim.unit)
                    self._held.setdefault(level, {})[reservation.reservation_id] = claim.amount
        return reservation, refusal

    def _settle_held(
        self, reservation: Reservation, actual: Mapping[str, float], now: float
    ) -> bool:
        with self._lock:
            if self._drop_hold(reservation.reservation_id) is None:
                return False
            self._add_spend(
                reservation, [float(actual.get(c.unit, 0.0)) for c in reservation.claims]
            )
            self._settled.add(reservation.reservation_id)
        return True

    def _settle_gone(self, reservation: Reservation, spent: Sequence[float], now: float) -> None:
        with self._lock:
            if reservation.reservation_id in self._settled:
                return
            self._add_spend(reservation, spent)
            self._settled.add(reservation.reservation_id)

    def settlement(self, reservation: Reservation, actual: Mapping[str, float]) -> None:
        return None  # nothing to write: `settle` is a change in memory

    def release(self, reservation: Reservation) -> None:
        with self._lock:
            self._drop_hold(reservation.reservation_id)

    def spent(self, tenant_id: str, scope_key: str, unit: str) -> float:
        with self._lock:
            return self._spent.get((tenant_id, scope_key, unit), 0.0)

    def reserved(self, tenant_id: str, scope_key: str, unit: str) -> float:
        with self._lock:
            return self._level(tenant_id, scope_key, unit, self._clock())[1]

    def remaining(self, tenant_id: str, scope_key: str, unit: str, limit: float) -> float:
        with self._lock:
            spent, held = self._level(tenant_id, scope_key, unit, self._clock())
        return max(0.0, limit - spent - held)

    def purge_stale(self, tenant_id: str | None = None) -> int:
        now = self._clock()
        cutoff = now - self._ttl
        with self._lock:
            stale = [
                rid
                for rid, r in self._holds.items()
                if r.created_at < cutoff and tenant_id in (None, r.tenant_id)
            ]
            for rid in stale:
                self._drop_hold(rid)
        return len(stale)

    def _purge_now_and_then(self, tenant_id: str, now: float) -> None:
        if self._purge_due(tenant_id, now):
            self.purge_stale(tenant_id)

    # -- under the lock -----------------------------------------------------------------

    def _level(self, tenant_id: str, scope_key: str, unit: str, now: float) -> tuple[float, float]:
        """(spent, live holds) of one level; holds past the TTL are not counted."""
        cutoff = now - self._ttl
        holds = self._held.get((tenant_id, scope_key, unit), {})
        held = sum(a for rid, a in holds.items() if self._holds[rid].created_at >= cutoff)
        return self._spent.get((tenant_id, scope_key, unit), 0.0), held

    def _drop_hold(self, reservation_id: str) -> Reservation | None:
        reservation = self._holds.pop(reservation_id, None)
        if reservation is not None:
            for claim in reservation.claims:
                level = (reservation.tenant_id, claim.scope_key, claim.unit)
                holds = self._held.get(level, {})
                holds.pop(reservation_id, None)
                if not holds:
                    self._held.pop(level, None)
        return reservation

    def _add_spend(self, reservation: Reservation, spent: Sequence[float]) -> None:
        for claim, amount in zip(reservation.claims, spent, strict=True):
            level = (reservation.tenant_id, claim.scope_key, claim.unit)
            self._spent[level] = self._spent.get(level, 0.0) + amount

    # An async runtime on memory calls the sync methods from a worker thread
    # (`runs_on_loop` is False); these serve direct callers the same way.
    async def areserve(
        self, tenant_id: str, claims: Sequence[Claim], *, ref: str, wait: float | None = None
    ) -> Reservation:
        return await asyncio.to_thread(self.reserve, tenant_id, claims, ref=ref, wait=wait)

    async def asettle(self, reservation: Reservation, actual: Mapping[str, float]) -> None:
        self.settle(reservation, actual)

    async def arelease(self, reservation: Reservation) -> None:
        self.release(reservation)
