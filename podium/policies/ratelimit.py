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
Storing buckets is the runtime's job; `take` is the pure step it applies.
"""

from __future__ import annotations

from dataclasses import dataclass

from podium.policies.decision import CallScope, Decision, allow, deny, key
from podium.policies.schema import ModelPolicy, PolicySet, ScopeRateLimit

#: Slack so that float refill arithmetic never refuses a call that exactly fits.
EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class RateLimit:
    """One bucket: `capacity` calls per `per` seconds, set by the setting at `rule`."""

    key: str
    capacity: int
    per: float
    rule: str

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self.capacity / self.per


@dataclass(frozen=True, slots=True)
class BucketState:
    """A stored bucket: tokens left at time `updated_at` (seconds, the runtime's clock)."""

    tokens: float
    updated_at: float


def rate_limits_for(
    policy: PolicySet, call: CallScope, *, tool: str | None = None, model: str | None = None
) -> list[RateLimit]:
    """Every bucket a tool call (`tool=`) or a model call (`model=`) of `call` draws from."""
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
            found.append(RateLimit(f"tool:{call.tenant}:{tool}", spec.calls, spec.per, rule))
    entry = model_entry(policy, model) if model is not None else None
    if entry is not None:
        name, settings = entry
        limit = settings.rate_limit
        if limit is not None:
            rule = key("models", name, "rate_limit")
            found.append(RateLimit(f"model:{call.tenant}:{name}", limit.calls, limit.per, rule))
    return found


def model_entry(policy: PolicySet, model: str) -> tuple[str, ModelPolicy] | None:
    """The `models` entry for `model`: by the full string, else without its provider prefix."""
    for name in (model, model.split(":", 1)[-1]):
        if name in policy.models:
            return name, policy.models[name]
    return None


def take(
    bucket: BucketState | None, limit: RateLimit, now: float, cost: float = 1
) -> tuple[Decision, BucketState]:
    """Refill `bucket` up to `now` and take `cost` tokens if they are there.

    Args:
        bucket: The stored state, or None for a bucket never used (it starts full).
        limit: The bucket's capacity and refill period.
        now: The current time in seconds (the caller's clock).
        cost: Tokens this call takes.

    Returns:
        The decision (details: key, remaining, retry_after seconds; retry_after is None
        when `cost` exceeds the capacity and can never fit) and the new state to store.
        A refused call stores the refill but takes nothing.
    """
    if bucket is None:
        tokens, updated = float(limit.capacity), now
    else:
        # A clock that stepped back must not mint tokens or move the bucket back in time.
        elapsed = max(0.0, now - bucket.updated_at)
        tokens = min(float(limit.capacity), bucket.tokens + elapsed * limit.rate)
        updated = max(now, bucket.updated_at)
    if tokens + EPSILON >= cost:
        left = max(0.0, tokens - cost)
        return allow(
            f"{limit.key}: {left:g} of {limit.capacity} calls per {limit.per:g}s left",
            limit.rule,
            key=limit.key,
            remaining=left,
            retry_after=0.0,
        ), BucketState(left, updated)
    retry_after = None if cost > limit.capacity else (cost - tokens) / limit.rate
    wait = "never fits" if retry_after is None else f"retry after {retry_after:.3g}s"
    return deny(
        f"{limit.key} is over {limit.capacity} calls per {limit.per:g}s ({limit.rule}); {wait}",
        limit.rule,
        key=limit.key,
        remaining=tokens,
        retry_after=retry_after,
    ), BucketState(tokens, updated)


def _scope_limits(
    bucket: str, limits: tuple[ScopeRateLimit, ...] | None, prefix: str, kind: str | None
) -> list[RateLimit]:
    found = []
    for index, spec in enumerate(limits or ()):
        if spec.kind != "any" and spec.kind != kind:
            continue
        suffix = f"#{index}" if index else ""
        rule = f"{prefix}.rate_limits[{index}]"
        found.append(RateLimit(bucket + suffix, spec.calls, spec.per, rule))
    return found
