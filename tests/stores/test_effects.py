"""The tool-effect ledger: recorded results, in-doubt calls, races and tenant isolation."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from podium.storage.database import open_database
from podium.storage.urls import parse_url
from podium.stores.effects.store import (
    EffectConflict,
    EffectKey,
    EffectLedger,
    EffectNotFound,
    EffectStateError,
    EffectStatus,
    InDoubt,
    Recorded,
    Started,
)
from tests.helpers import Clock


def _key(tenant: str, call_key: str = "call-1") -> EffectKey:
    return EffectKey(tenant, f"{tenant}-thread", "t1", call_key)


ARGS = {"to": "ana@example.com", "amount": 12.5}


@pytest.mark.parametrize("result", ["sent: 42", {"receipt": 42, "lines": ["a", "b"]}])
def test_a_completed_call_returns_its_recorded_result(db, tenant, result):
    clock = Clock()
    ledger = EffectLedger(db, clock=clock)
    key = _key(tenant)
    assert ledger.begin(key, "send_email", ARGS) == Started(attempt=1)
    clock.now = 1002.0
    done = ledger.complete(key, result)
    assert (done.status, done.result, done.finished_at, done.args) == (
        "completed",
        result,
        1002.0,
        ARGS,
    )
    assert ledger.begin(key, "send_email", ARGS) == Recorded(result)
    assert ledger.begin(key, "send_email", {"reworded": True}) == Recorded(result)


def test_a_call_that_crashed_is_in_doubt_after_a_restart(durable_url, tenant):
    key = _key(tenant)
    first = open_database(parse_url(durable_url))
    assert EffectLedger(first, clock=Clock(1000.0)).begin(key, "charge", ARGS) == Started()
    first.close()  # The process dies before complete() or fail().
    second = open_database(parse_url(durable_url))
    ledger = EffectLedger(second, clock=Clock(2000.0))
    assert ledger.begin(key, "charge", ARGS) == InDoubt(started_at=1000.0, attempt=1)
    assert [e.key for e in ledger.list(tenant, status="started")] == [key]
    second.close()


def test_a_failed_call_may_run_again(db, tenant):
    ledger = EffectLedger(db, clock=Clock())
    key = _key(tenant)
    ledger.begin(key, "charge", ARGS)
    failed = ledger.fail(key, "card declined")
    assert (failed.status, failed.error, failed.attempts) == ("failed", "card declined", 1)
    assert ledger.begin(key, "charge", ARGS) == Started(attempt=2)
    ledger.complete(key, "charged")
    assert ledger.begin(key, "charge", ARGS) == Recorded("charged")


@pytest.mark.parametrize(
    ("action", "result", "next_begin"),
    [
        ("rerun", None, Started(attempt=2)),
        ("mark_done", {"receipt": 7}, Recorded({"receipt": 7})),
        (
            "mark_done",
            None,
            Recorded("marked done by 'ana'; the tool's own result was not recorded"),
        ),
    ],
)
def test_a_human_resolves_an_in_doubt_call(db, tenant, action, result, next_begin):
    ledger = EffectLedger(db, clock=Clock())
    key = _key(tenant)
    ledger.begin(key, "charge", ARGS)
    assert isinstance(ledger.begin(key, "charge", ARGS), InDoubt)
    resolved = ledger.resolve_in_doubt(key, action=action, result=result, by="ana")
    assert (resolved.resolved_by, resolved.resolution) == ("ana", action)
    assert ledger.begin(key, "charge", ARGS) == next_begin


def test_only_an_in_doubt_call_can_be_resolved(db, tenant):
    ledger = EffectLedger(db)
    key = _key(tenant)
    ledger.begin(key, "charge", ARGS)
    ledger.complete(key, "charged")
    with pytest.raises(EffectStateError, match="is 'completed', not in doubt"):
        ledger.resolve_in_doubt(key, action="rerun", by="bob")
    assert ledger.begin(key, "charge", ARGS) == Recorded("charged")


def test_the_first_result_stands(db, tenant):
    ledger = EffectLedger(db)
    key = _key(tenant)
    ledger.begin(key, "charge", ARGS)
    ledger.complete(key, "first")
    assert ledger.complete(key, "second").result == "first"
    assert ledger.fail(key, "late failure").status == "completed"
    assert ledger.begin(key, "charge", ARGS) == Recorded("first")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda led, k: led.complete(k, "x"), EffectNotFound, "call EffectLedger.begin first"),
        (lambda led, k: led.fail(k, "x"), EffectNotFound, "no tool effect 'never'"),
        (
            lambda led, k: led.resolve_in_doubt(k, action="undo", by="a"),
            ValueError,
            "unknown in-doubt action 'undo'",
        ),
        (lambda led, k: led.list(k.tenant_id, status="done"), ValueError, "unknown effect status"),
    ],
)
def test_misuse_is_refused_clearly(db, tenant, call, error, message):
    with pytest.raises(error, match=message):
        call(EffectLedger(db), _key(tenant, "never"))


def test_a_call_key_belongs_to_one_tool_and_results_must_be_json(db, tenant):
    ledger = EffectLedger(db)
    key = _key(tenant)
    ledger.begin(key, "send_email", ARGS)
    with pytest.raises(EffectConflict, match="recorded for tool 'send_email', not 'charge'"):
        ledger.begin(key, "charge", ARGS)
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        ledger.complete(key, {"when": object()})  # type: ignore[dict-item]
    assert ledger.get(key).status == "started"  # type: ignore[union-attr]


def test_tenants_are_isolated(db, tenant):
    ledger = EffectLedger(db)
    other = f"{tenant}-b"
    mine, theirs = _key(tenant), EffectKey(other, f"{tenant}-thread", "t1", "call-1")
    ledger.begin(mine, "charge", ARGS)
    ledger.complete(mine, "mine")
    assert ledger.begin(theirs, "charge", ARGS) == Started()
    assert [e.key for e in ledger.list(tenant)] == [mine]
    assert [e.key for e in ledger.list(other)] == [theirs]
    assert [e.key for e in ledger.list(tenant, status="completed", thread_id=mine.thread_id)] == [
        mine
    ]
    assert ledger.list(tenant, thread_id="elsewhere") == []


def test_threads_racing_on_one_key_start_it_once(durable_url, tenant):
    database = open_database(parse_url(durable_url))
    ledger = EffectLedger(database)
    key = _key(tenant, "race")
    barrier = threading.Barrier(8)
    seen: list[EffectStatus] = []

    def begin() -> None:
        barrier.wait()
        seen.append(ledger.begin(key, "charge", ARGS))

    threads = [threading.Thread(target=begin) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    database.close()
    assert sum(isinstance(s, Started) for s in seen) == 1
    assert sum(isinstance(s, InDoubt) for s in seen) == 7


CHILD = """
import sys
from podium.storage.database import open_database
from podium.stores.effects.store import EffectKey, EffectLedger
from podium.storage.urls import parse_url

url, tenant = sys.argv[1:3]
db = open_database(parse_url(url))
print(type(EffectLedger(db).begin(EffectKey(tenant, "th", "t1", "k"), "charge", {})).__name__)
db.close()
"""


def test_processes_racing_on_postgres_start_it_once(postgres_url, tenant):
    argv = [sys.executable, "-c", CHILD, postgres_url, tenant]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outputs == ["InDoubt", "InDoubt", "Started"]
