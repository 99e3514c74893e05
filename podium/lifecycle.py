"""Task states and the transitions between them. Pure: no I/O, no clock.

queued -> initializing -> running -> (waiting -> running)* -> completed | failed
failed -> retrying -> running; failed -> dead_lettered; any non-final -> cancelled.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from podium.errors import IllegalTransition


class TaskStatus(StrEnum):
    QUEUED = "queued"
    INITIALIZING = "initializing"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    RETRYING = "retrying"
    DEAD_LETTERED = "dead_lettered"
    CANCELLED = "cancelled"


class RunStatus(StrEnum):
    """A run's status (`WorkflowState.status`), as `podium show`, the app and the server read it."""

    RUNNING = "running"
    #: An operator gate holds a task (an effect in doubt, a question, a tool approval).
    WAITING = "waiting"
    AWAITING_PLAN_APPROVAL = "awaiting_plan_approval"
    AWAITING_ANSWER_APPROVAL = "awaiting_answer_approval"
    COMPLETED = "completed"
    #: Some tasks delivered, others did not; the answer says which.
    PARTIAL = "partial"
    FAILED = "failed"


#: Run statuses after which the run does nothing more without a new input.
RUN_FINISHED: frozenset[RunStatus] = frozenset(
    {RunStatus.COMPLETED, RunStatus.PARTIAL, RunStatus.FAILED}
)

S = TaskStatus

TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    S.QUEUED: frozenset({S.INITIALIZING, S.CANCELLED}),
    S.INITIALIZING: frozenset({S.RUNNING, S.FAILED, S.CANCELLED}),
    S.RUNNING: frozenset({S.WAITING, S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.WAITING: frozenset({S.RUNNING, S.FAILED, S.CANCELLED}),
    S.FAILED: frozenset({S.RETRYING, S.DEAD_LETTERED, S.CANCELLED}),
    S.RETRYING: frozenset({S.RUNNING, S.FAILED, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.DEAD_LETTERED: frozenset(),
    S.CANCELLED: frozenset(),
}

#: States a task never leaves.
FINAL: frozenset[TaskStatus] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
#: States after which a task will not produce a result in this run without intervention.
SETTLED: frozenset[TaskStatus] = FINAL | {S.FAILED}


def can_transition(current: str, target: str) -> bool:
    """Whether `current -> target` is a legal lifecycle transition."""
    return TaskStatus(target) in TRANSITIONS[TaskStatus(current)]


def transition(
    task: dict[str, Any], target: str, *, at: float, reason: str | None = None
) -> dict[str, Any]:
    """Return a copy of `task` moved to `target`, with the transition appended to its history.

    Args:
        task: A task record (see `podium.state.TaskRecord`); not modified.
        target: The state to move to.
        at: The time of the transition (seconds since the epoch), passed in so this stays pure.
        reason: Why, kept in the history (failures, cancellations, reassignments).

    Raises:
        IllegalTransition: If the lifecycle does not allow the move.
    """
    current = TaskStatus(task["status"])
    goal = TaskStatus(target)
    if goal not in TRANSITIONS[current]:
        raise IllegalTransition(task["id"], current.value, goal.value, TRANSITIONS[current])
    entry: dict[str, Any] = {"from": current.value, "to": goal.value, "at": at}
    if reason:
        entry["reason"] = reason
    return {**task, "status": goal.value, "history": [*task.get("history", ()), entry]}


#: States an operator may replay a task from (a dead letter, or a dependent it cancelled).
REPLAYABLE: frozenset[TaskStatus] = frozenset({S.DEAD_LETTERED, S.CANCELLED, S.FAILED})


def requeue(task: dict[str, Any], *, at: float, reason: str) -> dict[str, Any]:
    """An operator's replay: a settled task goes back to `queued` for a new attempt.

    This is the one way out of a final state, and only by an explicit replay (`podium dlq
    replay`); the run itself never takes it. The history keeps every earlier transition.

    Raises:
        IllegalTransition: for a task that is not dead-lettered, cancelled or failed.
    """
    current = TaskStatus(task["status"])
    if current not in REPLAYABLE:
        raise IllegalTransition(task["id"], current.value, S.QUEUED.value, ())
    entry = {"from": current.value, "to": S.QUEUED.value, "at": at, "reason": reason}
    return {
        **task,
        "status": S.QUEUED.value,
        "error": None,
        "history": [*task.get("history", ()), entry],
    }


def walk(
    task: dict[str, Any], *targets: str, at: float, reason: str | None = None
) -> dict[str, Any]:
    """Apply several transitions in order (e.g. running then completed)."""
    for target in targets:
        task = transition(task, target, at=at, reason=reason)
    return task
