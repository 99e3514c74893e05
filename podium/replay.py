"""Replaying a dead letter: the task (and the dependents it cancelled) run again.

The replay works on the thread's latest checkpoint, so the results the run already
has are kept and only the dead-lettered branch runs again. Claiming the letter is
atomic: a second replay of the same letter is refused, so effects do not repeat.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import podium.lifecycle as lifecycle
import podium.names as names
from podium.context import RunContext
from podium.errors import DeadLetterStateError, ReplayError
from podium.governance.writers import holding_thread, holds_thread
from podium.lifecycle import RunStatus, TaskStatus
from podium.stores.dead_letters.letters import replay_result
from podium.stores.dead_letters.store import DeadLetter

log = logging.getLogger(__name__)


def requeued_tasks(
    tasks: dict[str, Any], task_id: str, *, agent: str | None, reason: str, at: float
) -> dict[str, Any]:
    """The task table changes of a replay: the task is dispatched again (optionally to
    another agent) and every task it cancelled goes back to the queue."""
    if task_id not in tasks:
        raise ReplayError(
            f"task {task_id!r} is not in the thread's current plan; the thread "
            "has moved on to another round, so the letter cannot be replayed"
        )
    changes = {}
    task = lifecycle.requeue(tasks[task_id], at=at, reason=reason)
    task = lifecycle.transition(task, TaskStatus.INITIALIZING, at=at)
    if agent:
        task = {**task, "agent": agent}
    changes[task_id] = task
    blocked = {task_id}
    for other_id, other in tasks.items():  # plans are small; dependents follow their deps
        if other["status"] == TaskStatus.CANCELLED and blocked & set(other["depends_on"]):
            changes[other_id] = lifecycle.requeue(other, at=at, reason=f"replay of {task_id}")
            blocked.add(other_id)
    return changes


def replay(
    app: Any,
    letter: DeadLetter,
    *,
    services: Any,
    context: RunContext,
    agent: str | None = None,
    stream_mode: str | None = None,
) -> Any:
    """Claim `letter`, put its task back on the thread, and run the thread on.

    The thread's writer lock (`podium.governance.writers.holding_thread`) is held from
    before the claim until the run ends, so the state written for the replay and the run
    that follows are one writer's: a run of the thread elsewhere is refused meanwhile, and
    a thread another run is running refuses the replay (`ThreadBusy`) before the letter
    is claimed.

    The letter's outcome is recorded before the lock is given back, so no later replay
    can take for stopped a replay that only has its outcome left to write. A run that
    raises once the task is back on the thread (LangGraph's recursion limit, say), or a
    stream whose reader stops early, finishes the letter as the thread stands, with why
    the run stopped: its task is no longer dead-lettered, so it cannot be put back again.
    A later replay is refused and says how to run the thread on (`podium resume`); the
    run that finishes the thread records the task's final outcome on the letter.

    Returns the run's output, or with `stream_mode` its event stream (the replay starts
    when the stream is first read, and the outcome is recorded when it ends); `finish`
    returns the task's new status.
    """
    config = {"configurable": {"thread_id": letter.thread_id}}
    if stream_mode:
        return _streamed(app, letter, services, context, agent, config, stream_mode)
    with holding_thread(app, config, context) as held:
        claimed = _requeue(app, letter, services, context, agent, held)
        try:
            output = app.invoke(None, held, context=context)
        except BaseException as exc:
            _finish_as_it_stands(app, claimed, services, held, exc)
            raise
        _finish(app, claimed, services, held)
        return output


def _streamed(
    app: Any,
    letter: DeadLetter,
    services: Any,
    context: RunContext,
    agent: str | None,
    config: Any,
    stream_mode: str,
) -> Iterator[Any]:
    with holding_thread(app, config, context) as held:
        claimed = _requeue(app, letter, services, context, agent, held)
        try:
            yield from app.stream(None, held, context=context, stream_mode=stream_mode)
        except BaseException as exc:  # the reader stopped early, or the run raised
            _finish_as_it_stands(app, claimed, services, held, exc)
            raise
        _finish(app, claimed, services, held)


def _finish_as_it_stands(
    app: Any, claimed: DeadLetter, services: Any, config: Any, exc: BaseException
) -> None:
    """The replay's run stopped early (it raised, or its reader stopped) after the task was
    put back: finish the letter as the thread stands, while the lock is still held, so no
    replay takes it over meanwhile. Sent back to `pending`, the letter could not be
    replayed again: its task is no longer dead-lettered. If even this fails, the letter
    stays `replaying` and the next replay takes it over."""
    try:
        _finish(app, claimed, services, config, stopped=exc)
    except Exception:
        log.warning("could not record the replay of %s", claimed.id, exc_info=True)


def _requeue(
    app: Any,
    letter: DeadLetter,
    services: Any,
    context: RunContext,
    agent: str | None,
    config: Any,
) -> DeadLetter:
    """Claim the letter and write its task back into the thread's state (under the
    thread's lock: `config` carries it); returns the claimed letter.

    A letter an earlier replay claimed and never finished (its process died, or an outage
    stopped its run) is taken over: holding the thread's lock proves that replay is gone.
    Its task is put back only if that replay stopped before putting it back; otherwise
    the thread goes on from its last checkpoint, so nothing the earlier replay did runs
    twice (a task it already settled does not run again).
    """
    claimed = _claim(app, letter, services, context, config)
    try:
        values = app.get_state(config).values
        tasks = values.get("tasks") or {}
        task = tasks.get(claimed.task_id)
        if "took_over_from" in (claimed.resolution or {}) and not _stopped_before_requeue(
            task, claimed
        ):
            return claimed
        if task and task.get("status") not in lifecycle.REPLAYABLE:
            raise ReplayError(_put_back_already(claimed, str(task.get("status"))))
        changes = requeued_tasks(
            tasks,
            claimed.task_id,
            agent=agent,
            reason=f"replay of dead letter {claimed.id} by {context.user_id}",
            at=time.time(),
        )
        update = {"tasks": changes, "status": RunStatus.RUNNING.value, "error": None}
        app.update_state(config, update, as_node=names.SUPERVISOR)
    except Exception as exc:
        _failed(services, claimed, exc)
        raise
    return claimed


def _claim(
    app: Any, letter: DeadLetter, services: Any, context: RunContext, config: Any
) -> DeadLetter:
    """Claim the letter; a letter already replayed whose thread has not finished (that
    replay's run stopped early) is refused with how to run the thread on."""
    try:
        claimed: DeadLetter = services.dead_letters.claim_for_replay(
            letter.id, letter.tenant_id, by=context.user_id, take_over=holds_thread(config)
        )
    except DeadLetterStateError as refused:
        if refused.status != "replayed":
            raise
        snapshot = app.get_state(config)
        if not (snapshot.next or snapshot.tasks):
            raise
        current = services.dead_letters.get(letter.id, letter.tenant_id)
        raise DeadLetterStateError(current, refused.action, _run_on(current)) from None
    return claimed


def _run_on(letter: DeadLetter) -> str:
    result = (letter.resolution or {}).get("result") or {}
    why = f" when its run stopped ({result['stopped']})" if result.get("stopped") else ""
    return (
        f"That replay left task {letter.task_id!r} {result.get('status')!r}{why}, and thread "
        f"{letter.thread_id!r} has not finished: run it on from its last checkpoint with "
        f"`podium resume {letter.thread_id} --tenant {letter.tenant_id}`"
    )


def _put_back_already(letter: DeadLetter, status: str) -> str:
    return (
        f"task {letter.task_id!r} is {status!r} on thread {letter.thread_id!r}, no longer "
        "dead-lettered: an earlier replay put it back and the thread went on with it, so "
        "replaying the letter would run it twice. Run the thread on with "
        f"`podium resume {letter.thread_id} --tenant {letter.tenant_id}` if it has not "
        f"finished, and close the letter with `podium dlq discard {letter.id} --reason "
        f"'put back by an earlier replay' --tenant {letter.tenant_id}`"
    )


def _stopped_before_requeue(task: Any, claimed: DeadLetter) -> bool:
    """Whether the replay that claimed `claimed` stopped before it put the task back: the
    task is still settled by this letter (a task the replay put back is in progress or
    settled again, and a task that failed for good again carries a new letter)."""
    if not task:
        return True  # requeued_tasks explains why the letter cannot be replayed
    return task.get("status") in lifecycle.REPLAYABLE and task.get("dead_letter") in (
        None,
        claimed.id,
    )


def _failed(services: Any, claimed: DeadLetter, exc: Exception) -> None:
    services.dead_letters.finish_replay(
        claimed.id,
        claimed.tenant_id,
        ok=False,
        result={"error": str(exc), "error_type": type(exc).__name__},
    )


def finish(app: Any, letter: DeadLetter, *, services: Any) -> str:
    """The replayed task's new status, once the replay of `letter` ended.

    A replay records its outcome itself (a streamed one also when its reader stopped
    early or its run raised: the letter is then finished as the thread stands); one
    that could not is finished here as it stands.
    """
    current = services.dead_letters.get(letter.id, letter.tenant_id)
    recorded = ((current.resolution or {}).get("result") or {}).get("status")
    if current.status == "replayed" and recorded is not None:
        return str(recorded)
    return _finish(app, letter, services, {"configurable": {"thread_id": letter.thread_id}})


def _finish(
    app: Any, letter: DeadLetter, services: Any, config: Any, stopped: BaseException | None = None
) -> str:
    """Record the replay's outcome on the letter; returns the task's new status.

    A replay that ran is finished whatever its outcome; when the task failed for good
    again, the run filed a new dead letter, named in the result, so one letter stays open.
    A run that stopped early (`stopped`) is finished as the thread stands, with why.
    """
    values = app.get_state(config).values
    task = (values.get("tasks") or {}).get(letter.task_id) or {}
    result = replay_result(task, letter.id)
    if stopped is not None:
        # The run that finishes the thread settles the letter (`podium.nodes.letters`);
        # the round tells it the task it finishes is the one this replay put back.
        result["stopped"] = _why_stopped(stopped)
        result["round"] = values.get("round", 0)
    services.dead_letters.finish_replay(letter.id, letter.tenant_id, ok=True, result=result)
    return str(result["status"])


def _why_stopped(exc: BaseException) -> str:
    if isinstance(exc, GeneratorExit):
        return "its reader stopped reading the run's events"
    # The first line says what happened; LangGraph adds a troubleshooting link after it.
    text = " ".join(str(exc).strip().split("\n", 1)[0].split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
