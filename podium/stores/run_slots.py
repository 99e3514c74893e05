"""Run slots: how many runs each tenant has in flight in the embedded runtime.

A run takes a slot before it starts and gives it back when it ends (completed, failed,
paused at a gate or cancelled), so `podium.policies.runs` can cap a tenant's runs in
flight. Slots are rows in `podium_run_slots`, so every process on one PostgreSQL database
shares the count (on PostgreSQL a tenant's slots are taken under one advisory lock; on
SQLite every writer is serialised anyway). A slot a crashed process never gave back
expires after its lease.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from podium.storage.database import Cursor, Database

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS podium_run_slots (
        slot_id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS podium_run_slots_tenant ON podium_run_slots (tenant_id)",
]

#: Seconds a slot is held at most when its process dies without giving it back.
DEFAULT_LEASE = 3_600.0


@dataclass(frozen=True, slots=True)
class SlotDecision:
    """A slot taken (its id), or None; and the tenant's runs in flight before this one."""

    slot_id: str | None
    busy: int


class RunSlots:
    """Slots of runs in flight per tenant, in the runtime database.

    Args:
        db: podium's database; the table is created if missing.
        clock: Seconds since the epoch; injected by tests.
        lease: Seconds after which a slot never given back is free again.
    """

    def __init__(
        self, db: Database, *, clock: Callable[[], float] = time.time, lease: float = DEFAULT_LEASE
    ) -> None:
        self._db = db
        self._clock = clock
        self._lease = lease
        db.ensure_schema("run_slots", SCHEMA)

    def take(self, tenant_id: str, max_runs: int) -> SlotDecision:
        """Take a slot of `tenant_id` if it has fewer than `max_runs` runs in flight."""
        now = self._clock()
        slot_id = uuid.uuid4().hex

        def take(cur: Cursor) -> SlotDecision:
            cur.execute(
                "DELETE FROM podium_run_slots WHERE tenant_id = ? AND expires_at < ?",
                (tenant_id, now),
            )
            rows = cur.query(
                "SELECT COUNT(*) AS n FROM podium_run_slots WHERE tenant_id = ?", (tenant_id,)
            )
            busy = int(rows[0]["n"])
            if busy >= max_runs:
                return SlotDecision(None, busy)
            cur.execute(
                "INSERT INTO podium_run_slots VALUES (?, ?, ?)",
                (slot_id, tenant_id, now + self._lease),
            )
            return SlotDecision(slot_id, busy)

        return self._db.transact(take, lock=f"runslots:{tenant_id}")

    def release(self, slot_id: str) -> None:
        """Give a slot back (a slot already expired or given back is ignored)."""
        self._db.execute("DELETE FROM podium_run_slots WHERE slot_id = ?", (slot_id,))

    def busy(self, tenant_id: str) -> int:
        """The tenant's runs in flight now (slots not expired)."""
        rows = self._db.query(
            "SELECT COUNT(*) AS n FROM podium_run_slots WHERE tenant_id = ? AND expires_at >= ?",
            (tenant_id, self._clock()),
        )
        return int(rows[0]["n"])
