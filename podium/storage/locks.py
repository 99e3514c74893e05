"""Several named locks in one transaction, taken in one global order so they cannot deadlock.

`Database.transact(body, lock=...)` takes a single lock. The rate limiter and the budget
ledger touch several rows at once (every bucket of a call, every level of a nested
budget) and must hold all of their locks together.
"""

from __future__ import annotations

from collections.abc import Iterable

from podium.storage.database import Cursor, Database, lock_key


def lock_all(db: Database, cur: Cursor, names: Iterable[str]) -> None:
    """Take a transaction-scoped lock on every name, in ascending key order.

    On PostgreSQL these are advisory locks, honoured across processes and released at
    commit. Two transactions always take shared keys in the same (ascending) order, so
    neither can hold one key while waiting for a key the other holds. Names whose keys
    collide share a lock, which only serialises a little more than needed. On SQLite
    `BEGIN IMMEDIATE` already serialises every writer of the file, so nothing is taken.
    """
    if db.dialect != "postgres":
        return
    for key in sorted({lock_key(name) for name in names}):
        cur.execute("SELECT pg_advisory_xact_lock(?)", (key,))
