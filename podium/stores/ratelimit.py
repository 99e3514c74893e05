"""Token-bucket rate limits per tenant, shared by every process on the same database.

A bucket holds up to `capacity` tokens and refills continuously at `capacity` tokens
per `per` seconds; a call takes `cost` tokens from every bucket that applies to it,
or from none. `try_acquire` takes tokens only if they are there; `reserve` (and
`acquire`, which waits for what it booked) books them in turn when they are not, so
busy tenants' calls queue first come, first served instead of failing, each wait
bounded by its bucket's `max_wait`. Bucket rows live in `podium_rate_buckets`; on
PostgreSQL the row locks are advisory locks, so several workers on several machines
share one limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from podium.errors import ConfigurationError, RateLimited
from podium.policies.ratelimit import BucketStep, book, take
from podium.storage.database import Cursor, Database
from podium.storage.locks import lock_all

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS podium_rate_buckets (
        tenant_id TEXT NOT NULL,
        bucket_key TEXT NOT NULL,
        tokens DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (tenant_id, bucket_key)
    )""",
]


class LimitSpec(Protocol):
    """Anything with a bucket key, a capacity, a refill period and a wait bound (None: the
    refill period), e.g. a policy's limit."""

    @property
    def key(self) -> str: ...
    @property
    def capacity(self) -> float: ...
    @property
    def per(self) -> float: ...
    @property
    def max_wait(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Limit:
    """A bucket: `capacity` calls per `per` seconds, e.g. `Limit("model:gpt-4o", 60, 60.0)`.

    A call waits for it at most `max_wait` seconds (None: `per`, one full refill).
    """

    key: str
    capacity: int
    per: float
    max_wait: float | None = None


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether tokens were taken (then `wait`: seconds until the booked tokens are there);
    if not, the limiting bucket, the wait it needed and the most it allowed."""

    allowed: bool
    key: str | None = None
    retry_after: float = 0.0
    wait: float = 0.0
    bound: float = 0.0


def wait_bound(limit: LimitSpec, cap: float | None = None) -> float:
    """Most seconds a call waits for `limit`: its `max_wait`, else its refill period, capped
    by `cap` (the runtime's `rate_wait`) when given."""
    own = limit.max_wait if limit.max_wait is not None else limit.per
    return own if cap is None else min(own, cap)


class RateLimiter:
    """Token buckets per (tenant, key) in the runtime database.

    Args:
        db: podium's database; the table is created if missing.
        clock: Seconds since the epoch; injected by tests.
    """

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        db.ensure_schema("ratelimit", SCHEMA)

    def try_acquire(
        self, tenant_id: str, limits: Sequence[LimitSpec], cost: float = 1
    ) -> RateDecision:
        """Take `cost` tokens from every bucket in `limits`, or from none of them.

        Returns:
            `allowed=True`, or the bucket that would wait longest and its wait in seconds.

        Raises:
            ConfigurationError: a malformed limit, a repeated key, or a cost that no
                bucket of that capacity can ever hold.
        """
        ordered = _validated(limits, cost)
        if not ordered:
            return RateDecision(True)
        now = self._clock()

        def take_all(cur: Cursor) -> RateDecision:
            lock_all(self._db, cur, [f"ratelimit:{tenant_id}:{lim.key}" for lim in ordered])
            steps = [(lim, self._step(cur, tenant_id, lim, now, cost)) for lim in ordered]
            refused = [(step.retry_after, lim.key) for lim, step in steps if not step.allowed]
            if refused:
                wait, key = max(refused)
                return RateDecision(False, key, wait)
            self._write(cur, tenant_id, steps)
            return RateDecision(True)

        return self._db.transact(take_all)

    def reserve(
        self,
        tenant_id: str,
        limits: Sequence[LimitSpec],
        cost: float = 1,
        *,
        cap: float | None = None,
    ) -> RateDecision:
        """Book `cost` tokens in every bucket in `limits`, or in none of them.

        A bucket without the tokens now books them ahead (its level goes below zero) when
        they refill within its wait bound (`wait_bound(limit, cap)`); the caller then waits
        `wait` seconds, the longest of the buckets', and calls without asking again.

        Returns:
            `allowed=True` and the `wait`, or the bucket that refused, the wait it needed
            (`retry_after`) and its bound.

        Raises:
            ConfigurationError: as `try_acquire`.
        """
        ordered = _validated(limits, cost)
        if not ordered:
            return RateDecision(True)
        now = self._clock()

        def book_all(cur: Cursor) -> RateDecision:
            lock_all(self._db, cur, [f"ratelimit:{tenant_id}:{lim.key}" for lim in ordered])
            steps = []
            for lim in ordered:
                tokens, stamp = self._level(cur, tenant_id, lim, now)
                bound = wait_bound(lim, cap)
                step = book(
                    tokens,
                    stamp,
                    now,
                    capacity=lim.capacity,
                    per=lim.per,
                    cost=cost,
                    max_wait=bound,
                )
                if not step.allowed:
                    return RateDecision(False, lim.key, step.retry_after, bound=bound)
                steps.append((lim, step))
            self._write(cur, tenant_id, steps)
            return RateDecision(True, wait=max(step.retry_after for _, step in steps))

        return self._db.transact(book_all)

    def acquire(
        self,
        tenant_id: str,
        limits: Sequence[LimitSpec],
        *,
        timeout: float | None = None,
        cost: float = 1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> RateDecision:
        """`reserve`, then wait (with `sleep`) until the booked tokens are there.

        `timeout`, when given, caps every bucket's own wait bound.

        Raises:
            RateLimited: when a bucket's queue is longer than its bound, naming the bucket,
                the wait it needed and the bound; nothing is booked then.
        """
        decision = self.reserve(tenant_id, limits, cost, cap=timeout)
        if not decision.allowed:
            assert decision.key is not None
            raise RateLimited(tenant_id, decision.key, decision.retry_after, decision.bound)
        if decision.wait > 0:
            sleep(decision.wait)
        return decision

    def _level(
        self, cur: Cursor, tenant_id: str, lim: LimitSpec, now: float
    ) -> tuple[float, float]:
        rows = cur.query(
            "SELECT tokens, updated_at FROM podium_rate_buckets "
            "WHERE tenant_id = ? AND bucket_key = ?",
            (tenant_id, lim.key),
        )
        # A bucket seen for the first time starts full.
        return (rows[0]["tokens"], rows[0]["updated_at"]) if rows else (lim.capacity, now)

    @staticmethod
    def _write(cur: Cursor, tenant_id: str, steps: Sequence[tuple[LimitSpec, BucketStep]]) -> None:
        for lim, step in steps:
            cur.execute(
                "INSERT INTO podium_rate_buckets VALUES (?, ?, ?, ?) "
                "ON CONFLICT (tenant_id, bucket_key) DO UPDATE SET "
                "tokens = excluded.tokens, updated_at = excluded.updated_at",
                (tenant_id, lim.key, step.tokens, step.updated_at),
            )

    def _step(
        self, cur: Cursor, tenant_id: str, lim: LimitSpec, now: float, cost: float
    ) -> BucketStep:
        tokens, stamp = self._level(cur, tenant_id, lim, now)
        return take(tokens, stamp, now, capacity=lim.capacity, per=lim.per, cost=cost)


def _validated(limits: Sequence[LimitSpec], cost: float) -> list[LimitSpec]:
    if cost < 0:
        raise ConfigurationError(f"rate limit cost {cost!r} is negative; pass 0 or more")
    seen: set[str] = set()
    for lim in limits:
        if lim.max_wait is not None and lim.max_wait < 0:
            raise ConfigurationError(
                f"rate limit {lim.key!r} has max_wait {lim.max_wait!r}; give 0 or more seconds"
            )
        if lim.capacity <= 0 or lim.per <= 0:
            raise ConfigurationError(
                f"rate limit {lim.key!r} has capacity {lim.capacity!r} per {lim.per!r}s; "
                "both must be positive"
            )
        if cost > lim.capacity:
            raise ConfigurationError(
                f"cost {cost!r} can never fit rate limit {lim.key!r} of capacity "
                f"{lim.capacity!r}; raise the capacity or lower the cost"
            )
        if lim.key in seen:
            raise ConfigurationError(
                f"rate limit key {lim.key!r} given twice in one call; give each bucket once"
            )
        seen.add(lim.key)
    # Sorted so the rows are read and written in the same order as their locks are taken.
    return sorted(limits, key=lambda lim: lim.key)
