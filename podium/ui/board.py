"""The task board: one row per task of the current round, from the checkpoint or live events.

`board_rows(values, gates)` reads a thread's state (tasks, results, usage) as the CLI's
task table does. `LiveBoard` starts from the same state and applies the custom stream
events of a run (`plan`, `task_started`, `task_finished`, `task_reassigned`,
`task_waiting`, `gate_raised`, `retry`, `run_finished`), so the page can redraw the board as
tasks move.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from podium.lifecycle import TaskStatus
from podium.words import count

#: Columns of the board, in order, as the page shows them.
COLUMNS: tuple[str, ...] = ("task", "agent", "status", "needs", "elapsed", "tokens", "note")


@dataclass(frozen=True, slots=True)
class BoardRow:
    """One task as the board shows it.

    Attributes:
        status: A lifecycle status (`podium.TaskStatus`), or "waiting" while a gate of the
            task is open (the checkpoint still says where the task was before the gate).
        started, finished: Seconds since the epoch, when known.
        tokens: Total tokens of the task's result; None while it has no result.
    """

    task: str
    agent: str
    status: str
    needs: tuple[str, ...] = ()
    started: float | None = None
    finished: float | None = None
    tokens: int | None = None
    note: str = ""

    def elapsed(self, now: float) -> str:
        """ "1.25s" for a finished task, "0.40s…" for one still going, "-" before it starts."""
        if self.started is None:
            return "-"
        if self.finished is not None:
            return f"{max(0.0, self.finished - self.started):.2f}s"
        return f"{max(0.0, now - self.started):.2f}s…"

    def record(self, now: float) -> dict[str, Any]:
        """The row as a dict keyed by `COLUMNS` (what a table widget takes), every cell
        text: a task with no tokens yet shows "-", never an empty value the widget would
        print as "None"."""
        return {
            "task": self.task,
            "agent": self.agent,
            "status": self.status,
            "needs": ", ".join(self.needs),
            "elapsed": self.elapsed(now),
            "tokens": "-" if self.tokens is None else f"{self.tokens:,}",
            "note": self.note,
        }


def board_rows(values: Mapping[str, Any], gates: Iterable[Any] = ()) -> list[BoardRow]:
    """The board of a thread's latest round from its checkpoint values.

    Args:
        values: The thread's state values (`app.get_state(config).values`).
        gates: Its pending gates (`podium.gates.decision.pending_gates`); a task with an open
            gate shows as "waiting" with what the gate asks in its note.
    """
    tasks = values.get("tasks") or {}
    results = values.get("results") or {}
    waiting = {g.request.task_id: g.request for g in gates if g.request.task_id}
    rows = []
    for task in tasks.values():
        usage = (results.get(task["id"]) or {}).get("usage")
        row = BoardRow(
            task=task["id"],
            agent=task["agent"],
            status=task["status"],
            needs=tuple(task.get("depends_on") or ()),
            started=task.get("started_at"),
            finished=task.get("finished_at"),
            tokens=None if usage is None else int(usage.get("total_tokens", 0)),
            note=_note(task),
        )
        request = waiting.get(task["id"])
        if request is not None and row.status not in (TaskStatus.COMPLETED, TaskStatus.FAILED):
            note = _gate_note(request)
            row = replace(row, status=TaskStatus.WAITING.value, finished=None, note=note)
        rows.append(row)
    return rows


def _note(task: Mapping[str, Any]) -> str:
    note = task.get("error") or ""
    if (
        not note
        and task.get("status") in (TaskStatus.CANCELLED, TaskStatus.RETRYING)
        and task.get("history")
    ):
        note = task["history"][-1].get("reason", "")
    return " ".join(str(note).split())[:120]


def _gate_note(request: Any) -> str:
    if request.kind == "tool":
        return f"approval needed: {request.tool}"
    if request.kind == "question":
        return "question for a person"
    if request.kind == "effect":
        return f"effect in doubt: {request.tool} (done, retry or abandon?)"
    return f"approval needed: {request.kind}"


class LiveBoard:
    """The board of a run in progress, updated from its custom stream events.

    Args:
        rows: Where the board starts (e.g. `board_rows` of the thread before a resume).
        clock: Seconds since the epoch, for the elapsed time of running tasks.
    """

    def __init__(
        self, rows: Iterable[BoardRow] = (), *, clock: Callable[[], float] = time.time
    ) -> None:
        self._rows: dict[str, BoardRow] = {row.task: row for row in rows}
        self._clock = clock
        self.status: str | None = None
        self.events = 0

    def apply(self, event: Mapping[str, Any]) -> None:
        """Apply one event; events of other kinds (or other shapes) are ignored."""
        kind = event.get("event")
        self.events += 1
        if kind == "plan":
            # A plan starts a round: its tasks replace the previous round's board.
            self._rows = {
                t["id"]: BoardRow(
                    t["id"], t["agent"], TaskStatus.QUEUED.value, tuple(t.get("depends_on") or ())
                )
                for t in event.get("tasks") or ()
            }
        elif kind == "run_finished":
            self.status = event.get("status")
        elif kind in (
            "task_started",
            "task_finished",
            "task_reassigned",
            "task_waiting",
            "gate_raised",
            "retry",
        ):
            self._task_event(kind, event)

    def _task_event(self, kind: str, event: Mapping[str, Any]) -> None:
        task_id = event.get("task_id")
        if not task_id:
            return  # a plan or answer gate: no task row to mark
        at = event.get("at")
        row = self._rows.get(task_id) or BoardRow(
            task_id, event.get("agent") or "?", TaskStatus.QUEUED.value
        )
        if kind == "task_started":
            row = replace(
                row, status=event.get("status") or TaskStatus.RUNNING.value, started=at, note=""
            )
        elif kind == "task_finished":
            note = event.get("error") or ""
            row = replace(
                row,
                status=event.get("status") or TaskStatus.COMPLETED.value,
                finished=at,
                note=note,
            )
        elif kind == "task_reassigned":
            row = replace(
                row,
                agent=event.get("agent") or row.agent,
                status=event.get("status") or TaskStatus.RETRYING.value,
                note=f"reassigned: {event.get('error') or ''}".strip(),
            )
        elif kind == "task_waiting":
            row = replace(row, status=TaskStatus.WAITING.value, note=event.get("reason") or "")
        elif kind == "retry":
            failed = f"{event.get('what')} failed ({event.get('error_type')})"
            note = f"retry {event.get('attempt', 0) + 1}: {failed}"
            row = replace(row, note=note)
        else:
            row = replace(row, status=TaskStatus.WAITING.value, note=_gate_event_note(event))
        self._rows[task_id] = replace(row, note=" ".join(str(row.note).split())[:120])

    def rows(self) -> list[BoardRow]:
        return list(self._rows.values())

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts for a table widget, elapsed times measured now."""
        now = self._clock()
        return [row.record(now) for row in self._rows.values()]

    def headline(self) -> str:
        """One line on the run: "planning…", or counts per status, then the run's status."""
        if not self._rows:
            return "planning…"
        counts: dict[str, int] = {}
        for row in self._rows.values():
            counts[row.status] = counts.get(row.status, 0) + 1
        parts = ", ".join(f"{n} {status}" for status, n in counts.items())
        tail = f" · run {self.status}" if self.status else ""
        return f"{count(len(self._rows), 'task')}: {parts}{tail}"


def _gate_event_note(event: Mapping[str, Any]) -> str:
    if event.get("kind") == "tool":
        return f"approval needed: {event.get('tool')}"
    if event.get("kind") == "effect":
        return f"effect in doubt: {event.get('tool')} (done, retry or abandon?)"
    return f"approval needed: {event.get('kind')}"


def records(rows: Iterable[BoardRow], now: float | None = None) -> list[dict[str, Any]]:
    """Rows as dicts for a table widget (see `BoardRow.record`)."""
    at = time.time() if now is None else now
    return [row.record(at) for row in rows]
