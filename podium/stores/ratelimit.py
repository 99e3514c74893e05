"""Token-bucket rate limits per tenant, shared by every process on the same database.

A bucket holds up to `capacity` tokens and refills continuously at `capacity` tokens
per `per` seconds; a call takes `cost` tokens from every bucket that applies to it,
or from none. Bucket rows live in `podium_rate_buckets`; on PostgreSQL the row locks
are advisory locks, so several workers on several machines share one limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from podium.errors import ConfigurationError, RateLimited
from podium.policies.ratelimit import BucketStep, take
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

#: Shortest wait between attempts of `acquire`, so rounding never makes it spin.
MIN_WAIT = 0.001


class LimitSpec(Protocol):
    """Anything with a bucket key, a capacity and a refill period (e.g. a policy's limit)."""

    @property
    def key(self) -> str: ...
    @property
    def capacity(self) -> float: ...
    @property
    def per(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Limit:
    """A bucket: `capacity` calls per `per` seconds, e.g. `Limit("model:gpt-4o", 60, 60.0)`."""

    key: str
    capacity: int
    per: float


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether tokens were taken; if not, the limiting bucket and how long until it has room."""

    allowed: bool
    key: str | None = None
    retry_after: float = 0.0


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
        with self._db.transaction() as cur:
            lock_all(self._db, cur, [f"ratelimit:{tenant_id}:{lim.key}" for lim in ordered])
            steps = [(lim, self._step(cur, tenant_id, lim, now, cost)) for lim in ordered]
            refused = [(step.retry_after, lim.key) for lim, step in steps if not step.allowed]
            if refused:
                wait, key = max(refused)
                return RateDecision(False, key, wait)
            for lim, step in steps:
                cur.execute(
                    "INSERT INTO podium_rate_buckets VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (tenant_id, bucket_key) DO UPDATE SET "
                    "tokens = excluded.tokens, updated_at = excluded.updated_at",
                    (tenant_id, lim.key, step.tokens, step.updated_at),
                )
        return RateDecision(True)

    def acquire(
        self,
        tenant_id: str,
        limits: Sequence[LimitSpec],
        *,
        timeout: float,
        cost: float = 1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> RateDecision:
        """Like `try_acquire`, but wait (with `sleep`) up to `timeout` seconds for room.

        Gives up at once when the wait needed is already longer than what is left of
        the timeout, rather than sleeping in vain.

        Raises:
            RateLimited: naming the limiting bucket and its wait.
        """
        waited = 0.0
        while True:
            decision = self.try_acquire(tenant_id, limits, cost)
            if decision.allowed:
                return decision
            assert decision.key is not None
            if decision.retry_after > timeout - waited:
                raise RateLimited(tenant_id, decision.key, decision.retry_after, timeout, waited)

            pause = max(decision.retry_after, MIN_WAIT)
            sleep(pause)
            waited += pause

    def _step(
        self, cur: Cursor, tenant_id: str, lim: LimitSpec, now: float, cost: float
    ) -> BucketStep:
        rows = cur.query(
            "SELECT tokens, updated_at FROM podium_rate_buckets "
            "WHERE tenant_id = ? AND bucket_key = ?",
            (tenant_id, lim.key),
        )
        # A bucket seen for the first time starts full.
        tokens, stamp = (rows[0]["tokens"], rows[0]["updated_at"]) if rows else (lim.capacity, now)
        return take(tokens, stamp, now, capacity=lim.capacity, per=lim.per, cost=cost)


def _validated(limits: Sequence[LimitSpec], cost: float) -> list[LimitSpec]:
    if cost < 0:
        raise ConfigurationError(f"rate limit cost {cost!r} is negative; pass 0 or more")
    seen: set[str] = set()
    for lim in limits:
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
