"""The thread index: which threads exist, for which tenant, of which workflow, in what state.

Written by the workflow graph itself (its root supervisor, aggregate and gate nodes, and
every gate as it stops or lets go of a run: `podium.gates.interrupt`), so a thread
started from Python, the CLI, Streamlit, a notebook or a LangGraph server is listed alike,
`waiting` whenever its run waits at an open gate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from podium.errors import ThreadNotFound
from podium.storage.database import Cursor, Database

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS podium_threads (
        thread_id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        workflow TEXT NOT NULL,
        title TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS podium_threads_tenant ON podium_threads (tenant_id, updated_at)",
]


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    thread_id: str
    tenant_id: str
    workflow: str
    title: str
    status: str
    created_at: float
    updated_at: float


class ThreadOwnedElsewhere(ThreadNotFound):
    """A thread id that belongs to another tenant; reported as not found on purpose."""


class ThreadIndex:
    def __init__(self, db: Database) -> None:
        self._db = db
        db.ensure_schema("threads", SCHEMA)

    def record(
        self, thread_id: str, *, tenant_id: str, workflow: str, title: str, status: str
    ) -> str | None:
        """Create or update a thread; returns the status it had (None for a new thread).
        A thread id another tenant owns is refused."""
        now = time.time()

        def upsert(cur: Cursor) -> str | None:
            rows = cur.query(
                "SELECT tenant_id, status FROM podium_threads WHERE thread_id = ?", (thread_id,)
            )
            if rows and rows[0]["tenant_id"] != tenant_id:
                raise ThreadOwnedElsewhere(thread_id, tenant_id)
            if rows:
                cur.execute(
                    "UPDATE podium_threads SET status = ?, title = ?, updated_at = ? "
                    "WHERE thread_id = ?",
                    (status, title[:200], now, thread_id),
                )
                return str(rows[0]["status"])
            cur.execute(
                "INSERT INTO podium_threads VALUES (?, ?, ?, ?, ?, ?, ?)",
                (thread_id, tenant_id, workflow, title[:200], status, now, now),
            )
            return None

        return self._db.transact(upsert)

    def set_status(self, thread_id: str, status: str) -> None:
        self._db.execute(
            "UPDATE podium_threads SET status = ?, updated_at = ? WHERE thread_id = ?",
            (status, time.time(), thread_id),
        )

    def get(self, thread_id: str, *, tenant_id: str) -> ThreadInfo:
        """The thread, if it belongs to `tenant_id`.

        Raises:
            ThreadNotFound: also when another tenant owns it, so ids do not leak.
        """
        rows = self._db.query(
            "SELECT * FROM podium_threads WHERE thread_id = ? AND tenant_id = ?",
            (thread_id, tenant_id),
        )
        if not rows:
            raise ThreadNotFound(thread_id, tenant_id)
        return ThreadInfo(**rows[0])

    def list(self, *, tenant_id: str, limit: int = 50) -> list[ThreadInfo]:
        """The tenant's threads, most recently updated first."""
        rows = self._db.query(
            "SELECT * FROM podium_threads WHERE tenant_id = ? ORDER BY updated_at DESC LIMIT ?",
            (tenant_id, limit),
        )
        return [ThreadInfo(**row) for row in rows]
