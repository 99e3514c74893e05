"""Task lifecycle: the transition table, `transition`, `walk`, final states."""

from __future__ import annotations

import copy
from itertools import pairwise

import pytest

from podium.errors import IllegalTransition, RunError
from podium.lifecycle import (
    FINAL,
    SETTLED,
    TRANSITIONS,
    TaskStatus,
    can_transition,
    transition,
    walk,
)

S = TaskStatus

LEGAL = sorted(
    ((current, target) for current, targets in TRANSITIONS.items() for target in targets),
    key=lambda pair: (pair[0].value, pair[1].value),
)

ILLEGAL = [
    (S.QUEUED, S.RUNNING),
    (S.QUEUED, S.COMPLETED),
    (S.QUEUED, S.QUEUED),
    (S.INITIALIZING, S.COMPLETED),
    (S.INITIALIZING, S.WAITING),
    (S.RUNNING, S.QUEUED),
    (S.RUNNING, S.RETRYING),
    (S.RUNNING, S.RUNNING),
    (S.WAITING, S.COMPLETED),
    (S.FAILED, S.RUNNING),
    (S.FAILED, S.COMPLETED),
    (S.RETRYING, S.COMPLETED),
    (S.COMPLETED, S.RUNNING),
    (S.COMPLETED, S.FAILED),
    (S.DEAD_LETTERED, S.RETRYING),
    (S.CANCELLED, S.QUEUED),
]


def _task(status: str, **extra) -> dict:
    return {"id": "t1", "agent": "researcher", "status": str(status), **extra}


def _ids(pair: tuple[TaskStatus, TaskStatus]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


def test_the_table_covers_every_state():
    assert set(TRANSITIONS) == set(TaskStatus)
    for targets in TRANSITIONS.values():
        assert targets <= set(TaskStatus)


@pytest.mark.parametrize(("current", "target"), LEGAL, ids=[_ids(p) for p in LEGAL])
def test_every_legal_transition_succeeds_and_appends_history(current, target):
    earlier = {"from": "x", "to": str(current), "at": 1.0}
    task = _task(current, history=[earlier])

    moved = transition(task, target, at=42.0)

    assert moved["status"] == target.value
    assert moved["history"] == [earlier, {"from": current.value, "to": target.value, "at": 42.0}]
    assert moved["id"] == "t1" and moved["agent"] == "researcher"
    assert can_transition(current, target) is True


@pytest.mark.parametrize(("current", "target"), ILLEGAL, ids=[_ids(p) for p in ILLEGAL])
def test_illegal_transitions_raise_naming_task_states_and_allowed_targets(current, target):
    assert target not in TRANSITIONS[current], "the ILLEGAL table lists a legal move"
    assert can_transition(current, target) is False

    with pytest.raises(IllegalTransition) as info:
        transition(_task(current), target, at=1.0)

    err = info.value
    message = str(err)
    assert isinstance(err, RunError)
    assert (err.task_id, err.current, err.target) == ("t1", current.value, target.value)
    assert "'t1'" in message
    assert f"from {current.value!r} to {target.value!r}" in message
    allowed = sorted(t.value for t in TRANSITIONS[current])
    expected_tail = ", ".join(allowed) if allowed else "(none)"
    assert message.endswith(f"it may go to: {expected_tail}")


@pytest.mark.parametrize(
    "task",
    [
        _task(S.QUEUED),
        _task(S.RUNNING, history=[{"from": "initializing", "to": "running", "at": 1.0}]),
    ],
    ids=["no-history", "with-history"],
)
def test_transition_does_not_mutate_its_input(task):
    before = copy.deepcopy(task)
    target = S.INITIALIZING if task["status"] == "queued" else S.COMPLETED

    moved = transition(task, target, at=2.0, reason="why")

    assert task == before
    assert moved is not task
    assert moved["history"] is not task.get("history")


@pytest.mark.parametrize(
    ("reason", "expected"),
    [(None, {}), ("", {}), ("tool timed out", {"reason": "tool timed out"})],
    ids=["none", "empty", "given"],
)
def test_reason_is_kept_only_when_given(reason, expected):
    moved = transition(_task(S.RUNNING), S.FAILED, at=3.0, reason=reason)
    assert moved["history"] == [{"from": "running", "to": "failed", "at": 3.0, **expected}]


def test_transition_accepts_plain_strings():
    moved = transition({"id": "t9", "status": "queued"}, "cancelled", at=0.5)
    assert moved["status"] == "cancelled"
    assert moved["history"] == [{"from": "queued", "to": "cancelled", "at": 0.5}]


@pytest.mark.parametrize(
    ("start", "targets", "end"),
    [
        (S.QUEUED, (), S.QUEUED),
        (S.QUEUED, (S.INITIALIZING, S.RUNNING, S.COMPLETED), S.COMPLETED),
        (S.RUNNING, (S.WAITING, S.RUNNING, S.WAITING, S.RUNNING), S.RUNNING),
        (S.RUNNING, (S.FAILED, S.RETRYING, S.RUNNING, S.COMPLETED), S.COMPLETED),
        (S.RUNNING, (S.FAILED, S.DEAD_LETTERED), S.DEAD_LETTERED),
        (S.WAITING, (S.CANCELLED,), S.CANCELLED),
    ],
    ids=["nothing", "happy-path", "wait-loop", "retry", "dead-letter", "cancel"],
)
def test_walk_applies_transitions_in_order(start, targets, end):
    task = _task(start)
    walked = walk(task, *targets, at=7.0, reason="step")

    assert walked["status"] == end.value
    path = [start.value, *(t.value for t in targets)]
    history = walked.get("history", [])
    assert [(h["from"], h["to"]) for h in history] == list(pairwise(path))
    assert all(h["at"] == 7.0 and h["reason"] == "step" for h in history)
    assert task == _task(start)


def test_walk_stops_at_the_first_illegal_step():
    task = _task(S.QUEUED)
    with pytest.raises(IllegalTransition, match="from 'initializing' to 'completed'"):
        walk(task, S.INITIALIZING, S.COMPLETED, at=1.0)
    assert task == _task(S.QUEUED)


def test_final_and_settled_states():
    assert {S.COMPLETED, S.DEAD_LETTERED, S.CANCELLED} == FINAL
    assert FINAL | {S.FAILED} == SETTLED


@pytest.mark.parametrize("final", sorted(FINAL), ids=lambda s: s.value)
def test_final_states_have_no_exits(final):
    assert TRANSITIONS[final] == frozenset()
    for target in TaskStatus:
        assert can_transition(final, target) is False
        with pytest.raises(IllegalTransition, match=r"may go to: \(none\)$"):
            transition(_task(final), target, at=1.0)


@pytest.mark.parametrize("state", sorted(set(TaskStatus) - FINAL), ids=lambda s: s.value)
def test_every_non_final_state_can_be_cancelled(state):
    assert can_transition(state, S.CANCELLED)
