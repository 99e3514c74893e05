"""podium.ui.board: board rows from checkpoint values and from live run events."""

from __future__ import annotations

import pytest

from podium.gates.decision import PendingGate
from podium.gates.request import GateRequest
from podium.ui import BoardRow, LiveBoard, board_rows, records


def _task(task_id, agent, status, *, needs=(), started=None, finished=None, **extra):
    return {
        "id": task_id,
        "agent": agent,
        "instruction": f"do {task_id}",
        "depends_on": list(needs),
        "status": status,
        "history": extra.pop("history", []),
        "started_at": started,
        "finished_at": finished,
        **extra,
    }


def _gate(task_id: str, kind: str = "tool") -> PendingGate:
    request = GateRequest(
        gate_id="g-1",
        kind=kind,
        workflow="w",
        task_id=task_id,
        agent="writer",
        tool="publish_report" if kind == "tool" else None,
        requested_at=0.0,
    )
    return PendingGate("i-1", request)


VALUES = {
    "tasks": {
        "t1": _task("t1", "researcher", "completed", started=10.0, finished=10.5),
        "t2": _task("t2", "writer", "initializing", needs=["t1"]),
        "t3": _task(
            "t3",
            "analyst",
            "cancelled",
            needs=["t1"],
            history=[{"from": "queued", "to": "cancelled", "reason": "dependency t9 failed"}],
        ),
    },
    "results": {"t1": {"usage": {"total_tokens": 433}}},
}


def test_rows_from_state_with_tokens_elapsed_and_notes():
    rows = {r.task: r for r in board_rows(VALUES)}
    assert rows["t1"].record(now=99.0) == {
        "task": "t1",
        "agent": "researcher",
        "status": "completed",
        "needs": "",
        "elapsed": "0.50s",
        "tokens": "433",
        "note": "",
    }
    assert rows["t2"].tokens is None and rows["t2"].needs == ("t1",)
    # A task without tokens yet shows "-" (a table widget would print None as "None").
    assert rows["t2"].record(now=99.0)["tokens"] == "-"
    assert BoardRow("t", "a", "completed", tokens=12345).record(0.0)["tokens"] == "12,345"
    assert rows["t3"].note == "dependency t9 failed"


def test_a_task_with_an_open_gate_shows_waiting_with_what_is_asked():
    rows = {r.task: r for r in board_rows(VALUES, [_gate("t2")])}
    assert rows["t2"].status == "waiting"
    assert rows["t2"].note == "approval needed: publish_report"
    assert rows["t1"].status == "completed"  # other tasks untouched


def test_gates_without_a_task_leave_the_board_alone():
    rows = board_rows(VALUES, [_gate("", kind="answer")])
    assert [r.status for r in rows] == ["completed", "initializing", "cancelled"]


@pytest.mark.parametrize(
    ("row", "now", "expected"),
    [
        (BoardRow("t", "a", "queued"), 5.0, "-"),
        (BoardRow("t", "a", "running", started=1.0), 3.5, "2.50s…"),
        (BoardRow("t", "a", "completed", started=1.0, finished=1.25), 9.0, "0.25s"),
    ],
)
def test_elapsed(row, now, expected):
    assert row.elapsed(now) == expected


def test_live_board_follows_a_run():
    board = LiveBoard(clock=lambda: 12.0)
    assert board.headline() == "planning…"
    plan = [
        {"id": "t1", "agent": "researcher", "depends_on": []},
        {"id": "t2", "agent": "writer", "depends_on": ["t1"]},
    ]
    board.apply({"event": "plan", "tasks": plan, "at": 10.0})
    assert [r.status for r in board.rows()] == ["queued", "queued"]
    board.apply({"event": "task_started", "task_id": "t1", "status": "running", "at": 10.0})
    assert board.records()[0]["elapsed"] == "2.00s…"
    board.apply({"event": "task_finished", "task_id": "t1", "status": "completed", "at": 11.0})
    board.apply({"event": "task_started", "task_id": "t2", "status": "running", "at": 11.0})
    board.apply({"event": "gate_raised", "task_id": "t2", "kind": "tool", "tool": "publish"})
    rows = {r.task: r for r in board.rows()}
    assert rows["t1"].elapsed(99.0) == "1.00s"
    assert (rows["t2"].status, rows["t2"].note) == ("waiting", "approval needed: publish")
    assert board.headline() == "2 tasks: 1 completed, 1 waiting"
    board.apply({"event": "run_finished", "status": "completed"})
    assert board.headline().endswith("· run completed")


def test_live_board_reassignment_failure_and_a_new_round():
    board = LiveBoard(board_rows(VALUES))
    board.apply(
        {
            "event": "task_reassigned",
            "task_id": "t2",
            "agent": "librarian",
            "status": "retrying",
            "error": "timeout",
        }
    )
    row = {r.task: r for r in board.rows()}["t2"]
    assert (row.agent, row.status, row.note) == ("librarian", "retrying", "reassigned: timeout")
    board.apply({"event": "task_finished", "task_id": "t2", "status": "failed", "error": "boom"})
    assert {r.task: r for r in board.rows()}["t2"].note == "boom"
    board.apply({"event": "plan", "tasks": [{"id": "t1", "agent": "writer"}]})
    assert [(r.task, r.agent, r.status) for r in board.rows()] == [("t1", "writer", "queued")]


def test_live_board_shows_a_task_waiting_for_an_effect_in_doubt():
    board = LiveBoard(board_rows(VALUES))
    reason = "effect in doubt: pay started at 2026-01-01 10:00:00 UTC (attempt 1)"
    board.apply({"event": "task_waiting", "task_id": "t2", "status": "waiting", "reason": reason})
    row = {r.task: r for r in board.rows()}["t2"]
    assert (row.status, row.note) == ("waiting", reason)
    board.apply({"event": "gate_raised", "task_id": "t2", "kind": "effect", "tool": "pay"})
    row = {r.task: r for r in board.rows()}["t2"]
    assert (row.status, row.note) == ("waiting", "effect in doubt: pay (done, retry or abandon?)")


def test_live_board_notes_a_call_tried_again():
    board = LiveBoard(board_rows(VALUES))
    status = {r.task: r for r in board.rows()}["t2"].status
    retry = {"event": "retry", "task_id": "t2", "attempt": 1, "wait": 0.5}
    board.apply({**retry, "what": "model:gpt-4o-mini", "error_type": "APIConnectionError"})
    row = {r.task: r for r in board.rows()}["t2"]
    assert (row.status, row.note) == (
        status,
        "retry 2: model:gpt-4o-mini failed (APIConnectionError)",
    )


def test_unknown_events_and_plan_gates_are_ignored():
    board = LiveBoard(board_rows(VALUES))
    before = board.rows()
    board.apply({"event": "something_else"})
    board.apply({"event": "gate_raised", "kind": "plan", "task_id": None})
    board.apply({"not": "an event"})
    assert board.rows() == before


def test_records_columns_are_the_board_columns():
    from podium.ui import COLUMNS

    assert all(tuple(r) == COLUMNS for r in records(board_rows(VALUES), now=0.0))
