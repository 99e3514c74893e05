"""Replay refusal for webhooks: each signature is accepted once, across server processes.

Signatures are remembered in podium's database (table `podium_webhook_signatures`), so
every server process on the same database agrees. A row is kept for twice the timestamp
window: a request is accepted at most `window` seconds before or after its timestamp.
A request refused after its signature was recorded (no run started) gives the signature
back, so the sender's retry gets the same answer, not "replayed".
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from podium.storage.database import Cursor, Database

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS podium_webhook_signatures (
        digest TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        seen_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS podium_webhook_signatures_seen "
    "ON podium_webhook_signatures (seen_at)",
]


class ReplayGuard:
    """Remembers webhook signatures for `2 * window` seconds."""

    def __init__(
        self, db: Database, *, window: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._window = window
        self._clock = clock
        db.ensure_schema("webhook_signatures", SCHEMA)

    def first_use(self, tenant_id: str, signature: str) -> bool:
        """Record `signature`; False when it was seen before (a replay)."""
        digest = _digest(tenant_id, signature)
        now = self._clock()

        def remember(cur: Cursor) -> bool:
            cur.execute(
                "DELETE FROM podium_webhook_signatures WHERE seen_at < ?",
                (now - 2 * self._window,),
            )
            if cur.query("SELECT 1 FROM podium_webhook_signatures WHERE digest = ?", (digest,)):
                return False
            cur.execute(
                "INSERT INTO podium_webhook_signatures (digest, tenant_id, seen_at) "
                "VALUES (?, ?, ?)",
                (digest, tenant_id, now),
            )
            return True

        return self._db.transact(remember, lock=f"webhook:{digest}")

    def forget(self, tenant_id: str, signature: str) -> None:
        """Give back a signature whose request started nothing (it was refused)."""
        self._db.execute(
            "DELETE FROM podium_webhook_signatures WHERE digest = ?",
            (_digest(tenant_id, signature),),
        )


def _digest(tenant_id: str, signature: str) -> str:
    return hashlib.sha256(f"{tenant_id}\n{signature}".encode()).hexdigest()
