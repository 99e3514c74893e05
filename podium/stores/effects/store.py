"""The tool-effect ledger: a side-effecting tool call runs at most once per key.

    begin(key, tool, args) -> Started   the caller runs the tool, then complete() or fail()
                           -> Recorded  it already ran: return the recorded result
                           -> InDoubt   it started and never reported: crashed (or running)

A replay from a checkpoint, a retried task or a resumed thread calls `begin` again with
the same key (the tool call id, or better a user-supplied idempotency key, which stays
the same when the model re-plans the call) and gets the recorded result back instead
of charging a card twice.

Row status: started -> completed; started -> failed -> started (next `begin`);
started (in doubt) -> released -> started (`resolve_in_doubt(action="rerun")`) or
started -> completed (`resolve_in_doubt(action="mark_done")`). `fail` marks the row
"failed" rather than deleting it, so the ledger keeps the error and the attempt count;
the next `begin` on the key starts it again.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from podium.errors import EffectConflict, EffectNotFound, EffectStateError
from podium.storage.database import Cursor, Database
from podium.stores.effects.keys import (
    EFFECT_STATES,
    Effect,
    EffectKey,
    EffectState,
    EffectStatus,
    InDoubt,
    Recorded,
    Result,
    Started,
    effect_from_row,
)

__all__ = [
    "EFFECT_STATES",
    "Effect",
    "EffectConflict",
    "EffectKey",
    "EffectLedger",
    "EffectNotFound",
    "EffectState",
    "EffectStateError",
    "EffectStatus",
    "InDoubt",
    "Recorded",
    "Result",
    "Started",
]

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS podium_tool_effects (
        tenant_id TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        call_key TEXT NOT NULL,
        tool TEXT NOT NULL,
        args TEXT NOT NULL,
        status TEXT NOT NULL,
        result TEXT,
        error TEXT,
        attempts INTEGER NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION,
        updated_at DOUBLE PRECISION NOT NULL,
        resolved_by TEXT,
        resolution TEXT,
        PRIMARY KEY (tenant_id, thread_id, task_id, call_key)
    )""",
    "CREATE INDEX IF NOT EXISTS podium_tool_effects_tenant "
    "ON podium_tool_effects (tenant_id, status, updated_at)",
]

_WHERE_KEY = "WHERE tenant_id = ? AND thread_id = ? AND task_id = ? AND call_key = ?"


class EffectLedger:
    """Exactly-once bookkeeping of tool side effects, in `podium_tool_effects`."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        db.ensure_schema("tool_effects", SCHEMA)

    def begin(self, key: EffectKey, tool: str, args: Mapping[str, Any]) -> EffectStatus:
        """Atomically decide whether this call may run (see the module docstring).

        Of callers racing on one key, in threads or processes, exactly one gets `Started`;
        the others get `InDoubt` while it runs and `Recorded` once it completed.

        Args:
            key: The effect's key.
            tool: The tool name; a key recorded for another tool raises `EffectConflict`.
            args: The call's arguments, kept for people reviewing the ledger. They are not
                compared: a re-planned call may word them differently yet mean the same.
        """
        now = self._clock()

        def start(cur: Cursor) -> EffectStatus:
            effect = _find(cur, key)
            if effect is None:
                cur.execute(
                    "INSERT INTO podium_tool_effects VALUES "
                    "(?, ?, ?, ?, ?, ?, 'started', NULL, NULL, 1, ?, NULL, ?, NULL, NULL)",
                    (*_key(key), tool, _json(args), now, now),
                )
                return Started(attempt=1)
            if effect.tool != tool:
                raise EffectConflict(key, effect.tool, tool)
            if effect.status == "completed":
                return Recorded(effect.result if effect.result is not None else "")
            if effect.status == "started":
                return InDoubt(started_at=effect.started_at, attempt=effect.attempts)
            # failed, or released by a human: run it again.
            attempt = effect.attempts + 1
            cur.execute(
                "UPDATE podium_tool_effects SET status = 'started', args = ?, attempts = ?, "
                f"started_at = ?, finished_at = NULL, updated_at = ? {_WHERE_KEY}",
                (_json(args), attempt, now, now, *_key(key)),
            )
            return Started(attempt=attempt)

        return self._db.transact(start, lock=key.lock())

    def complete(self, key: EffectKey, result: Result) -> Effect:
        """Record the result of a started call.

        A call that is already completed keeps its first result (it may have been handed
        out already, e.g. after a human marked it done); the returned row shows which.

        Raises:
            EffectNotFound: `begin` was never called for the key.
            ValueError: `result` is not JSON-serialisable.
        """
        text = _result_json(result)
        return self._finish(key, "completed", result=text, error=None)

    def fail(self, key: EffectKey, error: str) -> Effect:
        """Mark a started call failed, so that the next `begin` lets it run again.

        The row is kept (status "failed", with the error) rather than removed. A completed
        call stays completed: its effect happened and its result stands.

        Raises:
            EffectNotFound: `begin` was never called for the key.
        """
        return self._finish(key, "failed", result=None, error=error)

    def resolve_in_doubt(
        self,
        key: EffectKey,
        *,
        action: Literal["rerun", "mark_done", "abandon"],
        result: Result | None = None,
        by: str,
    ) -> Effect:
        """Settle a call that started and never reported (`InDoubt`), as a human decides.

        Args:
            action: "rerun" when the effect did not happen: the next `begin` returns
                `Started`. "mark_done" when it did: the next `begin` returns `Recorded`.
                "abandon" when it is not to be run now: the row is marked failed (naming
                who abandoned it); a later `begin` on the key starts it afresh.
            result: The result to record for "mark_done" (default: a note naming `by`).
            by: Who decided, kept in the row.

        Raises:
            EffectNotFound: no such call. EffectStateError: the call is not in doubt.
        """
        if action not in ("rerun", "mark_done", "abandon"):
            raise ValueError(
                f"unknown in-doubt action {action!r}; use 'rerun', 'mark_done' or 'abandon'"
            )
        if action == "mark_done" and result is None:
            result = f"marked done by {by!r}; the tool's own result was not recorded"
        now = self._clock()
        status = {"rerun": "released", "mark_done": "completed", "abandon": "failed"}[action]
        text = None if result is None else _result_json(result)
        error = f"abandoned by {by!r}" if action == "abandon" else None

        def settle(cur: Cursor) -> Effect:
            effect = _get(cur, key)
            if effect.status != "started":
                raise EffectStateError(key, effect.status)
            cur.execute(
                "UPDATE podium_tool_effects SET status = ?, result = ?, error = ?, "
                "finished_at = ?, updated_at = ?, resolved_by = ?, resolution = ? "
                f"{_WHERE_KEY}",
                (status, text, error, now, now, by, action, *_key(key)),
            )
            return _get(cur, key)

        return self._db.transact(settle, lock=key.lock())

    def get(self, key: EffectKey) -> Effect | None:
        """The ledger row of one call, if any."""
        return _find(self._db, key)

    def list(
        self,
        tenant_id: str,
        *,
        status: EffectState | None = None,
        thread_id: str | None = None,
        limit: int = 200,
    ) -> builtins.list[Effect]:
        """The tenant's effects, most recently updated first, optionally filtered."""
        if status is not None and status not in EFFECT_STATES:
            raise ValueError(
                f"unknown effect status {status!r}; use one of {', '.join(EFFECT_STATES)}"
            )
        sql = "SELECT * FROM podium_tool_effects WHERE tenant_id = ?"
        params: builtins.list[Any] = [tenant_id]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        if thread_id is not None:
            sql += " AND thread_id = ?"
            params.append(thread_id)
        rows = self._db.query(f"{sql} ORDER BY updated_at DESC LIMIT ?", (*params, limit))
        return [effect_from_row(row) for row in rows]

    def _finish(
        self, key: EffectKey, status: EffectState, *, result: str | None, error: str | None
    ) -> Effect:
        now = self._clock()

        def finish(cur: Cursor) -> Effect:
            effect = _get(cur, key)
            if effect.status == "completed":
                return effect
            cur.execute(
                "UPDATE podium_tool_effects SET status = ?, result = ?, error = ?, "
                f"finished_at = ?, updated_at = ? {_WHERE_KEY}",
                (status, result, error, now, now, *_key(key)),
            )
            return _get(cur, key)

        return self._db.transact(finish, lock=key.lock())


def _key(key: EffectKey) -> tuple[str, str, str, str]:
    return (key.tenant_id, key.thread_id, key.task_id, key.call_key)


def _find(cur: Cursor, key: EffectKey) -> Effect | None:
    rows = cur.query(f"SELECT * FROM podium_tool_effects {_WHERE_KEY}", _key(key))
    return effect_from_row(rows[0]) if rows else None


def _get(cur: Cursor, key: EffectKey) -> Effect:
    effect = _find(cur, key)
    if effect is None:
        raise EffectNotFound(key)
    return effect


def _json(args: Mapping[str, Any]) -> str:
    # Arguments are for people reading the ledger, so anything odd is kept as its str().
    return json.dumps(dict(args), default=str)


def _result_json(result: Result) -> str:
    try:
        return json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"tool result {result!r} is not JSON-serialisable ({exc}); record str(result) "
            "or a dict of JSON values"
        ) from exc
