"""Budgets with reservations, so parallel workers cannot overspend together.

A budget scope is `(tenant_id, scope_key)` with a limit per unit, e.g.
`tenant_day:2026-11-21`, `run:<thread>:<round>`, `agent:<thread>:<round>:researcher`.
Before a call the caller reserves its estimate on every level at once (tenant-day, run,
agent...): the reservation succeeds only if each level has room for it, counting what
was spent and what other calls hold, so a child never spends more than its parent has
left. After the call it settles the reservation with the actual spend.

`podium_budget_ledger` has a row per (reservation, scope, unit), `reserved` until
settled, then `spent`. Reservations older than the TTL (their process died before
settling) are ignored and deleted. `podium_budget_spent` keeps each scope's settled
total, added to in the settling transaction, so checking a reservation reads one row
per level plus the live holds: its cost does not grow with the day's calls.

Under an async runtime on PostgreSQL, holds and settlements made at the same moment go to
the database together (`podium.stores.budgets.batch`). The in-memory runtime keeps its
budgets in process memory (`podium.stores.budgets.memory`, chosen by `open_budgets`).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from podium.errors import BudgetExceeded, ConfigurationError
from podium.storage.database import Cursor, Database
from podium.stores.budgets.batch import LoopBatches
from podium.stores.budgets.sql import (
    EPSILON,
    SCHEMA,
    Claim,
    Reservation,
    Statement,
    delete_sql,
    holds_pg_sql,
    insert_sql,
    purge_sql,
    refusal_of,
    settle_pg_ctes,
    settle_pg_sql,
    settle_update_sql,
    sums_from,
    sums_sql,
)

__all__ = ["SCHEMA", "BudgetExceeded", "Budgets", "Claim", "Reservation"]


UNITS = ("tokens", "usd")
#: Reservations older than this many seconds are treated as abandoned.
DEFAULT_TTL = 900.0
#: Seconds a refused reservation waits, by default, for other calls' holds to be settled
#: or released (only when their release would make room) before it is refused for good.
#: Governed model calls pass their own wait (`Services.budget_wait`, 30 s by default).
DEFAULT_HOLD_WAIT = 0.1
#: Seconds between clean-ups of a tenant's expired reservations (per process).
PURGE_EVERY = 60.0


class Budgets:
    """Spend and reservations per budget scope, in the runtime database.

    Args:
        db: podium's database; the table is created if missing.
        clock: Seconds since the epoch; injected by tests.
        reservation_ttl: Seconds after which an unsettled reservation is abandoned.
        hold_wait: Seconds a call refused only because of other calls' holds waits for
            them to settle or be released before it is refused.
    """

    hold_wait: float = DEFAULT_HOLD_WAIT

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], float] = time.time,
        reservation_ttl: float = DEFAULT_TTL,
        hold_wait: float = DEFAULT_HOLD_WAIT,
    ) -> None:
        self._db, self._clock, self._ttl = db, clock, reservation_ttl
        self.hold_wait = hold_wait
        self._purged: dict[str, float] = {}
        self._batches: LoopBatches | None = None
        db.ensure_schema("budgets", SCHEMA)

    def reserve(
        self, tenant_id: str, claims: Sequence[Claim], *, ref: str, wait: float | None = None
    ) -> Reservation:
        """Hold every claim, or none: each needs `spent + reserved + amount <= limit`.

        Refused only because of other calls' holds, whose release would make room, it looks
        again for up to `wait` seconds (None: the store's `hold_wait`).

        Raises:
            BudgetExceeded: (`podium.errors.BudgetExceeded`, re-exported here) for the
                first claim, in the order given, without room; besides its scope, unit,
                limit, spent and requested it carries `reserved`, what running calls hold.
            ConfigurationError: an unknown unit, a negative amount or a repeated level.
        """
        _validate(claims)
        if not claims:
            return Reservation(uuid.uuid4().hex, tenant_id, ref, (), self._clock())
        deadline = time.monotonic() + (self.hold_wait if wait is None else wait)
        for attempt in itertools.count(1):
            reservation, refusal = self._try_hold(tenant_id, claims, ref)
            if refusal is None:
                return reservation
            self._wait_or_raise(refusal, deadline)
            time.sleep(_pause(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _wait_or_raise(refusal: BudgetExceeded, deadline: float) -> None:
        """Raise `refusal` unless other calls' holds are in the way and their release would
        make room (they settle or step back in moments): then the caller looks again, until
        `deadline`."""
        hopeless = refusal.spent + refusal.requested > refusal.limit + EPSILON
        if refusal.reserved <= EPSILON or hopeless or time.monotonic() >= deadline:
            raise refusal

    def _try_hold(
        self, tenant_id: str, claims: Sequence[Claim], ref: str
    ) -> tuple[Reservation, BudgetExceeded | None]:
        # Hold first, then look: the hold is committed before the sums are read, so of two
        # concurrent reservations the one that reads last sees the other's hold. They cannot
        # both pass when only one fits (at worst both step back and try again), and no lock
        # serialises the tenant's concurrent calls.
        now = self._clock()
        reservation = Reservation(uuid.uuid4().hex, tenant_id, ref, tuple(claims), now)
        self._purge_now_and_then(tenant_id, now)
        if self._db.dialect == "sqlite":
            # SQLite runs one writing transaction at a time: nothing can slip in between
            # this hold and the sums read in the same transaction.

            def hold(cur: Cursor) -> dict[tuple[str, str], tuple[float, float]]:
                self._insert(cur, reservation, "reserved", [c.amount for c in claims], now)
                return self._sums_of(cur, tenant_id, claims, now)

            sums = self._db.transact(hold)
        else:
            # Two statements, each committed on its own (one round trip each).
            self._db.execute(*holds_pg_sql([reservation]))
            sums = self._sums_of(self._db, tenant_id, claims, now)
        refusal = refusal_of(tenant_id, claims, sums)
        if refusal is not None:
            self.release(reservation)
        return reservation, refusal

    # -- on the event loop (PostgreSQL under an async runtime) ------------------------

    @property
    def runs_on_loop(self) -> bool:
        """Whether `areserve`, `asettle` and `arelease` talk to the database from the event
        loop (PostgreSQL with an async pool); otherwise call the sync methods off the loop."""
        return getattr(self._db, "async_pool", None) is not None

    async def areserve(
        self, tenant_id: str, claims: Sequence[Claim], *, ref: str, wait: float | None = None
    ) -> Reservation:
        """`reserve` without a worker thread (see `runs_on_loop`).

        Holds made at the same moment go to the database together
        (`podium.stores.budgets.batch`), decided as if one after another.
        """
        _validate(claims)
        if not claims:
            return Reservation(uuid.uuid4().hex, tenant_id, ref, (), self._clock())
        deadline = time.monotonic() + (self.hold_wait if wait is None else wait)
        for attempt in itertools.count(1):
            reservation = Reservation(
                uuid.uuid4().hex, tenant_id, ref, tuple(claims), self._clock()
            )
            batches = self.loop_batches()
            try:
                await batches.holds.submit(reservation)
            except BudgetExceeded as refusal:
                # As in `reserve`: refused only because of other calls' holds, wait.
                self._wait_or_raise(refusal, deadline)
                await asyncio.sleep(_pause(attempt))
                continue
            batches.opened(reservation)
            return reservation
        raise AssertionError("unreachable")  # pragma: no cover

    async def asettle(self, reservation: Reservation, actual: Mapping[str, float]) -> None:
        """`settle` without a worker thread in the common case (see `runs_on_loop`);
        settlements made at the same moment go to the database in one statement."""
        if reservation.claims:
            # Amounts are checked here, so a bad one fails this call, not its batch.
            spend = {c.unit: float(actual.get(c.unit, 0.0)) for c in reservation.claims}
            batches = self.loop_batches()
            batches.closed(reservation)
            await batches.settles.submit((reservation, spend))

    def loop_batches(self) -> LoopBatches:
        """The hold and settle batches of the running event loop (see `runs_on_loop`)."""
        batches = self._batches
        if batches is None or batches.holds.loop is not asyncio.get_running_loop():
            batches = self._batches = LoopBatches(
                self._db,
                purge_due=self._purge_due,
                ttl=self._ttl,
                settle_gone=self._settle_gone,
                clock=self._clock,
            )
        return batches

    async def arelease(self, reservation: Reservation) -> None:
        """`release` without a worker thread (see `runs_on_loop`)."""
        self.loop_batches().closed(reservation)
        db: Any = self._db
        await db.aexecute(*delete_sql(reservation, " AND state = 'reserved'"))

    def settle(self, reservation: Reservation, actual: Mapping[str, float]) -> None:
        """Replace the reservation with what was really spent, on every level it claimed.

        The actual spend is recorded even when it exceeds the reservation or the
        reservation has expired, because the spend happened. Units the reservation did
        not claim are ignored; claimed units missing from `actual` settle at 0. Settling
        twice records the spend once.
        """
        now = self._clock()
        spent = [float(actual.get(c.unit, 0.0)) for c in reservation.claims]
        if not reservation.claims or self._settle_held(reservation, actual, now):
            return
        self._settle_gone(reservation, spent, now)

    def settlement(
        self, reservation: Reservation, actual: Mapping[str, float]
    ) -> Settlement | None:
        """`settle`, for a caller to write with its own statement (a task's recorded reply
        and its bill, so a model call's records cost one round trip); None when the caller
        must `settle` instead (nothing held, or budgets kept in process memory)."""
        if not reservation.claims:
            return None
        return Settlement(self, reservation, dict(actual), self._clock())

    def _settle_gone(self, reservation: Reservation, spent: Sequence[float], now: float) -> None:
        """Settle a reservation whose hold is gone: settled already (nothing to do), or
        purged as abandoned (the spend still counts)."""

        def settle(cur: Cursor) -> None:
            done = cur.query(
                "SELECT 1 AS done FROM podium_budget_ledger WHERE reservation_id = ? "
                "AND tenant_id = ? AND state = 'spent'",
                (reservation.reservation_id, reservation.tenant_id),
            )
            if done:
                return
            self._delete(cur, reservation, "")
            self._insert(cur, reservation, "spent", spent, now)
            # Last, so the totals' rows (shared by the tenant's calls) stay locked briefly.
            self._add_to_totals(cur, reservation, spent)

        # Only a second settle of the same reservation can race this one.
        self._db.transact(settle, lock=f"budget-settle:{reservation.reservation_id}")

    def _settle_held(
        self, reservation: Reservation, actual: Mapping[str, float], now: float
    ) -> bool:
        """Turn the live hold into spend and add it to the totals, atomically; False when
        no hold was left to turn (the common path: one statement on PostgreSQL)."""
        if self._db.dialect == "postgres":
            return bool(self._db.query(*settle_pg_sql(reservation, actual, now)))

        return self._db.transact(Settlement(self, reservation, dict(actual), now).turn)

    def release(self, reservation: Reservation) -> None:
        """Drop a reservation that was not used (the call failed before spending)."""
        self._delete(self._db, reservation, " AND state = 'reserved'")

    def spent(self, tenant_id: str, scope_key: str, unit: str) -> float:
        """What was settled in a scope, in `unit`."""
        return self._sums(self._db, tenant_id, scope_key, unit, self._clock())[0]

    def reserved(self, tenant_id: str, scope_key: str, unit: str) -> float:
        """What running calls hold in a scope, in `unit` (expired reservations excluded)."""
        return self._sums(self._db, tenant_id, scope_key, unit, self._clock())[1]

    def remaining(self, tenant_id: str, scope_key: str, unit: str, limit: float) -> float:
        """Room left under `limit` after spend and live reservations (never below 0)."""
        spent, held = self._sums(self._db, tenant_id, scope_key, unit, self._clock())
        return max(0.0, limit - spent - held)

    def purge_stale(self, tenant_id: str | None = None) -> int:
        """Delete expired reservations (of one tenant, or of all for an operator).

        Returns:
            How many reservations were removed.
        """
        cutoff = self._clock() - self._ttl
        where = "state = 'reserved' AND created_at < ?"
        params: tuple[object, ...] = (cutoff,)
        if tenant_id is not None:
            where, params = f"{where} AND tenant_id = ?", (cutoff, tenant_id)

        def purge(cur: Cursor) -> int:
            rows = cur.query(
                f"SELECT COUNT(DISTINCT reservation_id) AS n FROM podium_budget_ledger "
                f"WHERE {where}",
                params,
            )
            cur.execute(f"DELETE FROM podium_budget_ledger WHERE {where}", params)
            return int(rows[0]["n"])

        return self._db.transact(purge)

    # -- helpers --------------------------------------------------------------------

    def _purge_due(self, tenant_id: str, now: float) -> bool:
        """Whether to delete the tenant's expired reservations now: at most once a minute
        per process (sums skip them anyway; this only keeps the table small)."""
        if now - self._purged.get(tenant_id, float("-inf")) < PURGE_EVERY:
            return False
        self._purged[tenant_id] = now
        return True

    def _purge_now_and_then(self, tenant_id: str, now: float) -> None:
        if self._purge_due(tenant_id, now):
            self._db.execute(*purge_sql(tenant_id, now - self._ttl))

    def _sums_of(
        self, cur: Cursor, tenant_id: str, claims: Sequence[Claim], now: float
    ) -> dict[tuple[str, str], tuple[float, float]]:
        return sums_from(cur.query(*sums_sql(tenant_id, claims, now - self._ttl)))

    def _sums(
        self, cur: Cursor, tenant_id: str, scope_key: str, unit: str, now: float
    ) -> tuple[float, float]:
        claim = Claim(scope_key, unit, 0.0, 0.0)
        return self._sums_of(cur, tenant_id, [claim], now).get((scope_key, unit), (0.0, 0.0))

    def _add_to_totals(self, cur: Cursor, reservation: Reservation, spent: Sequence[float]) -> None:
        self._upsert_totals(
            cur,
            [
                (reservation.tenant_id, claim.scope_key, claim.unit, amount)
                for claim, amount in zip(reservation.claims, spent, strict=True)
            ],
        )

    def _upsert_totals(self, cur: Cursor, rows: Sequence[tuple[str, str, str, float]]) -> None:
        # Sorted: concurrent settlements lock the shared rows in one order (no deadlock).
        rows = sorted(rows)
        if not rows:
            return
        marks = ", ".join("(?, ?, ?, ?)" for _ in rows)
        cur.execute(
            f"INSERT INTO podium_budget_spent (tenant_id, scope_key, unit, amount) "
            f"VALUES {marks} ON CONFLICT (tenant_id, scope_key, unit) "
            "DO UPDATE SET amount = podium_budget_spent.amount + excluded.amount",
            [value for row in rows for value in row],
        )

    def _insert(
        self,
        cur: Cursor,
        reservation: Reservation,
        state: str,
        amounts: Sequence[float],
        now: float,
    ) -> None:
        if reservation.claims:
            cur.execute(*insert_sql(reservation, state, amounts, now))

    def _delete(self, cur: Cursor, reservation: Reservation, extra: str) -> None:
        cur.execute(*delete_sql(reservation, extra))


@dataclass(frozen=True, slots=True)
class Settlement:
    """A reservation's settlement, written inside another statement or transaction: on
    PostgreSQL as common table expressions of the caller's statement (`ctes`), on SQLite
    in the caller's transaction (`turn`); then `finish` with whether the hold was turned
    (a hold that was gone is settled as `settle` does, after the caller's commit)."""

    budgets: Budgets
    reservation: Reservation
    actual: dict[str, float]
    now: float

    def ctes(self, name: str = "settled") -> Statement:
        """`name AS (...), name_totals AS (...)`, and their parameters; `name` holds a
        row per level turned."""
        return settle_pg_ctes(self.reservation, self.actual, self.now, name)

    def turn(self, cur: Cursor) -> bool:
        """Turn the live hold into spend within `cur`'s transaction; False when it was gone."""
        rows = cur.query(*settle_update_sql(self.reservation, self.actual, self.now))
        if rows:
            self.budgets._upsert_totals(
                cur, [(r["tenant_id"], r["scope_key"], r["unit"], r["amount"]) for r in rows]
            )
        return bool(rows)

    def apply(self) -> None:
        """Settle on its own (`Budgets.settle`), when there is nothing to write it with."""
        self.budgets.settle(self.reservation, self.actual)

    def finish(self, turned: bool) -> None:
        """After the caller's commit: settle a hold that was gone (settled already, or
        purged as abandoned: the spend still counts)."""
        if not turned:
            spent = [float(self.actual.get(c.unit, 0.0)) for c in self.reservation.claims]
            self.budgets._settle_gone(self.reservation, spent, self.now)


def _pause(attempt: int) -> float:
    """Seconds before looking again for room: a few ms at first, up to a quarter second."""
    return min(0.25, 0.002 * 2.0 ** min(attempt, 8)) * random.uniform(0.5, 1.0)


def _validate(claims: Sequence[Claim]) -> None:
    seen: set[tuple[str, str]] = set()
    for claim in claims:
        if claim.unit not in UNITS:
            raise ConfigurationError(
                f"unknown budget unit {claim.unit!r} for scope {claim.scope_key!r}; "
                f"use one of: {', '.join(UNITS)}"
            )
        if not claim.amount >= 0 or not claim.limit >= 0:  # also refuses NaN
            raise ConfigurationError(
                f"budget claim on {claim.scope_key!r} has amount {claim.amount!r} and limit "
                f"{claim.limit!r}; both must be 0 or more"
            )
        if (claim.scope_key, claim.unit) in seen:
            raise ConfigurationError(
                f"budget {claim.scope_key!r} ({claim.unit}) claimed twice in one reservation; "
                "claim each level once"
            )
        seen.add((claim.scope_key, claim.unit))
