"""Group commit for the budget holds and settlements made from the event loop.

Under an async runtime on PostgreSQL many workflows hold and settle budget at the same
moments, and each statement costs the loop more CPU than the rest of podium's work on a
call. So calls that arrive while a batch is at the database wait for it, then go
together: one INSERT holds every claim of the batch, one query per tenant reads the sums,
one statement settles every reservation. Under light load a batch is a single call and
costs what the single statements did; under load the statements per call fall.

A batch of holds is decided in the order its calls arrived, as if one after another:
each hold counts what other calls hold (their holds were committed before the sums were
read, as in the single-call protocol of `Budgets.reserve`) and the holds of the batch it
accepted before, never a later one. Refused holds are deleted before their calls resume.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from podium.errors import BudgetExceeded
from podium.stores.budgets.sql import (
    Reservation,
    holds_pg_sql,
    purge_sql,
    refusal_of,
    release_many_pg_sql,
    settle_many_pg_sql,
    settle_pg_sql,
    sums_from,
    sums_pg_sql,
)

log = logging.getLogger(__name__)

#: Seconds a batch waits for more calls per hold open on the loop (see `LoopBatches`):
#: the more calls are in flight, the sooner others arrive and the more a wait saves.
COMMIT_DELAY = 0.0002
#: The longest a batch waits, whatever the number of open holds.
MAX_COMMIT_DELAY = 0.01
#: Open holds on the loop from which batches wait.
COMMIT_SIBLINGS = 4

Item = TypeVar("Item")
Result = TypeVar("Result")
Settlement = tuple[Reservation, Mapping[str, float]]


class GroupCommit(Generic[Item, Result]):
    """Runs what one event loop submits in batches, one batch in flight at a time.

    Args:
        run: Runs a batch; returns one result (or exception) per item, in order.
        abandoned: Called with the (item, result) pairs whose callers were cancelled
            while their batch ran, to undo what the batch did for them.
        delay: Seconds to wait for more items before a batch starts (0: none).
    """

    def __init__(
        self,
        run: Callable[[list[Item]], Awaitable[list[Result | BaseException]]],
        abandoned: Callable[[list[tuple[Item, Result]]], Awaitable[None]] | None = None,
        delay: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self._run, self._abandoned, self._delay = run, abandoned, delay
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._undoing: set[asyncio.Task[None]] = set()
        self.loop = asyncio.get_running_loop()
        self.batches = self.largest = 0  # batches run, most items in one (tests read them)

    async def submit(self, item: Item) -> Result:
        """The item's result once its batch ran; an item's error is raised here."""
        future: asyncio.Future[Result] = self.loop.create_future()
        self._queue.append((item, future))
        if self._drainer is None:
            self._drainer = self.loop.create_task(self._drain())
        try:
            return await future
        except asyncio.CancelledError:
            # Cancelled after the batch answered but before this caller resumed: nobody
            # will use the result, so undo it as for a caller cancelled mid-batch.
            if future.done() and not future.cancelled() and future.exception() is None:
                self._undo([(item, future.result())])
            raise

    def _undo(self, pairs: list[tuple[Item, Result]]) -> None:
        if self._abandoned is not None:
            task = self.loop.create_task(self._undo_now(pairs))
            self._undoing.add(task)
            task.add_done_callback(self._undoing.discard)

    async def _undo_now(self, pairs: list[tuple[Item, Result]]) -> None:
        assert self._abandoned is not None
        try:
            await self._abandoned(pairs)
        except Exception:  # the holds expire after the TTL anyway
            log.warning("could not release %d abandoned budget holds", len(pairs), exc_info=True)

    async def _drain(self) -> None:
        try:
            while self._queue:
                if wait := self._delay():
                    await asyncio.sleep(wait)
                batch, self._queue = self._queue, []
                await self._run_batch(batch)
        finally:
            self._drainer = None
            # Left only if the drainer itself was cancelled (its loop is closing).
            queued, self._queue = self._queue, []
            for _, future in queued:
                future.cancel()

    async def _run_batch(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        self.batches += 1
        self.largest = max(self.largest, len(batch))
        try:
            results = await self._run([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        left: list[tuple[Item, Result]] = []
        for (item, future), result in zip(batch, results, strict=True):
            if future.cancelled():
                if not isinstance(result, BaseException):
                    left.append((item, result))
            elif isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        if left and self._abandoned is not None:
            await self._undo_now(left)


class LoopBatches:
    """The hold and settle batches of `Budgets` on one event loop (PostgreSQL, async pool).

    Args:
        db: podium's PostgreSQL database with an async pool.
        purge_due: Whether a tenant's expired holds are due for deletion (`Budgets`).
        ttl: Seconds after which a hold is abandoned.
        settle_gone: Settles a reservation whose hold is gone (`Budgets._settle_gone`),
            called in a worker thread with (reservation, spent per claim, now).
        clock: Seconds since the epoch.

    Like PostgreSQL's `commit_delay` with `commit_siblings`, a batch waits for company
    only while at least `COMMIT_SIBLINGS` holds of this loop are open (their calls are
    running and will settle, then hold again, soon): a lone workflow's calls never wait.
    The wait is `COMMIT_DELAY` per open hold, at most `MAX_COMMIT_DELAY`: with 50 calls in
    flight a batch waits 10 ms and takes a few calls at once, which saves the loop more
    CPU than the wait costs a call (model calls take hundreds of milliseconds).
    """

    def __init__(
        self,
        db: Any,
        *,
        purge_due: Callable[[str, float], bool],
        ttl: float,
        settle_gone: Callable[[Reservation, list[float], float], None],
        clock: Callable[[], float],
    ) -> None:
        self._db, self._purge_due, self._ttl = db, purge_due, ttl
        self._settle_gone, self._clock = settle_gone, clock
        # Open holds (accepted, not yet settled or released) by id, with when they opened.
        self._open: dict[str, float] = {}
        self._pruned = time.monotonic()
        self.holds: GroupCommit[Reservation, None] = GroupCommit(
            self._hold, self._release_abandoned, self.commit_delay
        )
        self.settles: GroupCommit[Settlement, None] = GroupCommit(
            self._settle, delay=self.commit_delay
        )

    def opened(self, reservation: Reservation) -> None:
        self._open[reservation.reservation_id] = time.monotonic()

    def closed(self, reservation: Reservation) -> None:
        self._open.pop(reservation.reservation_id, None)

    def commit_delay(self) -> float:
        """`COMMIT_DELAY` per open hold (up to `MAX_COMMIT_DELAY`) while enough holds are
        open, else 0."""
        if len(self._open) < COMMIT_SIBLINGS:
            return 0.0
        now = time.monotonic()
        if now - self._pruned > 1.0:
            # A hold whose call never settled (cancelled mid-call) stops counting after
            # the TTL, when its row is abandoned too.
            self._pruned = now
            self._open = {k: t for k, t in self._open.items() if now - t < self._ttl}
        if len(self._open) < COMMIT_SIBLINGS:
            return 0.0
        return min(MAX_COMMIT_DELAY, COMMIT_DELAY * len(self._open))

    async def _hold(self, holds: list[Reservation]) -> list[BaseException | None]:
        """None for each hold accepted, its `BudgetExceeded` for each refused."""
        now = self._clock()
        tenants: dict[str, list[int]] = defaultdict(list)
        for index, hold in enumerate(holds):
            tenants[hold.tenant_id].append(index)
        for tenant in tenants:
            if self._purge_due(tenant, now):
                await self._db.aexecute(*purge_sql(tenant, now - self._ttl))
        # Hold first, then look: every hold of the batch is committed before the sums
        # are read, so a concurrent call that reads later sees them all.
        await self._db.aexecute(*holds_pg_sql(holds))
        try:
            decisions = await self._decide(holds, tenants, now)
            refused = [hold for hold, d in zip(holds, decisions, strict=True) if d is not None]
            if refused:
                await self._db.aexecute(*release_many_pg_sql(refused))
        except BaseException:
            # No caller learns of these holds: take them back (the TTL is the last resort).
            try:
                await asyncio.shield(self._db.aexecute(*release_many_pg_sql(holds)))
            except Exception:
                log.warning("could not release %d budget holds", len(holds), exc_info=True)
            raise
        return list(decisions)

    async def _decide(
        self, holds: list[Reservation], tenants: dict[str, list[int]], now: float
    ) -> list[BudgetExceeded | None]:
        decisions: list[BudgetExceeded | None] = [None] * len(holds)
        for tenant, indexes in tenants.items():
            group = [holds[i] for i in indexes]
            claims = [claim for hold in group for claim in hold.claims]
            rows = await self._db.aquery(*sums_pg_sql(tenant, claims, now - self._ttl))
            decided = decide_in_order(group, sums_from(rows), cutoff=now - self._ttl)
            for index, decision in zip(indexes, decided, strict=True):
                decisions[index] = decision
        return decisions

    async def _release_abandoned(self, pairs: list[tuple[Reservation, None]]) -> None:
        # Only accepted holds get here: a refused one is an error result, already deleted.
        await self._db.aexecute(*release_many_pg_sql([hold for hold, _ in pairs]))

    async def _settle(self, settlements: list[Settlement]) -> list[BaseException | None]:
        """Settle the batch in one statement; if that fails, each on its own, so one bad
        settlement fails only its caller."""
        now = self._clock()
        first: dict[str, Settlement] = {}
        for reservation, actual in settlements:  # a reservation settled twice: the first
            first.setdefault(reservation.reservation_id, (reservation, actual))
        try:
            rows = await self._db.aquery(*settle_many_pg_sql(list(first.values()), now))
        except Exception:
            if len(first) == 1:
                raise
            log.warning("settling %d reservations together failed; one by one", len(first))
            outcome = {rid: await self._settle_one(*pair, now) for rid, pair in first.items()}
        else:
            settled = {row["reservation_id"] for row in rows}
            outcome = {
                rid: None if rid in settled else await self._settle_gone_safely(*pair, now)
                for rid, pair in first.items()
            }
        return [outcome[r.reservation_id] for r, _ in settlements]

    async def _settle_one(
        self, reservation: Reservation, actual: Mapping[str, float], now: float
    ) -> BaseException | None:
        try:
            if await self._db.aquery(*settle_pg_sql(reservation, actual, now)):
                return None
        except Exception as exc:
            return exc
        return await self._settle_gone_safely(reservation, actual, now)

    async def _settle_gone_safely(
        self, reservation: Reservation, actual: Mapping[str, float], now: float
    ) -> BaseException | None:
        spent = [float(actual.get(c.unit, 0.0)) for c in reservation.claims]
        try:
            await asyncio.to_thread(self._settle_gone, reservation, spent, now)
        except Exception as exc:
            return exc
        return None


def decide_in_order(
    holds: Sequence[Reservation],
    sums: Mapping[tuple[str, str], tuple[float, float]],
    *,
    cutoff: float = float("-inf"),
) -> list[BudgetExceeded | None]:
    """Accept or refuse each hold of one tenant's batch, in order.

    `sums` are (spent, held) per level as read after the batch was held, so `held`
    includes every hold of the batch; each hold is checked against the others' holds plus
    the batch's holds accepted before it. Holds created before `cutoff` (expired, so not
    in `held`) are not taken out.
    """
    batch: defaultdict[tuple[str, str], float] = defaultdict(float)
    for hold in holds:
        if hold.created_at >= cutoff:
            for claim in hold.claims:
                batch[(claim.scope_key, claim.unit)] += claim.amount
    accepted: defaultdict[tuple[str, str], float] = defaultdict(float)
    decisions: list[BudgetExceeded | None] = []
    for hold in holds:
        view = {}
        for claim in hold.claims:
            key = (claim.scope_key, claim.unit)
            spent, held = sums.get(key, (0.0, batch[key]))
            others = max(0.0, held - batch[key])
            view[key] = (spent, others + accepted[key] + claim.amount)
        decision = refusal_of(hold.tenant_id, hold.claims, view)
        if decision is None:
            for claim in hold.claims:
                accepted[(claim.scope_key, claim.unit)] += claim.amount
        decisions.append(decision)
    return decisions
