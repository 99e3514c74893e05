"""Values and errors of the dead-letter store (`podium.stores.dead_letters.store`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args

DeadLetterStatus = Literal["pending", "replaying", "replayed", "discarded"]
STATUSES: tuple[str, ...] = get_args(DeadLetterStatus)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One failed try of the task.

    Attributes:
        agent: The agent that ran it (the fallback agent for a fallback try).
        attempt: 1 for the first try, counting on across agents and replays.
        error_type: The exception class name, e.g. "TimeoutError".
        error: The error message.
        at: When it failed (seconds since the epoch).
    """

    agent: str
    attempt: int
    error_type: str
    error: str
    at: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attempt:
        """An attempt from a dict with exactly the keys agent, attempt, error_type, error, at."""
        names = [f.name for f in fields(cls)]
        if set(data) != set(names):
            raise ValueError(
                f"dead-letter attempt {dict(data)!r} must have exactly the keys {', '.join(names)}"
            )
        return cls(
            agent=str(data["agent"]),
            attempt=int(data["attempt"]),
            error_type=str(data["error_type"]),
            error=str(data["error"]),
            at=float(data["at"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A task that failed for good, with the context needed to replay it.

    Attributes:
        id: Short unique id, e.g. "dl-3f9a2c1b7e04".
        tenant_id: Owning tenant.
        workflow: Workflow name.
        thread_id: The thread the task ran in.
        task_id: The plan task that failed.
        agent: The agent the task was assigned to.
        inputs: The task and its dependency inputs (JSON).
        attempts: Every failed try, oldest first, replays included.
        last_checkpoint_id: The last good checkpoint to replay from.
        checkpoint_ns: Its checkpoint namespace ("" for the root graph).
        status: "pending", "replaying", "replayed" or "discarded".
        created_at: When the task was dead-lettered.
        updated_at: Last status change.
        resolution: None while pending and never replayed. Otherwise a dict:
            replaying {"replay_by", "replay_started_at"}; replayed adds "finished_at" and
            "result" (`replay_result`); pending after a failed replay {"last_replay":
            {...the same keys}}; discarded {"discarded_by", "reason", "discarded_at"}.
            A replay whose run stopped early (it raised, or its reader stopped) leaves the
            thread unfinished: its result adds "stopped" (why) and "round". The run that
            finishes the thread settles the letter: "result" becomes the task's final
            outcome, the stopped one moves to "run_stopped", and "thread_finished_at" is
            added.
    """

    id: str
    tenant_id: str
    workflow: str
    thread_id: str
    task_id: str
    agent: str
    inputs: dict[str, Any]
    attempts: tuple[Attempt, ...]
    last_checkpoint_id: str | None
    checkpoint_ns: str
    status: DeadLetterStatus
    created_at: float
    updated_at: float
    resolution: dict[str, Any] | None


def to_row(letter: DeadLetter) -> tuple[Any, ...]:
    """The INSERT parameters, in column order (non-JSON inputs are stored as their str())."""
    return (
        letter.id,
        letter.tenant_id,
        letter.workflow,
        letter.thread_id,
        letter.task_id,
        letter.agent,
        json.dumps(letter.inputs, default=str),
        json.dumps([a.to_dict() for a in letter.attempts]),
        letter.last_checkpoint_id,
        letter.checkpoint_ns,
        letter.status,
        letter.created_at,
        letter.updated_at,
        None if letter.resolution is None else json.dumps(letter.resolution, default=str),
    )


def from_row(row: Mapping[str, Any]) -> DeadLetter:
    return DeadLetter(
        id=row["id"],
        tenant_id=row["tenant_id"],
        workflow=row["workflow"],
        thread_id=row["thread_id"],
        task_id=row["task_id"],
        agent=row["agent"],
        inputs=json.loads(row["inputs"]),
        attempts=tuple(Attempt.from_dict(a) for a in json.loads(row["attempts"])),
        last_checkpoint_id=row["last_checkpoint_id"],
        checkpoint_ns=row["checkpoint_ns"],
        status=row["status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        resolution=None if row["resolution"] is None else json.loads(row["resolution"]),
    )


def replay_result(task: Mapping[str, Any], letter_id: str) -> dict[str, Any]:
    """The `result` a replay of letter `letter_id` records from the task as the thread has
    it: its status, agent and error, and the new letter it was filed under when it failed
    for good again (so one letter of the task stays open)."""
    result = {
        "status": str(task.get("status", "missing")),
        "agent": task.get("agent"),
        "error": task.get("error"),
    }
    if task.get("dead_letter") and task["dead_letter"] != letter_id:
        result["new_dead_letter"] = task["dead_letter"]
    return result
