"""Dead letters: tasks that failed for good, kept with everything needed to replay them.

pending --claim_for_replay--> replaying --finish_replay(ok)--> replayed
replaying --finish_replay(not ok)--> pending (the replay's error appended to attempts)
replaying --claim_for_replay(take_over)--> replaying (a replay that stopped: see below)
pending --discard--> discarded

A letter points at the last good checkpoint of its thread (`last_checkpoint_id`,
`checkpoint_ns`), so a replay resumes from there instead of re-running earlier tasks.
`claim_for_replay` is an atomic pending -> replaying step: of two replays of the same
letter, from two threads or two processes, exactly one proceeds; the other gets
`DeadLetterStateError`. That is what keeps a double replay from duplicating effects.

A replay whose process died (SIGKILL, a crash) or whose run an outage stopped never
finishes its letter. Its thread's writer lock went with it, so a caller that holds that
lock knows no replay is running and may take the letter over (`take_over=True`): the
claim names the new replayer and keeps the one it replaced (`took_over_from`).

A replay whose run stopped early once its task was back on the thread (it raised, or
its reader stopped) is `replayed` with the thread unfinished: its result says why
("stopped"). The run that finishes the thread settles it (`settle_stopped_replay`), so
the letter then tells the task's final outcome, not the one it had when the run stopped.
"""

from __future__ import annotations

import builtins
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from podium.errors import DeadLetterNotFound, DeadLetterStateError
from podium.storage.database import Cursor, Database
from podium.stores.dead_letters.letters import (
    STATUSES,
    Attempt,
    DeadLetter,
    DeadLetterStatus,
    from_row,
    to_row,
)

__all__ = [
    "STATUSES",
    "Attempt",
    "DeadLetter",
    "DeadLetterNotFound",
    "DeadLetterStateError",
    "DeadLetterStatus",
    "DeadLetters",
]

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS podium_dead_letters (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        workflow TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        agent TEXT NOT NULL,
        inputs TEXT NOT NULL,
        attempts TEXT NOT NULL,
        last_checkpoint_id TEXT,
        checkpoint_ns TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        resolution TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS podium_dead_letters_tenant "
    "ON podium_dead_letters (tenant_id, status, created_at)",
    "CREATE INDEX IF NOT EXISTS podium_dead_letters_task "
    "ON podium_dead_letters (tenant_id, thread_id, task_id)",
]


class DeadLetters:
    """The dead-letter store, in `podium_dead_letters`; every method is tenant-scoped."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        db.ensure_schema("dead_letters", SCHEMA)

    def add(
        self,
        *,
        tenant_id: str,
        workflow: str,
        thread_id: str,
        task_id: str,
        agent: str,
        inputs: Mapping[str, Any],
        attempts: Sequence[Attempt | Mapping[str, Any]],
        last_checkpoint_id: str | None,
        checkpoint_ns: str = "",
    ) -> DeadLetter:
        """Dead-letter a task; returns the new pending letter.

        Idempotent: if a pending letter already exists for the same tenant, thread,
        checkpoint namespace, task and last checkpoint (a node re-run after a crash
        dead-letters the same failure again), that letter is returned unchanged.

        Args:
            inputs: The task and dependency inputs needed to replay it; JSON values
                (anything else is stored as its str(), so keep replay inputs JSON).
            attempts: Every failed try, as `Attempt`s or dicts with the same keys.
            last_checkpoint_id: The last good checkpoint of the thread to replay from.
        """
        tries = tuple(a if isinstance(a, Attempt) else Attempt.from_dict(a) for a in attempts)
        now = self._clock()
        letter = DeadLetter(
            id=_new_id(),
            tenant_id=tenant_id,
            workflow=workflow,
            thread_id=thread_id,
            task_id=task_id,
            agent=agent,
            inputs=dict(inputs),
            attempts=tries,
            last_checkpoint_id=last_checkpoint_id,
            checkpoint_ns=checkpoint_ns,
            status="pending",
            created_at=now,
            updated_at=now,
            resolution=None,
        )

        def insert(cur: Cursor) -> DeadLetter:
            existing = _pending_twin(cur, tenant_id, thread_id, checkpoint_ns, task_id)
            for row in existing:
                if row["last_checkpoint_id"] == last_checkpoint_id:
                    return from_row(row)
            cur.execute(
                "INSERT INTO podium_dead_letters VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                to_row(letter),
            )
            return _get(cur, letter.id, tenant_id)

        return self._db.transact(insert, lock=f"dead_letters:{tenant_id}:{thread_id}:{task_id}")

    def list(
        self, tenant_id: str, *, status: DeadLetterStatus | None = None, limit: int = 200
    ) -> builtins.list[DeadLetter]:
        """The tenant's letters, newest first, optionally of one status."""
        if status is None:
            rows = self._db.query(
                "SELECT * FROM podium_dead_letters WHERE tenant_id = ? "
                "ORDER BY created_at DESC, id LIMIT ?",
                (tenant_id, limit),
            )
        else:
            _check_status(status)
            rows = self._db.query(
                "SELECT * FROM podium_dead_letters WHERE tenant_id = ? AND status = ? "
                "ORDER BY created_at DESC, id LIMIT ?",
                (tenant_id, status, limit),
            )
        return [from_row(row) for row in rows]

    def get(self, id: str, tenant_id: str) -> DeadLetter:
        """One letter of the tenant.

        Raises:
            DeadLetterNotFound: no such id, or another tenant's (reported alike on purpose).
        """
        return _get(self._db, id, tenant_id)

    def claim_for_replay(
        self, id: str, tenant_id: str, by: str, *, take_over: bool = False
    ) -> DeadLetter:
        """Atomically move a pending letter to replaying; only one claim ever wins.

        Args:
            take_over: Also claim a letter left `replaying` by a replay that stopped. Only
                for a caller holding the thread's writer lock, which a running replay holds
                until it ends: holding it proves that replay is gone.

        Raises:
            DeadLetterNotFound: no such letter for this tenant.
            DeadLetterStateError: it is already being replayed, replayed, or discarded.
        """
        now = self._clock()

        def take(cur: Cursor) -> DeadLetter:
            letter = _get(cur, id, tenant_id)
            claim: dict[str, Any] = {"replay_by": by, "replay_started_at": now}
            if take_over and letter.status == "replaying":
                claim["took_over_from"] = dict(letter.resolution or {})
            else:
                _require(letter, "pending", "replay")
            _update(cur, letter, "replaying", now, resolution=claim)
            return _get(cur, id, tenant_id)

        return self._db.transact(take, lock=f"dead_letters:{id}")

    def finish_replay(
        self, id: str, tenant_id: str, *, ok: bool, result: Mapping[str, Any]
    ) -> DeadLetter:
        """End a replay: replaying -> replayed, or back to pending when it failed again.

        Args:
            ok: Whether the replay succeeded.
            result: JSON-serialisable outcome, e.g. {"thread_id": ..., "answer": ...}. When
                not ok, its "error" and "error_type" (and optional "agent") become a new
                entry of `attempts`, so the letter can be replayed again or discarded.
        """
        now = self._clock()

        def finish(cur: Cursor) -> DeadLetter:
            letter = _get(cur, id, tenant_id)
            _require(letter, "replaying", "finish the replay of")
            replay = {**(letter.resolution or {}), "finished_at": now, "result": dict(result)}
            if ok:
                _update(cur, letter, "replayed", now, resolution=replay)
            else:
                attempts = (*letter.attempts, _replay_attempt(letter, result, now))
                resolution = {"last_replay": replay}
                _update(cur, letter, "pending", now, resolution=resolution, attempts=attempts)
            return _get(cur, id, tenant_id)

        return self._db.transact(finish, lock=f"dead_letters:{id}")

    def stopped_replays(self, tenant_id: str, thread_id: str) -> builtins.list[DeadLetter]:
        """The thread's replayed letters whose replay's run stopped before the thread
        finished (their result says why: "stopped"), oldest first."""
        rows = self._db.query(
            "SELECT * FROM podium_dead_letters WHERE tenant_id = ? AND thread_id = ? "
            "AND status = 'replayed' ORDER BY created_at, id",
            (tenant_id, thread_id),
        )
        return [d for d in map(from_row, rows) if _stopped(d)]

    def settle_stopped_replay(
        self, id: str, tenant_id: str, *, result: Mapping[str, Any]
    ) -> DeadLetter:
        """The thread a stopped replay left unfinished has finished: `result`, the task's
        final outcome, becomes the letter's result; the one recorded when the run stopped
        is kept as "run_stopped". A letter already settled is returned unchanged.

        Raises:
            DeadLetterStateError: the letter is not replayed.
        """
        now = self._clock()

        def settle(cur: Cursor) -> DeadLetter:
            letter = _get(cur, id, tenant_id)
            _require(letter, "replayed", "settle the replay of")
            if not _stopped(letter):
                return letter
            resolution = dict(letter.resolution or {})
            resolution.update(
                run_stopped=resolution.get("result"),
                result=dict(result),
                thread_finished_at=now,
            )
            _update(cur, letter, "replayed", now, resolution=resolution)
            return _get(cur, id, tenant_id)

        return self._db.transact(settle, lock=f"dead_letters:{id}")

    def discard(self, id: str, tenant_id: str, *, by: str, reason: str) -> DeadLetter:
        """Give up on a pending letter for good.

        Raises:
            DeadLetterStateError: it is being replayed, was replayed, or is discarded.
        """
        now = self._clock()

        def discard(cur: Cursor) -> DeadLetter:
            letter = _get(cur, id, tenant_id)
            _require(letter, "pending", "discard")
            resolution = {"discarded_by": by, "reason": reason, "discarded_at": now}
            _update(cur, letter, "discarded", now, resolution=resolution)
            return _get(cur, id, tenant_id)

        return self._db.transact(discard, lock=f"dead_letters:{id}")


def _new_id() -> str:
    # 48 random bits: short enough to type, and collisions are not a practical concern.
    return f"dl-{uuid.uuid4().hex[:12]}"


def _pending_twin(
    cur: Cursor, tenant_id: str, thread_id: str, checkpoint_ns: str, task_id: str
) -> builtins.list[dict[str, Any]]:
    return cur.query(
        "SELECT * FROM podium_dead_letters WHERE tenant_id = ? AND thread_id = ? "
        "AND checkpoint_ns = ? AND task_id = ? AND status = 'pending'",
        (tenant_id, thread_id, checkpoint_ns, task_id),
    )


def _get(cur: Cursor, id: str, tenant_id: str) -> DeadLetter:
    rows = cur.query(
        "SELECT * FROM podium_dead_letters WHERE id = ? AND tenant_id = ?", (id, tenant_id)
    )
    if not rows:
        raise DeadLetterNotFound(id, tenant_id)
    return from_row(rows[0])


def _stopped(letter: DeadLetter) -> bool:
    return "stopped" in ((letter.resolution or {}).get("result") or {})


def _require(letter: DeadLetter, status: DeadLetterStatus, action: str) -> None:
    if letter.status != status:
        raise DeadLetterStateError(letter, action)


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown dead-letter status {status!r}; use one of {', '.join(STATUSES)}")


def _replay_attempt(letter: DeadLetter, result: Mapping[str, Any], now: float) -> Attempt:
    return Attempt(
        agent=str(result.get("agent") or letter.agent),
        attempt=len(letter.attempts) + 1,
        error_type=str(result.get("error_type") or "ReplayFailed"),
        error=str(result.get("error") or json.dumps(dict(result), default=str)),
        at=now,
    )


def _update(
    cur: Cursor,
    letter: DeadLetter,
    status: DeadLetterStatus,
    now: float,
    *,
    resolution: Mapping[str, Any] | None,
    attempts: tuple[Attempt, ...] | None = None,
) -> None:
    tries = letter.attempts if attempts is None else attempts
    cur.execute(
        "UPDATE podium_dead_letters SET status = ?, updated_at = ?, resolution = ?, "
        "attempts = ? WHERE id = ? AND tenant_id = ? AND status = ?",
        (
            status,
            now,
            None if resolution is None else json.dumps(dict(resolution), default=str),
            json.dumps([a.to_dict() for a in tries]),
            letter.id,
            letter.tenant_id,
            letter.status,
        ),
    )
