"""Token-bucket rate limits: the pure arithmetic, the store on every back end, two processes."""

from __future__ import annotations

import math
import textwrap

import pytest

from podium.errors import ConfigurationError, RunError
from podium.storage.database import open_database
from podium.storage.urls import parse_url
from podium.stores.ratelimit import Limit, RateDecision, RateLimited, RateLimiter, take
from tests.helpers import Clock, race

# -- the pure arithmetic ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "updated_at", "now", "capacity", "per", "cost", "expected"),
    [
        # full bucket: take one
        (10.0, 0.0, 0.0, 10, 10.0, 1, (9.0, 0.0, True, 0.0)),
        # empty bucket, half a period later: half the capacity is back
        (0.0, 0.0, 5.0, 10, 10.0, 3, (2.0, 5.0, True, 0.0)),
        # refill stops at capacity
        (4.0, 0.0, 1_000.0, 10, 10.0, 1, (9.0, 1_000.0, True, 0.0)),
        # refused: 0.5 tokens short at 1 token/s -> 0.5s, level unchanged
        (0.5, 0.0, 0.0, 10, 10.0, 1, (0.5, 0.0, False, 0.5)),
        # slow bucket: 2 per 60s, empty -> one token in 30s
        (0.0, 0.0, 0.0, 2, 60.0, 1, (0.0, 0.0, False, 30.0)),
        # a clock behind the stored time refills nothing and keeps the stored time
        (1.0, 50.0, 40.0, 10, 10.0, 1, (0.0, 50.0, True, 0.0)),
        # a cost above the capacity never fits
        (10.0, 0.0, 0.0, 10, 10.0, 11, (10.0, 0.0, False, math.inf)),
        # cost 0 always fits
        (0.0, 0.0, 0.0, 10, 10.0, 0, (0.0, 0.0, True, 0.0)),
    ],
)
def test_take(tokens, updated_at, now, capacity, per, cost, expected):
    step = take(tokens, updated_at, now, capacity=capacity, per=per, cost=cost)
    assert (step.tokens, step.updated_at, step.allowed, step.retry_after) == pytest.approx(expected)


# -- the store ----------------------------------------------------------------------------


def test_capacity_then_refusal_then_refill(db, tenant):
    clock = Clock()
    limiter = RateLimiter(db, clock=clock)
    limit = [Limit("model:gpt", 3, 30.0)]  # one token every 10s
    assert [limiter.try_acquire(tenant, limit).allowed for _ in range(3)] == [True] * 3
    assert limiter.try_acquire(tenant, limit) == RateDecision(False, "model:gpt", 10.0)
    clock.now += 4.0
    assert limiter.try_acquire(tenant, limit).retry_after == pytest.approx(6.0)
    clock.now += 6.0
    assert limiter.try_acquire(tenant, limit).allowed
    assert not limiter.try_acquire(tenant, limit).allowed
    clock.now += 1_000.0  # refill stops at capacity
    assert [limiter.try_acquire(tenant, limit).allowed for _ in range(4)] == [True] * 3 + [False]


def test_cost_takes_several_tokens(db, tenant):
    limiter = RateLimiter(db, clock=Clock())
    limit = [Limit("tokens", 100, 60.0)]
    assert limiter.try_acquire(tenant, limit, cost=70).allowed
    refused = limiter.try_acquire(tenant, limit, cost=40)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(10 * 60 / 100)
    assert limiter.try_acquire(tenant, limit, cost=30).allowed


def test_several_limits_take_from_all_or_none(db, tenant):
    limiter = RateLimiter(db, clock=Clock())
    wide, narrow = Limit("tenant", 5, 50.0), Limit("model:small", 2, 20.0)
    for _ in range(2):
        assert limiter.try_acquire(tenant, [wide, narrow]).allowed
    refused = limiter.try_acquire(tenant, [wide, narrow])
    assert (refused.allowed, refused.key, refused.retry_after) == (False, "model:small", 10.0)
    # The refusal took nothing from the wide bucket: its 3 tokens are all still there.
    assert [limiter.try_acquire(tenant, [wide]).allowed for _ in range(4)] == [True] * 3 + [False]


def test_the_longest_wait_names_the_limiting_bucket(db, tenant):
    limiter = RateLimiter(db, clock=Clock())
    fast, slow = Limit("a-fast", 1, 1.0), Limit("z-slow", 1, 100.0)
    assert limiter.try_acquire(tenant, [fast, slow]).allowed
    refused = limiter.try_acquire(tenant, [slow, fast])
    assert (refused.key, refused.retry_after) == ("z-slow", 100.0)


def test_tenants_have_their_own_buckets(db, tenant):
    limiter = RateLimiter(db, clock=Clock())
    limit = [Limit("model:gpt", 1, 60.0)]
    assert limiter.try_acquire(tenant, limit).allowed
    assert not limiter.try_acquire(tenant, limit).allowed
    assert limiter.try_acquire(f"{tenant}-other", limit).allowed


def test_no_limits_always_allows(db, tenant):
    assert RateLimiter(db).try_acquire(tenant, []).allowed


def test_acquire_waits_with_the_injected_sleep(db, tenant):
    clock = Clock()
    limiter = RateLimiter(db, clock=clock)
    limit = [Limit("model:gpt", 1, 5.0)]
    limiter.acquire(tenant, limit, timeout=0.0, sleep=clock.sleep)
    start = clock.now
    assert limiter.acquire(tenant, limit, timeout=10.0, sleep=clock.sleep).allowed
    assert clock.now - start == pytest.approx(5.0)


def test_acquire_gives_up_when_the_wait_exceeds_the_timeout(db, tenant):
    clock = Clock()
    limiter = RateLimiter(db, clock=clock)
    limit = [Limit("model:gpt", 1, 60.0)]
    limiter.try_acquire(tenant, limit)
    slept: list[float] = []
    with pytest.raises(RateLimited) as info:
        limiter.acquire(tenant, limit, timeout=5.0, sleep=slept.append)
    assert isinstance(info.value, RunError)
    assert (info.value.key, info.value.retry_after, info.value.tenant_id) == (
        "model:gpt",
        60.0,
        tenant,
    )
    assert "'model:gpt'" in str(info.value) and "60.00s" in str(info.value)
    assert slept == []  # no point sleeping when the wait is already too long


def test_reserve_queues_calls_in_turn_up_to_the_refill_period(db, tenant):
    clock = Clock()
    limiter = RateLimiter(db, clock=clock)
    limit = [Limit("tool:ping", 2, 10.0)]  # one token every 5 s; waits up to 10 s
    waits = [limiter.reserve(tenant, limit) for _ in range(4)]
    assert [(d.allowed, d.wait) for d in waits] == [
        (True, 0.0),
        (True, 0.0),
        (True, 5.0),
        (True, 10.0),
    ]
    refused = limiter.reserve(tenant, limit)
    assert (refused.allowed, refused.key, refused.retry_after, refused.bound) == (
        False,
        "tool:ping",
        15.0,
        10.0,
    )
    clock.now += 5.0  # the first booked call has had its turn: room for one more
    assert limiter.reserve(tenant, limit).wait == pytest.approx(10.0)


def test_reserve_books_every_bucket_or_none(db, tenant):
    clock = Clock()
    limiter = RateLimiter(db, clock=clock)
    roomy, tight = Limit("roomy", 100, 10.0), Limit("tight", 1, 10.0, max_wait=0.0)
    assert limiter.reserve(tenant, [roomy, tight]).allowed
    refused = limiter.reserve(tenant, [roomy, tight])
    assert (refused.allowed, refused.key) == (False, "tight")
    # The refused call booked nothing in the roomy bucket either.
    assert [limiter.try_acquire(tenant, [roomy]).allowed for _ in range(100)] == [True] * 99 + [
        False
    ]


def test_max_wait_and_the_runtime_cap_bound_the_wait(db, tenant):
    clock = Clock()
    limiter = RateLimiter(db, clock=clock)
    patient = [Limit("patient", 1, 10.0, max_wait=60.0)]
    for expected in (0.0, 10.0, 20.0):
        assert limiter.reserve(tenant, patient).wait == pytest.approx(expected)
    capped = limiter.reserve(tenant, patient, cap=25.0)
    assert (capped.allowed, capped.retry_after, capped.bound) == (False, 30.0, 25.0)
    with pytest.raises(RateLimited) as info:
        limiter.acquire(tenant, patient, timeout=25.0, sleep=clock.sleep)
    assert "30.00s, more than the 25.00s a call may wait" in str(info.value)
    assert "max_wait" in str(info.value)


@pytest.mark.parametrize(
    ("limits", "cost", "message"),
    [
        ([Limit("a", 0, 1.0)], 1, "capacity 0"),
        ([Limit("a", 1, 0.0)], 1, "both must be positive"),
        ([Limit("a", 2, 1.0)], 3, "can never fit"),
        ([Limit("a", 2, 1.0), Limit("a", 5, 1.0)], 1, "given twice"),
        ([Limit("a", 2, 1.0)], -1, "negative"),
        ([Limit("a", 2, 1.0, max_wait=-1.0)], 1, "max_wait -1.0"),
    ],
)
def test_malformed_limits_are_configuration_errors(limits, cost, message, tenant):
    database = open_database(parse_url("memory://"))
    with pytest.raises(ConfigurationError, match=message):
        RateLimiter(database).try_acquire(tenant, limits, cost)
    database.close()


# -- several processes ----------------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import sys
    from podium.storage.database import open_database
    from podium.stores.ratelimit import Limit, RateLimiter
    from podium.storage.urls import parse_url

    url, tenant, capacity, attempts = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    db = open_database(parse_url(url))
    limiter = RateLimiter(db)
    limits = [Limit("shared", capacity, 1e9), Limit("other", 10 * capacity, 1e9)]
    print("ready", flush=True)
    sys.stdin.readline()  # start together with the other worker
    got = sum(limiter.try_acquire(tenant, limits).allowed for _ in range(attempts))
    print(got, flush=True)
    db.close()
    """
)


def test_two_processes_share_one_limit_on_postgres(postgres_url, tenant):
    capacity, attempts = 40, 60
    db = open_database(parse_url(postgres_url))
    RateLimiter(db)  # create the table before the race
    db.close()
    counts = race(WORKER, postgres_url, tenant, str(capacity), str(attempts))
    assert sum(counts) == capacity
