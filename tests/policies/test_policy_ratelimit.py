"""Rate limits: which buckets apply (tenant-qualified keys) and the token-bucket math."""

from __future__ import annotations

import math

import pytest

from podium.policies import CallScope, RateLimit, book, rate_limits_for, take

POLICY = """
global:
  rate_limits:
    - {calls: 100, per: 60}
    - {calls: 10, per: 1, kind: model}
tenants:
  acme:
    rate_limits: [{calls: 600, per: 60}]
  quiet:
    rate_limits: []
workflows:
  research_brief:
    rate_limits: [{calls: 50, per: 60, kind: tool}]
agents:
  researcher:
    rate_limits: [{calls: 30, per: 60}]
tools:
  search_corpus:
    rate_limit: {calls: 5, per: 10}
models:
  "openai:gpt-4o": {rate_limit: {calls: 60, per: 60}}
  "gpt-4.1": {rate_limit: {calls: 6, per: 60}}
"""

CASES = [
    # (call, tool, model, expected [(key, capacity, per, rule)])
    (
        CallScope("default"),
        None,
        None,
        [("tenant:default", 100, 60, "global.rate_limits[0]")],
    ),
    (
        CallScope("default"),
        None,
        "openai:gpt-4o",
        [
            ("tenant:default", 100, 60, "global.rate_limits[0]"),
            ("tenant:default#1", 10, 1, "global.rate_limits[1]"),
            ("model:default:openai:gpt-4o", 60, 60, "models.openai:gpt-4o.rate_limit"),
        ],
    ),
    (
        CallScope("acme"),
        None,
        "openai:gpt-4.1",  # found without its provider prefix
        [
            ("tenant:acme", 600, 60, "tenants.acme.rate_limits[0]"),
            ("model:acme:gpt-4.1", 6, 60, 'models."gpt-4.1".rate_limit'),
        ],
    ),
    (
        CallScope("quiet"),
        "search_corpus",
        None,
        [
            ("tool:quiet:search_corpus", 5, 10, "tools.search_corpus.rate_limit"),
        ],
    ),
    (
        CallScope("acme", "research_brief", "researcher"),
        "search_corpus",
        None,
        [
            ("tenant:acme", 600, 60, "tenants.acme.rate_limits[0]"),
            ("workflow:acme:research_brief", 50, 60, "workflows.research_brief.rate_limits[0]"),
            ("agent:acme:researcher", 30, 60, "agents.researcher.rate_limits[0]"),
            ("tool:acme:search_corpus", 5, 10, "tools.search_corpus.rate_limit"),
        ],
    ),
    (
        CallScope("acme", "research_brief", "researcher"),
        None,
        "demo",  # the workflow's limit counts tool calls only
        [
            ("tenant:acme", 600, 60, "tenants.acme.rate_limits[0]"),
            ("agent:acme:researcher", 30, 60, "agents.researcher.rate_limits[0]"),
        ],
    ),
]


@pytest.mark.parametrize(("call", "tool", "model", "expected"), CASES)
def test_rate_limits_for(policy, call, tool, model, expected):
    limits = rate_limits_for(policy(POLICY), call, tool=tool, model=model)
    assert [(lim.key, lim.capacity, lim.per, lim.rule) for lim in limits] == expected


def test_tenants_never_share_a_bucket(policy):
    ps = policy(POLICY)
    keys_a = {lim.key for lim in rate_limits_for(ps, CallScope("a", None, "researcher"), tool="x")}
    keys_b = {lim.key for lim in rate_limits_for(ps, CallScope("b", None, "researcher"), tool="x")}
    assert keys_a and not keys_a & keys_b


LIMIT = RateLimit("tool:acme:search_corpus", capacity=5, per=10.0, rule="tools.x.rate_limit")
FULL = None  # a bucket never used starts full

TAKE_CASES = [
    # (bucket before (tokens, updated_at), now, cost, allowed, tokens after, retry_after)
    (FULL, 100.0, 1, True, 4.0, 0.0),
    ((0.0, 100.0), 100.0, 1, False, 0.0, 2.0),  # 0.5 tokens/s: 1 token in 2s
    ((0.0, 100.0), 101.0, 1, False, 0.5, 1.0),
    ((0.0, 100.0), 102.0, 1, True, 0.0, 0.0),
    ((2.0, 100.0), 1000.0, 1, True, 4.0, 0.0),  # refill stops at capacity
    ((5.0, 100.0), 100.0, 5, True, 0.0, 0.0),
    ((4.0, 100.0), 100.0, 5, False, 4.0, 2.0),
    ((1.0, 100.0), 90.0, 1, True, 0.0, 0.0),  # clock stepped back: no new tokens
    ((5.0, 100.0), 100.0, 6, False, 5.0, math.inf),  # never fits
]


def _take(bucket, now, cost=1):
    tokens, updated = bucket if bucket is not None else (float(LIMIT.capacity), now)
    return take(tokens, updated, now, capacity=LIMIT.capacity, per=LIMIT.per, cost=cost)


@pytest.mark.parametrize(("bucket", "now", "cost", "allowed", "tokens", "retry"), TAKE_CASES)
def test_take(bucket, now, cost, allowed, tokens, retry):
    after = _take(bucket, now, cost)
    assert after.allowed is allowed
    assert after.tokens == pytest.approx(tokens)
    assert after.updated_at == max(now, bucket[1] if bucket else now)
    assert after.retry_after == pytest.approx(retry)


def test_take_sustains_the_configured_rate():
    # Calling every 0.1s for 60s: 5 at once, then one per 2 seconds.
    bucket, allowed = None, 0
    for step in range(600):
        after = _take(bucket, step / 10)
        bucket, allowed = (after.tokens, after.updated_at), allowed + after.allowed
    assert allowed == 5 + math.floor(59.9 / 2)


def test_waiting_retry_after_is_enough():
    after = _take((0.25, 0.0), 0.0)
    assert not after.allowed
    assert _take((after.tokens, after.updated_at), after.retry_after).allowed


BOOK_CASES = [
    # (bucket before, now, cost, max_wait, allowed, tokens after, wait)
    (FULL, 100.0, 1, 10.0, True, 4.0, 0.0),  # a token is there: no wait
    ((0.0, 100.0), 100.0, 1, 10.0, True, -1.0, 2.0),  # booked ahead: 1 token in 2 s
    ((-4.0, 100.0), 100.0, 1, 10.0, True, -5.0, 10.0),  # fifth in the queue: 10 s
    ((-5.0, 100.0), 100.0, 1, 10.0, False, -5.0, 12.0),  # sixth would wait past the bound
    ((-5.0, 100.0), 104.0, 1, 10.0, True, -4.0, 8.0),  # 4 s later the queue has moved on
    ((0.0, 100.0), 100.0, 1, 0.0, False, 0.0, 2.0),  # max_wait 0: no queueing at all
    ((5.0, 100.0), 100.0, 6, 1e9, False, 5.0, math.inf),  # never fits
]


@pytest.mark.parametrize(
    ("bucket", "now", "cost", "bound", "allowed", "tokens", "wait"), BOOK_CASES
)
def test_book(bucket, now, cost, bound, allowed, tokens, wait):
    level, updated = bucket if bucket is not None else (float(LIMIT.capacity), now)
    after = book(
        level, updated, now, capacity=LIMIT.capacity, per=LIMIT.per, cost=cost, max_wait=bound
    )
    assert (after.allowed, after.tokens, after.retry_after) == pytest.approx(
        (allowed, tokens, wait)
    )


def test_booked_calls_never_exceed_the_rate():
    # 50 calls booked at once on 5 per 10 s: the full bucket at once, then one every 2 s
    # in booking order.
    bucket, times = (5.0, 0.0), []
    for _ in range(50):
        after = book(*bucket, 0.0, capacity=5, per=10.0, cost=1, max_wait=1e9)
        bucket = (after.tokens, after.updated_at)
        times.append(after.retry_after)
    assert times == sorted(times)  # first come, first served
    assert times[:5] == [0.0] * 5 and times[5:] == pytest.approx([2.0 * k for k in range(1, 46)])


def test_max_wait_comes_from_the_policy(policy):
    ps = policy(
        """
        agents:
          researcher:
            rate_limits: [{calls: 30, per: 60, max_wait: 90}]
        tools:
          search_corpus:
            rate_limit: {calls: 5, per: 10}
        """
    )
    limits = rate_limits_for(ps, CallScope("acme", None, "researcher"), tool="search_corpus")
    assert [(lim.key, lim.max_wait) for lim in limits] == [
        ("agent:acme:researcher", 90.0),
        ("tool:acme:search_corpus", None),  # None: the store waits up to `per`
    ]
