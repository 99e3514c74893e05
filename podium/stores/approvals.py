"""The approvals index: every gate raised, its status, and the one decision it got.

A gate row is opened when the gate is raised (idempotently: code before `interrupt()`
re-runs on resume) and claimed atomically when decided, so a second decision (a double
click, two browser tabs) is refused with who decided what and when. A gate still open when
a new round starts on its thread is `abandoned`: the new input replaced the run that
waited at it, so no decision can reach it any more (raised again, it is open again).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from podium.errors import AlreadyDecided, GateError
from podium.gates.request import Decision, GateRequest
from podium.storage.database import Cursor, Database

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS podium_approvals (
        gate_id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        thread_id TEXT,
        workflow TEXT NOT NULL,
        kind TEXT NOT NULL,
        agent TEXT,
        request TEXT NOT NULL,
        status TEXT NOT NULL,
        decision TEXT,
        decided_by TEXT,
        requested_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION,
        decided_at DOUBLE PRECISION,
        escalated_at DOUBLE PRECISION
    )""",
    "CREATE INDEX IF NOT EXISTS podium_approvals_pending ON podium_approvals (tenant_id, status)",
]
#: Columns added after the table first shipped (`Database.ensure_columns`).
ADDED_COLUMNS = {
    # The graph step (its checkpoint namespace) that first raised the gate: a later run
    # of the same step holds the gate's resume value in the same place (see
    # `podium.gates.interrupt.take_slot`).
    "raised_in": "TEXT",
}


@dataclass(frozen=True, slots=True)
class GateRecord:
    gate_id: str
    tenant_id: str
    thread_id: str | None
    workflow: str
    kind: str
    agent: str | None
    request: GateRequest
    status: str  # pending | escalated | decided | abandoned
    decision: dict[str, Any] | None
    decided_by: str | None
    requested_at: float
    expires_at: float | None
    decided_at: float | None
    escalated_at: float | None
    raised_in: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> GateRecord:
        return cls(
            **{
                **row,
                "request": GateRequest.model_validate_json(row["request"]),
                "decision": json.loads(row["decision"]) if row["decision"] else None,
            }
        )


class Approvals:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        db.ensure_schema("approvals", SCHEMA)
        db.ensure_columns("podium_approvals", ADDED_COLUMNS)

    def open(self, request: GateRequest, raised_in: str | None = None) -> None:
        """Record a raised gate, and the graph step that raised it (a no-op when it is
        already recorded; an abandoned gate raised again, on a fork of its thread, is
        pending again)."""

        def insert(cur: Cursor) -> None:
            rows = cur.query(
                "SELECT status FROM podium_approvals WHERE gate_id = ?", (request.gate_id,)
            )
            if rows and rows[0]["status"] == "abandoned":
                cur.execute(
                    "UPDATE podium_approvals SET status = 'pending' WHERE gate_id = ?",
                    (request.gate_id,),
                )
            if rows:
                return
            cur.execute(
                "INSERT INTO podium_approvals (gate_id, tenant_id, thread_id, workflow, kind, "
                "agent, request, status, requested_at, expires_at, raised_in) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                (
                    request.gate_id,
                    request.tenant_id,
                    request.thread_id,
                    request.workflow,
                    request.kind,
                    request.agent,
                    request.model_dump_json(),
                    request.requested_at,
                    request.expires_at,
                    raised_in,
                ),
            )

        self._db.transact(insert, lock=f"approvals:{request.gate_id}")

    def get(self, gate_id: str, tenant_id: str) -> GateRecord | None:
        rows = self._db.query(
            "SELECT * FROM podium_approvals WHERE gate_id = ? AND tenant_id = ?",
            (gate_id, tenant_id),
        )
        return GateRecord.from_row(rows[0]) if rows else None

    def last_decided(self, thread_id: str, tenant_id: str) -> GateRecord | None:
        """The thread's most recently decided gate, or None."""
        rows = self._db.query(
            "SELECT * FROM podium_approvals WHERE thread_id = ? AND tenant_id = ? "
            "AND status = 'decided' ORDER BY decided_at DESC LIMIT 1",
            (thread_id, tenant_id),
        )
        return GateRecord.from_row(rows[0]) if rows else None

    def claim(self, gate_id: str, tenant_id: str, decision: Decision, user: str) -> GateRecord:
        """Mark the gate decided; a gate decided before raises `AlreadyDecided`."""
        decided_at = self._clock()

        def decide(cur: Cursor) -> GateRecord:
            rows = cur.query(
                "SELECT * FROM podium_approvals WHERE gate_id = ? AND tenant_id = ?",
                (gate_id, tenant_id),
            )
            if not rows:
                raise GateError(
                    f"no gate {gate_id!r} for tenant {tenant_id!r}; "
                    "list pending gates with `podium approvals`"
                )
            record = GateRecord.from_row(rows[0])
            if record.status == "decided":
                raise AlreadyDecided(record)
            cur.execute(
                "UPDATE podium_approvals SET status = 'decided', decision = ?, decided_by = ?, "
                "decided_at = ? WHERE gate_id = ?",
                (decision.model_dump_json(), user, decided_at, gate_id),
            )
            return GateRecord.from_row(
                cur.query("SELECT * FROM podium_approvals WHERE gate_id = ?", (gate_id,))[0]
            )

        return self._db.transact(decide, lock=f"approvals:{gate_id}")

    def record(self, gate_id: str, decision: Decision, user: str) -> None:
        """Mark the gate decided unless a decision was claimed already (resumes that did
        not go through `podium.decide` are recorded here, from inside the graph)."""
        self._db.execute(
            "UPDATE podium_approvals SET status = 'decided', decision = ?, decided_by = ?, "
            "decided_at = ? WHERE gate_id = ? AND status <> 'decided'",
            (decision.model_dump_json(), user, self._clock(), gate_id),
        )

    def unclaim(self, gate_id: str) -> None:
        """Reopen a gate whose decision was not applied (the resume failed, or the graph
        refused the decision and raised the gate again); an expired gate stays escalated."""
        self._db.execute(
            "UPDATE podium_approvals SET status = CASE WHEN escalated_at IS NULL "
            "THEN 'pending' ELSE 'escalated' END, decision = NULL, decided_by = NULL, "
            "decided_at = NULL WHERE gate_id = ?",
            (gate_id,),
        )

    def abandon_open(self, thread_id: str, tenant_id: str) -> None:
        """Mark the thread's open gates abandoned: a new round started on the thread, so
        the run that waited at them is gone (they no longer keep the thread `waiting`, are
        not listed as pending and are never escalated)."""
        self._db.execute(
            "UPDATE podium_approvals SET status = 'abandoned' WHERE thread_id = ? "
            "AND tenant_id = ? AND status IN ('pending', 'escalated')",
            (thread_id, tenant_id),
        )

    def open_on_thread(self, thread_id: str, tenant_id: str) -> int:
        """How many of the thread's gates are open (pending or escalated, not decided)."""
        rows = self._db.query(
            "SELECT COUNT(*) AS n FROM podium_approvals WHERE thread_id = ? AND tenant_id = ? "
            "AND status IN ('pending', 'escalated')",
            (thread_id, tenant_id),
        )
        return int(rows[0]["n"])

    def pending(self, tenant_id: str) -> tuple[list[GateRecord], list[GateRecord]]:
        """Open gates, oldest first, and those newly escalated because they expired.

        Expired gates are never approved by default: they are marked `escalated` and stay
        open until someone decides them.
        """
        now = self._clock()

        def sweep(cur: Cursor) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            due = cur.query(
                "SELECT gate_id FROM podium_approvals WHERE tenant_id = ? AND status = 'pending' "
                "AND expires_at IS NOT NULL AND expires_at <= ?",
                (tenant_id, now),
            )
            for row in due:
                cur.execute(
                    "UPDATE podium_approvals SET status = 'escalated', escalated_at = ? "
                    "WHERE gate_id = ?",
                    (now, row["gate_id"]),
                )
            rows = cur.query(
                "SELECT * FROM podium_approvals WHERE tenant_id = ? AND status IN "
                "('pending', 'escalated') ORDER BY requested_at",
                (tenant_id,),
            )
            return due, rows

        due, rows = self._db.transact(sweep, lock=f"approvals-sweep:{tenant_id}")
        records = [GateRecord.from_row(r) for r in rows]
        escalated_ids = {r["gate_id"] for r in due}
        escalated = [r for r in records if r.gate_id in escalated_ids]
        return records, escalated
