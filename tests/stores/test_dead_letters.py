"""Dead letters: context round trip, tenant isolation and the claim/replay/discard states."""

from __future__ import annotations

import re
import subprocess
import sys
import threading

import pytest

from podium.storage.database import open_database
from podium.storage.urls import parse_url
from podium.stores.dead_letters.store import (
    Attempt,
    DeadLetter,
    DeadLetterNotFound,
    DeadLetters,
    DeadLetterStateError,
)
from tests.helpers import Clock

INPUTS = {
    "task": {"id": "t2", "agent": "writer", "instruction": "Write it", "depends_on": ["t1"]},
    "dependencies": {"t1": {"result": "facts", "usage": {"tokens": 12}}},
}
ATTEMPTS = [
    {"agent": "writer", "attempt": 1, "error_type": "TimeoutError", "error": "slow", "at": 990.0},
    Attempt(agent="editor", attempt=2, error_type="ValueError", error="bad", at=995.0),
]


def _add(letters: DeadLetters, tenant: str, **overrides) -> DeadLetter:
    fields = {
        "tenant_id": tenant,
        "workflow": "research_brief",
        "thread_id": f"{tenant}-thread",
        "task_id": "t2",
        "agent": "writer",
        "inputs": INPUTS,
        "attempts": ATTEMPTS,
        "last_checkpoint_id": "1ef-abc",
        "checkpoint_ns": "",
    }
    return letters.add(**(fields | overrides))


def test_full_context_round_trip(db, tenant):
    letters = DeadLetters(db, clock=Clock())
    letter = _add(letters, tenant, checkpoint_ns="worker:7")
    assert letter.id.startswith("dl-") and len(letter.id) == 15
    assert letters.get(letter.id, tenant) == letter
    assert letters.list(tenant) == [letter]
    assert (letter.status, letter.created_at, letter.resolution) == ("pending", 1000.0, None)
    assert letter.inputs == INPUTS
    assert letter.attempts[0] == Attempt("writer", 1, "TimeoutError", "slow", 990.0)
    assert letter.attempts[1].agent == "editor"
    assert (letter.last_checkpoint_id, letter.checkpoint_ns) == ("1ef-abc", "worker:7")
    assert (letter.workflow, letter.thread_id, letter.task_id, letter.agent) == (
        "research_brief",
        f"{tenant}-thread",
        "t2",
        "writer",
    )


def test_the_same_failure_is_dead_lettered_once(db, tenant):
    letters = DeadLetters(db, clock=Clock())
    first = _add(letters, tenant)
    assert _add(letters, tenant, attempts=ATTEMPTS[:1]) == first
    later = _add(letters, tenant, last_checkpoint_id="1ef-later")
    other_task = _add(letters, tenant, task_id="t3")
    assert len({first.id, later.id, other_task.id}) == 3
    assert len(letters.list(tenant)) == 3


def test_tenants_never_see_each_others_letters(db, tenant):
    letters = DeadLetters(db)
    letter = _add(letters, tenant)
    other = f"{tenant}-b"
    assert letters.list(other) == []
    message = rf"no dead letter {letter.id!r} for tenant {other!r}; .*DeadLetters.list"
    for action in (
        lambda: letters.get(letter.id, other),
        lambda: letters.claim_for_replay(letter.id, other, by="mallory"),
        lambda: letters.discard(letter.id, other, by="mallory", reason="x"),
        lambda: letters.finish_replay(letter.id, other, ok=True, result={}),
    ):
        with pytest.raises(DeadLetterNotFound, match=message):
            action()
    assert letters.get(letter.id, tenant).status == "pending"
    with pytest.raises(DeadLetterNotFound, match="'dl-missing'"):
        letters.get("dl-missing", tenant)


def test_replay_succeeds_once_and_never_again(db, tenant):
    clock = Clock()
    letters = DeadLetters(db, clock=clock)
    letter = _add(letters, tenant)
    clock.now = 1010.0
    claimed = letters.claim_for_replay(letter.id, tenant, by="ana")
    assert (claimed.status, claimed.updated_at) == ("replaying", 1010.0)
    assert claimed.resolution == {"replay_by": "ana", "replay_started_at": 1010.0}
    with pytest.raises(DeadLetterStateError, match="already being replayed by 'ana'"):
        letters.claim_for_replay(letter.id, tenant, by="bob")
    clock.now = 1020.0
    done = letters.finish_replay(letter.id, tenant, ok=True, result={"thread_id": "r1"})
    assert done.status == "replayed"
    assert done.resolution == {
        "replay_by": "ana",
        "replay_started_at": 1010.0,
        "finished_at": 1020.0,
        "result": {"thread_id": "r1"},
    }
    assert letters.list(tenant, status="replayed") == [done]
    with pytest.raises(DeadLetterStateError, match="already replayed; replaying it again"):
        letters.claim_for_replay(letter.id, tenant, by="bob")
    with pytest.raises(DeadLetterStateError, match=rf"cannot discard dead letter {letter.id!r}"):
        letters.discard(letter.id, tenant, by="bob", reason="too late")


def test_failed_replay_returns_to_pending_with_the_new_error(db, tenant):
    clock = Clock()
    letters = DeadLetters(db, clock=clock)
    letter = _add(letters, tenant)
    letters.claim_for_replay(letter.id, tenant, by="ana")
    clock.now = 1030.0
    result = {"error": "still broken", "error_type": "ToolError"}
    again = letters.finish_replay(letter.id, tenant, ok=False, result=result)
    assert again.status == "pending"
    assert again.attempts[-1] == Attempt("writer", 3, "ToolError", "still broken", 1030.0)
    assert again.resolution is not None
    assert again.resolution["last_replay"]["replay_by"] == "ana"
    assert letters.claim_for_replay(letter.id, tenant, by="bob").status == "replaying"


def test_a_replay_that_stopped_is_taken_over_only_by_one_holding_its_thread(db, tenant):
    clock = Clock()
    letters = DeadLetters(db, clock=clock)
    letter = _add(letters, tenant)
    letters.claim_for_replay(letter.id, tenant, by="ana")  # then ana's process died
    # Without the thread's writer lock nothing proves ana's replay is gone.
    with pytest.raises(DeadLetterStateError, match="already being replayed by 'ana'"):
        letters.claim_for_replay(letter.id, tenant, by="bob")
    clock.now = 1040.0
    taken = letters.claim_for_replay(letter.id, tenant, by="bob", take_over=True)
    assert (taken.status, taken.updated_at) == ("replaying", 1040.0)
    assert taken.resolution == {
        "replay_by": "bob",
        "replay_started_at": 1040.0,
        "took_over_from": {"replay_by": "ana", "replay_started_at": 1000.0},
    }
    done = letters.finish_replay(letter.id, tenant, ok=True, result={"status": "completed"})
    assert done.status == "replayed"
    # A finished letter is never taken over: replaying it again would repeat its effects.
    with pytest.raises(DeadLetterStateError, match="already replayed"):
        letters.claim_for_replay(letter.id, tenant, by="carol", take_over=True)
    other = _add(letters, tenant, task_id="t3")
    letters.discard(other.id, tenant, by="bob", reason="duplicate")
    with pytest.raises(DeadLetterStateError, match="discarded"):
        letters.claim_for_replay(other.id, tenant, by="carol", take_over=True)


def test_a_stopped_replay_is_settled_once_its_thread_finishes(db, tenant):
    # A replay whose run stopped leaves the letter `replayed` with the thread unfinished;
    # the run that finishes the thread records the task's final outcome, once.
    clock = Clock()
    letters = DeadLetters(db, clock=clock)
    letter, done, other = (_add(letters, tenant, task_id=t) for t in ("t2", "t3", "t4"))
    elsewhere = _add(letters, tenant, thread_id=f"{tenant}-other")
    stopped = {"status": "initializing", "stopped": "GraphRecursionError: limit", "round": 1}
    for each in (letter, elsewhere):
        letters.claim_for_replay(each.id, tenant, by="ana")
        letters.finish_replay(each.id, tenant, ok=True, result=stopped)
    letters.claim_for_replay(done.id, tenant, by="ana")
    letters.finish_replay(done.id, tenant, ok=True, result={"status": "completed"})
    assert letters.stopped_replays(tenant, f"{tenant}-thread") == [letters.get(letter.id, tenant)]
    assert letters.stopped_replays(f"{tenant}-b", f"{tenant}-thread") == []

    clock.now = 1050.0
    final = {"status": "completed", "agent": "writer", "error": None}
    settled = letters.settle_stopped_replay(letter.id, tenant, result=final)
    assert (settled.status, settled.updated_at) == ("replayed", 1050.0)
    assert settled.resolution == {
        "replay_by": "ana",
        "replay_started_at": 1000.0,
        "finished_at": 1000.0,
        "result": final,
        "run_stopped": stopped,
        "thread_finished_at": 1050.0,
    }
    assert letters.stopped_replays(tenant, f"{tenant}-thread") == []
    assert [d.id for d in letters.stopped_replays(tenant, f"{tenant}-other")] == [elsewhere.id]
    # Settling again (the node that finished the thread ran again) changes nothing.
    clock.now = 1060.0
    assert letters.settle_stopped_replay(letter.id, tenant, result={"status": "x"}) == settled
    with pytest.raises(DeadLetterStateError, match="cannot settle the replay of"):
        letters.settle_stopped_replay(other.id, tenant, result=final)


def test_discard(db, tenant):
    letters = DeadLetters(db)
    letter = _add(letters, tenant)
    gone = letters.discard(letter.id, tenant, by="ana", reason="obsolete request")
    assert gone.status == "discarded"
    assert (gone.resolution or {})["reason"] == "obsolete request"
    assert letters.list(tenant, status="pending") == []
    with pytest.raises(
        DeadLetterStateError, match=re.escape("discarded by 'ana' ('obsolete request')")
    ):
        letters.claim_for_replay(letter.id, tenant, by="bob")


@pytest.mark.parametrize(
    ("prepare", "action", "message"),
    [
        ("pending", "finish", "cannot finish the replay of .* pending and no replay is running"),
        ("replaying", "discard", "cannot discard .* already being replayed by 'ana'"),
        ("discarded", "discard", "cannot discard .* was discarded by 'ana'"),
    ],
)
def test_state_errors(db, tenant, prepare, action, message):
    letters = DeadLetters(db)
    letter = _add(letters, tenant)
    if prepare == "replaying":
        letters.claim_for_replay(letter.id, tenant, by="ana")
    if prepare == "discarded":
        letters.discard(letter.id, tenant, by="ana", reason="r")
    with pytest.raises(DeadLetterStateError, match=message) as error:
        if action == "finish":
            letters.finish_replay(letter.id, tenant, ok=True, result={})
        else:
            letters.discard(letter.id, tenant, by="bob", reason="r")
    assert error.value.status == prepare
    assert letters.get(letter.id, tenant).status == prepare


def test_bad_inputs_are_refused_clearly(db, tenant):
    letters = DeadLetters(db)
    with pytest.raises(ValueError, match="unknown dead-letter status 'done'"):
        letters.list(tenant, status="done")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must have exactly the keys agent, attempt"):
        _add(letters, tenant, attempts=[{"agent": "writer", "error": "x"}])


def test_two_threads_claiming_at_once_get_one_replay(durable_url, tenant):
    database = open_database(parse_url(durable_url))
    letters = DeadLetters(database)
    letter = _add(letters, tenant)
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def claim(n: int) -> None:
        barrier.wait()
        try:
            letters.claim_for_replay(letter.id, tenant, by=f"worker-{n}")
            outcomes.append("claimed")
        except DeadLetterStateError:
            outcomes.append("refused")

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["claimed"] + ["refused"] * 5
    assert letters.get(letter.id, tenant).status == "replaying"
    database.close()


CHILD = """
import sys
from podium.storage.database import open_database
from podium.errors import DeadLetterStateError
from podium.stores.dead_letters.store import DeadLetters
from podium.storage.urls import parse_url

url, id, tenant = sys.argv[1:4]
db = open_database(parse_url(url))
try:
    DeadLetters(db).claim_for_replay(id, tenant, by="child")
    print("claimed")
except DeadLetterStateError:
    print("refused")
db.close()
"""


def test_processes_claiming_on_postgres_get_one_replay(postgres_url, tenant):
    database = open_database(parse_url(postgres_url))
    letter = _add(DeadLetters(database), tenant)
    argv = [sys.executable, "-c", CHILD, postgres_url, letter.id, tenant]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outputs == ["claimed", "refused", "refused"]
    assert (DeadLetters(database).get(letter.id, tenant).resolution or {})["replay_by"] == "child"
    database.close()
