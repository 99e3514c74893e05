"""Rate limits as token buckets: which buckets a call draws from, and the bucket math.

A bucket holds at most `capacity` tokens and refills continuously at `capacity / per`
tokens a second; a call takes `cost` tokens (1 by default) from every bucket that
applies to it. Bucket keys are tenant-qualified, so tenants never share a bucket:

    tenant:<tenant>              tenants.<t>.rate_limits, else global.rate_limits
    workflow:<tenant>:<workflow> workflows.<w>.rate_limits
    agent:<tenant>:<agent>       agents.<a>.rate_limits
    tool:<tenant>:<tool>         tools.<tool>.rate_limit        (tool calls)
    model:<tenant>:<model>       models.<model>.rate_limit      (model calls)

A scope's `rate_limits` is a list, so one scope can cap bursts and sustained rates
(the second and later entries get keys ending "#1", "#2"...). Each entry's `kind`
says what it counts: "model" calls, "tool" calls, or "any" (both, the default).
Storing buckets is the rate-limit store's job; `take` and `book` are the pure steps
it applies.

A call that finds no token does not fail: `book` reserves the next free token (the level
may go below zero, a queue of calls already booked) and says how long to wait for it,
so waiting calls are served first come, first served, across processes. Each bucket
bounds that wait with its `max_wait` (by default its refill period `per`: at most one
full bucket of calls queued ahead); past the bound the call is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from podium.policies.decision import CallScope, key
from podium.policies.schema import ModelPolicy, PolicySet, ScopeRateLimit


@dataclass(frozen=True, slots=True)
class RateLimit:
    """One bucket: `capacity` calls per `per` seconds, set by the setting at `rule`."""

    key: str
    capacity: int
    per: float
    rule: str
    max_wait: float | None = None

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self.capacity / self.per


def rate_limits_for(
    policy: PolicySet, call: CallScope, *, tool: str | None = None, model: str | None = None
) -> list[RateLimit]:
    """Every bucket a tool call (`tool=`) or a model call (`model=`) of `call` draws from."""
    memo_key = ("rate_limits", call, tool, model)
    return list(policy.memo(memo_key, lambda: tuple(_rate_limits(policy, call, tool, model))))


def _rate_limits(
    policy: PolicySet, call: CallScope, tool: str | None, model: str | None
) -> list[RateLimit]:
    found: list[RateLimit] = []
    # The global list is every tenant's default; a tenant's own list replaces it.
    tenant_block = policy.tenants.get(call.tenant)
    tenant_limits, tenant_prefix = (
        (tenant_block.rate_limits, key("tenants", call.tenant))
        if tenant_block is not None and tenant_block.rate_limits is not None
        else (policy.global_.rate_limits, "global")
    )
    kind = "tool" if tool is not None else "model" if model is not None else None
    found += _scope_limits(f"tenant:{call.tenant}", tenant_limits, tenant_prefix, kind)
    if call.workflow is not None and call.workflow in policy.workflows:
        limits = policy.workflows[call.workflow].rate_limits
        bucket = f"workflow:{call.tenant}:{call.workflow}"
        found += _scope_limits(bucket, limits, key("workflows", call.workflow), kind)
    if call.agent is not None and call.agent in policy.agents:
        limits = policy.agents[call.agent].rate_limits
        bucket = f"agent:{call.tenant}:{call.agent}"
        found += _scope_limits(bucket, limits, key("agents", call.agent), kind)
    if tool is not None and tool in policy.tools:
        spec = policy.tools[tool].rate_limit
        if spec is not None:
            rule = key("tools", tool, "rate_limit")
            found.append(
                RateLimit(f"tool:{call.tenant}:{tool}", spec.calls, spec.per, rule, spec.max_wait)
            )
    entry = model_entry(policy, model) if model is not None else None
    if entry is not None:
        name, settings = entry
        limit = settings.rate_limit
        if limit is not None:
            rule = key("models", name, "rate_limit")
            found.append(
                RateLimit(
                    f"model:{call.tenant}:{name}", limit.calls, limit.per, rule, limit.max_wait
                )
            )
    return found


def model_entry(policy: PolicySet, model: str) -> tuple[str, ModelPolicy] | None:
    """The `models` entry for `model`: by the full string, else without its provider prefix."""
    for name in (model, model.split(":", 1)[-1]):
        if name in policy.models:
            return name, policy.models[name]
    return None


def _scope_limits(
    bucket: str, limits: tuple[ScopeRateLimit, ...] | None, prefix: str, kind: str | None
) -> list[RateLimit]:
    found = []
    for index, spec in enumerate(limits or ()):
        if spec.kind != "any" and spec.kind != kind:
            continue
        suffix = f"#{index}" if index else ""
        rule = f"{prefix}.rate_limits[{index}]"
        found.append(RateLimit(bucket + suffix, spec.calls, spec.per, rule, spec.max_wait))
    return found


@dataclass(frozen=True, slots=True)
class BucketStep:
    """A bucket after one attempt: its new level and time, and whether the cost fit."""

    tokens: float
    updated_at: float
    allowed: bool
    retry_after: float


def take(
    tokens: float, updated_at: float, now: float, *, capacity: float, per: float, cost: float
) -> BucketStep:
    """Refill a bucket up to `now`, then take `cost` tokens from it if they are there.

    Pure token-bucket arithmetic. A clock behind `updated_at` (another machine's clock)
    refills nothing and never moves the bucket's time backwards. A refused attempt
    leaves the level unchanged and says how long the refill takes to cover the cost
    (infinite when the cost exceeds the capacity).
    """
    rate = capacity / per
    elapsed = max(0.0, now - updated_at)
    level = min(float(capacity), tokens + elapsed * rate)
    stamp = max(now, updated_at)
    if cost <= level:
        return BucketStep(level - cost, stamp, True, 0.0)
    wait = math.inf if cost > capacity else (cost - level) / rate
    return BucketStep(level, stamp, False, wait)


def book(
    tokens: float,
    updated_at: float,
    now: float,
    *,
    capacity: float,
    per: float,
    cost: float,
    max_wait: float,
) -> BucketStep:
    """Refill a bucket up to `now`, then book `cost` tokens if they are free within `max_wait`.

    Unlike `take`, a call may book tokens that are not there yet: the level goes below zero
    by what is booked ahead, and `retry_after` is how long until the booked tokens have
    refilled (0 when they are there now). A booking that would wait longer than `max_wait`
    is refused and leaves the level unchanged; `retry_after` then says the wait it needed
    (infinite when the cost exceeds the capacity).
    """
    rate = capacity / per
    level = min(float(capacity), tokens + max(0.0, now - updated_at) * rate)
    stamp = max(now, updated_at)
    wait = math.inf if cost > capacity else max(0.0, (cost - level) / rate)
    if wait <= max_wait:
        return BucketStep(level - cost, stamp, True, wait)
    return BucketStep(level, stamp, False, wait)
