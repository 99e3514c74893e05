"""Circuit breakers: the pure state machine (tables) and the shared store on every back end."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from podium.errors import ConfigurationError, RunError
from podium.storage.database import open_database
from podium.storage.urls import parse_url
from podium.stores.breakers.store import (
    BreakerDecision,
    BreakerInfo,
    BreakerKeyError,
    BreakerSettings,
    BreakerState,
    CircuitBreakers,
    CircuitOpen,
    breaker_key,
    on_call,
    step,
)
from tests.helpers import Clock

S = BreakerSettings(failure_threshold=3, window=10.0, cooldown=5.0)
OPEN_AT_2 = BreakerState(status="open", opened_at=2.0, next_probe_at=7.0, last_error="e")
PROBING_AT_7 = BreakerState(status="half_open", opened_at=2.0, next_probe_at=12.0, last_error="e")


# -- the pure state machine ------------------------------------------------------------------

F, OK, CALL = "failure", "success", "call"


@pytest.mark.parametrize(
    ("start", "events", "status", "failures", "next_probe_at"),
    [
        pytest.param(BreakerState(), [(F, 0), (F, 1)], "closed", 2, None, id="below-threshold"),
        pytest.param(BreakerState(), [(F, 0), (F, 1), (F, 2)], "open", 0, 7.0, id="opens"),
        pytest.param(
            BreakerState(), [(F, 0), (F, 11), (F, 12)], "closed", 2, None, id="old-failure-expires"
        ),
        pytest.param(
            BreakerState(), [(F, 0), (F, 5), (F, 10)], "closed", 2, None, id="window-edge-excluded"
        ),
        pytest.param(
            BreakerState(), [(F, 0), (OK, 1), (F, 2), (F, 3)], "open", 0, 8.0, id="success-no-reset"
        ),
        pytest.param(OPEN_AT_2, [(CALL, 6.9)], "open", 0, 7.0, id="cooling-down"),
        pytest.param(OPEN_AT_2, [(CALL, 7)], "half_open", 0, 12.0, id="half-opens"),
        pytest.param(OPEN_AT_2, [(OK, 3)], "open", 0, 7.0, id="straggler-success-ignored"),
        pytest.param(OPEN_AT_2, [(F, 3)], "open", 0, 7.0, id="straggler-failure-keeps-cooldown"),
        pytest.param(PROBING_AT_7, [(CALL, 11)], "half_open", 0, 12.0, id="probe-in-flight"),
        pytest.param(PROBING_AT_7, [(CALL, 12)], "half_open", 0, 17.0, id="lost-probe-replaced"),
        pytest.param(PROBING_AT_7, [(OK, 8)], "closed", 0, None, id="probe-success-closes"),
        pytest.param(PROBING_AT_7, [(F, 8)], "open", 0, 13.0, id="probe-failure-reopens"),
        pytest.param(
            PROBING_AT_7, [(OK, 8), (F, 9), (F, 10)], "closed", 2, None, id="closed-starts-fresh"
        ),
    ],
)
def test_state_machine(start, events, status, failures, next_probe_at):
    state = start
    for event, now in events:
        state = step(state, event, float(now), S, error=f"{event}@{now}")
    assert (state.status, len(state.failures), state.next_probe_at) == (
        status,
        failures,
        next_probe_at,
    )


@pytest.mark.parametrize(
    ("state", "now", "decision"),
    [
        (BreakerState(), 0.0, BreakerDecision(True, "closed")),
        (OPEN_AT_2, 4.0, BreakerDecision(False, "open", retry_after=3.0)),
        (OPEN_AT_2, 7.0, BreakerDecision(True, "half_open", probe=True)),
        (PROBING_AT_7, 9.5, BreakerDecision(False, "half_open", retry_after=2.5)),
    ],
)
def test_call_decisions(state, now, decision):
    assert on_call(state, now, S)[1] == decision


def test_reopening_records_time_and_error():
    state = step(PROBING_AT_7, "failure", 8.0, S, error="boom")
    assert (state.opened_at, state.last_error) == (8.0, "boom")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"failure_threshold": 0}, "failure_threshold 0 must be at least 1"),
        ({"window": 0.0}, "window 0.0 must be > 0"),
        ({"cooldown": -1.0}, "cooldown -1.0 must be >= 0"),
    ],
)
def test_settings_are_validated(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        BreakerSettings(**kwargs)


def test_unknown_event_is_refused():
    with pytest.raises(ValueError, match="unknown breaker event 'explode'"):
        step(BreakerState(), "explode", 0.0, S)  # type: ignore[arg-type]


# -- the store -------------------------------------------------------------------------------


def test_opens_after_failures_within_the_window_and_fails_fast(db, tenant):
    clock = Clock()
    breakers = CircuitBreakers(db, clock=clock)
    key = breaker_key("tool", f"search-{tenant}")
    breakers.record_failure(key, S, tenant, "old")
    clock.now += 11  # The first failure drops out of the window.
    breakers.record_failure(key, S, tenant, "e1")
    assert breakers.record_failure(key, S, tenant, "e2").state == "closed"
    assert breakers.before_call(key, S, tenant).allowed
    clock.now += 1
    info = breakers.record_failure(key, S, tenant, "e3")
    assert (info.state, info.opened_at, info.last_error) == ("open", clock.now, "e3")
    clock.now += 2
    assert breakers.before_call(key, S, tenant) == BreakerDecision(False, "open", retry_after=3.0)
    with pytest.raises(CircuitOpen, match=rf"{key!r} is open .* probe call through in 3.0s") as e:
        breakers.check(key, S, tenant)
    assert isinstance(e.value, RunError)
    assert (e.value.key, e.value.retry_after) == (key, 3.0)


def _open(breakers: CircuitBreakers, key: str, tenant: str) -> None:
    for _ in range(S.failure_threshold):
        breakers.record_failure(key, S, tenant, "down")


def test_half_open_lets_one_probe_through_and_success_closes(db, tenant):
    clock = Clock()
    breakers = CircuitBreakers(db, clock=clock)
    key = f"tool:probe-{tenant}"
    _open(breakers, key, tenant)
    clock.now += S.cooldown
    assert breakers.before_call(key, S, tenant) == BreakerDecision(True, "half_open", probe=True)
    clock.now += 1
    refused = breakers.before_call(key, S, tenant)
    assert (refused.allowed, refused.state, refused.retry_after) == (False, "half_open", 4.0)
    with pytest.raises(CircuitOpen, match="half-open and its single probe"):
        breakers.check(key, S, tenant)
    assert breakers.record_success(key, tenant).state == "closed"
    assert breakers.before_call(key, S, tenant) == BreakerDecision(True, "closed")
    assert breakers.state(key, tenant).failures == 0


def test_probe_failure_reopens_with_a_new_cooldown(db, tenant):
    clock = Clock()
    breakers = CircuitBreakers(db, clock=clock)
    key = f"model:endpoint-{tenant}"
    _open(breakers, key, tenant)
    clock.now += S.cooldown + 3
    assert breakers.before_call(key, S, tenant).probe
    clock.now += 1
    info = breakers.record_failure(key, S, tenant, "still down")
    assert (info.state, info.opened_at, info.next_probe_at) == ("open", clock.now, clock.now + 5)
    assert breakers.before_call(key, S, tenant).retry_after == S.cooldown


def test_only_one_of_many_threads_becomes_the_probe(durable_url, tenant):
    clock = Clock()
    database = open_database(parse_url(durable_url))
    breakers = CircuitBreakers(database, clock=clock)
    key = f"tool:race-{tenant}"
    _open(breakers, key, tenant)
    clock.now += S.cooldown
    barrier = threading.Barrier(8)
    decisions: list[BreakerDecision] = []

    def call() -> None:
        barrier.wait()
        decisions.append(breakers.before_call(key, S, tenant))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    database.close()
    assert sorted(d.probe for d in decisions) == [False] * 7 + [True]
    assert sum(d.allowed for d in decisions) == 1


def test_tenant_scoped_and_shared_breakers(db, tenant):
    breakers = CircuitBreakers(db, clock=Clock())
    other = f"{tenant}-b"
    own = breaker_key("tool", "x", tenant_id=tenant)
    shared = breaker_key("tool", f"shared-{tenant}")
    assert own == f"tenant:{tenant}:tool:x"
    breakers.record_failure(own, S, tenant, "secret of a")
    breakers.record_failure(shared, S, tenant, "secret of a")

    def mine(viewer: str) -> list[BreakerInfo]:
        # Shared breakers of other tests live in the same PostgreSQL database.
        return [b for b in breakers.list(viewer) if tenant in b.key]

    assert [b.key for b in mine(tenant)] == sorted([own, shared])
    [seen] = mine(other)
    assert seen.key == shared
    assert (seen.tenant_id, seen.failures, seen.last_error) == ("*", 1, None)
    assert breakers.state(shared, tenant).last_error == "secret of a"
    for call in (
        lambda: breakers.state(own, other),
        lambda: breakers.before_call(own, S, other),
        lambda: breakers.record_failure(own, S, other, "x"),
        lambda: breakers.record_success(own, other),
    ):
        with pytest.raises(BreakerKeyError, match=rf"{own!r} belongs to another tenant"):
            call()


def test_unknown_breaker_reads_as_closed(db, tenant):
    info = CircuitBreakers(db).state(f"tool:never-{tenant}", tenant)
    assert (info.state, info.failures, info.updated_at) == ("closed", 0, None)


CHILD = """
import sys
from podium.stores.breakers.store import BreakerSettings, CircuitBreakers
from podium.storage.database import open_database
from podium.storage.urls import parse_url

url, key, tenant, action, now = sys.argv[1:6]
db = open_database(parse_url(url))
breakers = CircuitBreakers(db, clock=lambda: float(now))
settings = BreakerSettings(failure_threshold=3, window=10.0, cooldown=5.0)
if action == "fail":
    for _ in range(3):
        breakers.record_failure(key, settings, tenant, "down in child")
    print(breakers.state(key, tenant).state)
else:
    print(breakers.before_call(key, settings, tenant).probe)
db.close()
"""


def _child(url: str, key: str, tenant: str, action: str, now: float) -> subprocess.Popen:
    argv = [sys.executable, "-c", CHILD, url, key, tenant, action, str(now)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _output(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out.strip()


def test_processes_share_breakers_on_postgres(postgres_url, tenant):
    key = f"tool:shared-{tenant}"
    assert _output(_child(postgres_url, key, tenant, "fail", 1000.0)) == "open"
    database = open_database(parse_url(postgres_url))
    clock = Clock(1002.0)
    breakers = CircuitBreakers(database, clock=clock)
    assert breakers.before_call(key, S, tenant) == BreakerDecision(False, "open", retry_after=3.0)
    assert breakers.state(key, tenant).last_error == "down in child"
    # After the cool-down, three processes race for the probe; exactly one gets it.
    racers = [_child(postgres_url, key, tenant, "call", 1005.0) for _ in range(3)]
    assert sorted(_output(p) for p in racers) == ["False", "False", "True"]
    clock.now = 1006.0
    assert breakers.before_call(key, S, tenant).state == "half_open"
    assert breakers.record_success(key, tenant).state == "closed"
    database.close()
