"""Circuit breakers per tool and per model endpoint, shared by every process on one database.

closed --N failures within W s--> open --cool-down C--> half_open (one probe call)
half_open --probe success--> closed;  half_open --probe failure--> open (new cool-down)

The state machine is pure (`podium.stores.breakers.machine`, re-exported here); this
module keeps one row per breaker in `podium_breakers` and applies the machine under
`db.transact(..., lock="breaker:<key>")`, so two processes never both become the probe.

Keys are built by the caller (`breaker_key` helps). A key starting with
`tenant:<tenant_id>:` is that tenant's own breaker; any other key ("tool:search_corpus",
"model:openai:gpt-4o") is shared by all tenants, because a failing downstream fails for
everyone. Shared rows are stored with tenant_id "*"; their last error is only shown to
the tenant whose call produced it, so error texts never leak across tenants.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from podium.errors import BreakerKeyError, CircuitOpen
from podium.storage.database import Cursor, Database
from podium.stores.breakers.machine import (
    CLOSED,
    BreakerDecision,
    BreakerEvent,
    BreakerSettings,
    BreakerState,
    BreakerStatus,
    on_call,
    on_failure,
    on_success,
    step,
)

__all__ = [
    "SHARED",
    "BreakerDecision",
    "BreakerEvent",
    "BreakerInfo",
    "BreakerKeyError",
    "BreakerSettings",
    "BreakerState",
    "BreakerStatus",
    "CircuitBreakers",
    "CircuitOpen",
    "breaker_key",
    "on_call",
    "on_failure",
    "on_success",
    "step",
]

#: tenant_id stored for breakers shared by all tenants.
SHARED = "*"

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS podium_breakers (
        breaker_key TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        status TEXT NOT NULL,
        failures TEXT NOT NULL,
        opened_at DOUBLE PRECISION,
        next_probe_at DOUBLE PRECISION,
        last_error TEXT,
        last_error_tenant TEXT,
        updated_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS podium_breakers_tenant ON podium_breakers (tenant_id)",
]

_UPSERT = """INSERT INTO podium_breakers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (breaker_key) DO UPDATE SET status = excluded.status,
        failures = excluded.failures, opened_at = excluded.opened_at,
        next_probe_at = excluded.next_probe_at, last_error = excluded.last_error,
        last_error_tenant = excluded.last_error_tenant, updated_at = excluded.updated_at"""


@dataclass(frozen=True, slots=True)
class BreakerInfo:
    """A breaker as a tenant sees it.

    Attributes:
        key: The breaker key.
        tenant_id: The owning tenant, or "*" for a breaker shared by all tenants.
        state: "closed", "open" or "half_open".
        failures: Failures counted towards opening (while closed; as of the last update).
        opened_at: When it last opened; None while closed.
        next_probe_at: When the next call will be let through (open or half-open).
        last_error: The last failure's error, if the viewing tenant's call produced it.
        updated_at: Last change; None for a breaker that never recorded anything.
    """

    key: str
    tenant_id: str
    state: BreakerStatus
    failures: int
    opened_at: float | None
    next_probe_at: float | None
    last_error: str | None
    updated_at: float | None


def breaker_key(kind: str, name: str, *, tenant_id: str | None = None) -> str:
    """A breaker key: "tool:search_corpus", or "tenant:acme:tool:search_corpus" per tenant.

    Args:
        kind: What is protected, e.g. "tool" or "model".
        name: The tool name or model endpoint.
        tenant_id: Give it when the policy keeps one breaker per tenant.
    """
    base = f"{kind}:{name}"
    return base if tenant_id is None else f"tenant:{tenant_id}:{base}"


class CircuitBreakers:
    """Breaker state in `podium_breakers`, shared by all processes using the database.

    Use: `decision = before_call(...)`; if `decision.allowed`, run the call and then
    `record_success` or `record_failure`; otherwise fail fast (`check` raises
    `CircuitOpen` for you). Any success or failure recorded while half-open is taken as
    the probe's outcome.
    """

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        db.ensure_schema("breakers", SCHEMA)

    def before_call(self, key: str, settings: BreakerSettings, tenant_id: str) -> BreakerDecision:
        """Decide whether a call may run; at most one caller gets `probe=True` per cool-down.

        Raises:
            BreakerKeyError: `key` is another tenant's breaker.
        """
        scope = _scope(key, tenant_id)
        current = self._read(key).state
        unchanged, decision = on_call(current, self._clock(), settings)
        if unchanged == current:
            return decision  # Closed, or still cooling down: nothing to write, no lock.
        now = self._clock()

        def decide(cur: Cursor) -> BreakerDecision:
            row = _load(cur, key)
            new, decision = on_call(row.state, now, settings)
            if new != row.state:
                _save(cur, key, scope, new, now, row.error_tenant)
            return decision

        return self._db.transact(decide, lock=f"breaker:{key}")

    def check(self, key: str, settings: BreakerSettings, tenant_id: str) -> BreakerDecision:
        """`before_call`, raising `CircuitOpen` when the call is refused."""
        decision = self.before_call(key, settings, tenant_id)
        if not decision.allowed:
            raise CircuitOpen(key, decision.retry_after or 0.0, state=decision.state)
        return decision

    def record_success(self, key: str, tenant_id: str) -> BreakerInfo:
        """Report a successful call; closes a half-open breaker."""
        scope = _scope(key, tenant_id)
        row = self._read(key)
        if on_success(row.state, self._clock()) == row.state:
            return _info(key, scope, row, tenant_id)  # The usual case: closed stays closed.
        return self._apply(key, scope, tenant_id, on_success, failed=False)

    def record_failure(
        self, key: str, settings: BreakerSettings, tenant_id: str, error: str
    ) -> BreakerInfo:
        """Report a failed call; may open the breaker, and re-opens a half-open one."""
        scope = _scope(key, tenant_id)

        def fail(state: BreakerState, now: float) -> BreakerState:
            return on_failure(state, now, settings, error)

        return self._apply(key, scope, tenant_id, fail, failed=True)

    def state(self, key: str, tenant_id: str) -> BreakerInfo:
        """The breaker's state (closed with no failures if it never recorded anything).

        Raises:
            BreakerKeyError: `key` is another tenant's breaker.
        """
        scope = _scope(key, tenant_id)
        return _info(key, scope, self._read(key), tenant_id)

    def list(self, tenant_id: str) -> builtins.list[BreakerInfo]:
        """The tenant's own breakers and the shared ones, by key."""
        rows = self._db.query(
            "SELECT * FROM podium_breakers WHERE tenant_id = ? OR tenant_id = ? "
            "ORDER BY breaker_key",
            (tenant_id, SHARED),
        )
        return [_info(row["breaker_key"], row["tenant_id"], _row(row), tenant_id) for row in rows]

    def _apply(
        self,
        key: str,
        scope: str,
        tenant_id: str,
        event: Callable[[BreakerState, float], BreakerState],
        *,
        failed: bool,
    ) -> BreakerInfo:
        now = self._clock()

        def change(cur: Cursor) -> _Row:
            row = _load(cur, key)
            new = _Row(event(row.state, now), tenant_id if failed else row.error_tenant, now)
            if new.state == row.state:
                return row
            _save(cur, key, scope, new.state, now, new.error_tenant)
            return new

        return _info(key, scope, self._db.transact(change, lock=f"breaker:{key}"), tenant_id)

    def _read(self, key: str) -> _Row:
        return _load(self._db, key)


@dataclass(frozen=True, slots=True)
class _Row:
    state: BreakerState
    error_tenant: str | None
    updated_at: float | None


def _scope(key: str, tenant_id: str) -> str:
    if not key:
        raise ValueError("breaker key is empty; build one with breaker_key(kind, name)")
    if not key.startswith("tenant:"):
        return SHARED
    if key.startswith(f"tenant:{tenant_id}:"):
        return tenant_id
    raise BreakerKeyError(key, tenant_id)


def _load(cur: Cursor, key: str) -> _Row:
    rows = cur.query("SELECT * FROM podium_breakers WHERE breaker_key = ?", (key,))
    return _row(rows[0]) if rows else _Row(CLOSED, None, None)


def _row(row: dict[str, Any]) -> _Row:
    state = BreakerState(
        status=row["status"],
        failures=tuple(json.loads(row["failures"])),
        opened_at=row["opened_at"],
        next_probe_at=row["next_probe_at"],
        last_error=row["last_error"],
    )
    return _Row(state, row["last_error_tenant"], row["updated_at"])


def _save(
    cur: Cursor, key: str, scope: str, state: BreakerState, now: float, error_tenant: str | None
) -> None:
    cur.execute(
        _UPSERT,
        (
            key,
            scope,
            state.status,
            json.dumps(list(state.failures)),
            state.opened_at,
            state.next_probe_at,
            state.last_error,
            error_tenant,
            now,
        ),
    )


def _info(key: str, scope: str, row: _Row, viewer: str) -> BreakerInfo:
    state = row.state
    return BreakerInfo(
        key=key,
        tenant_id=scope,
        state=state.status,
        failures=len(state.failures),
        opened_at=state.opened_at,
        next_probe_at=state.next_probe_at,
        last_error=state.last_error if row.error_tenant == viewer else None,
        updated_at=row.updated_at,
    )
