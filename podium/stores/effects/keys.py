"""Values and errors of the tool-effect ledger (`podium.stores.effects.store`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

EffectState = Literal["started", "completed", "failed", "released"]
EFFECT_STATES: tuple[str, ...] = get_args(EffectState)

#: What a tool call returned, stored as JSON text.
Result = str | dict[str, Any] | list[Any]


@dataclass(frozen=True, slots=True)
class EffectKey:
    """Identifies one side effect: a tool call of a task in a thread of a tenant.

    Attributes:
        call_key: The tool call id, or a user-supplied idempotency key (which survives a
            re-planned call whose model-generated id changed).
    """

    tenant_id: str
    thread_id: str
    task_id: str
    call_key: str

    def lock(self) -> str:
        return f"effects:{self.tenant_id}:{self.thread_id}:{self.task_id}:{self.call_key}"


@dataclass(frozen=True, slots=True)
class Started:
    """No result yet and nothing in flight: the caller runs the tool, then `complete`/`fail`.

    Attributes:
        attempt: 1 for the first run; higher after `fail` or a "rerun" resolution.
    """

    attempt: int = 1


@dataclass(frozen=True, slots=True)
class Recorded:
    """The effect already happened: return `result` instead of running the tool again."""

    result: Result


@dataclass(frozen=True, slots=True)
class InDoubt:
    """A call started at `started_at` and never reported: it crashed, or is still running.

    Its effect may or may not have happened. Re-run only an idempotent tool; otherwise
    ask a human, who settles it with `EffectLedger.resolve_in_doubt`.
    """

    started_at: float
    attempt: int = 1


EffectStatus = Started | Recorded | InDoubt


@dataclass(frozen=True, slots=True)
class Effect:
    """One row of the ledger.

    Attributes:
        status: "started" (running, or crashed: in doubt), "completed", "failed" (may run
            again), or "released" (an in-doubt call a human released for a re-run).
        result: The recorded result once completed.
        error: The error of the last failed run.
        attempts: How many times `begin` let the call run.
        resolved_by: Who settled an in-doubt call; `resolution` says how
            ("rerun" or "mark_done").
    """

    key: EffectKey
    tool: str
    args: dict[str, Any]
    status: EffectState
    result: Result | None
    error: str | None
    attempts: int
    started_at: float
    finished_at: float | None
    updated_at: float
    resolved_by: str | None
    resolution: str | None


def effect_from_row(row: Mapping[str, Any]) -> Effect:
    return Effect(
        key=EffectKey(row["tenant_id"], row["thread_id"], row["task_id"], row["call_key"]),
        tool=row["tool"],
        args=json.loads(row["args"]),
        status=row["status"],
        result=None if row["result"] is None else json.loads(row["result"]),
        error=row["error"],
        attempts=row["attempts"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        updated_at=row["updated_at"],
        resolved_by=row["resolved_by"],
        resolution=row["resolution"],
    )
