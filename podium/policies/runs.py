"""Tenant fairness: how many runs one tenant may have in flight and queued at once.

`global.max_runs` is every tenant's default and `tenants.<t>.max_runs` a tenant's own;
likewise `run_wait`, the seconds an embedded run waits for a slot before it is refused
(a LangGraph server does not wait: it answers 429 with `Retry-After`). No `max_runs`
anywhere means no limit. `admit` is the pure decision; counting runs is the caller's job.
"""

from __future__ import annotations

from dataclasses import dataclass

from podium.policies.decision import key
from podium.policies.schema import PolicySet
from podium.words import count

#: Seconds an embedded run waits for a slot when no policy says.
DEFAULT_RUN_WAIT = 30.0


@dataclass(frozen=True, slots=True)
class RunLimit:
    """A tenant's cap on runs in flight and queued, and how long a run waits for a slot."""

    tenant: str
    max_runs: int
    wait: float
    rule: str


@dataclass(frozen=True, slots=True)
class RunAdmission:
    """Whether one more run may start; if not, why."""

    allowed: bool
    reason: str = ""


def run_limit(policy: PolicySet | None, tenant: str) -> RunLimit | None:
    """The run limit of `tenant` (the tenant's own, else the global one), or None."""
    if policy is None:
        return None
    own = policy.tenants.get(tenant)
    glob = policy.global_
    if own is not None and own.max_runs is not None:
        max_runs, rule = own.max_runs, key("tenants", tenant, "max_runs")
    elif glob.max_runs is not None:
        max_runs, rule = glob.max_runs, "global.max_runs"
    else:
        return None
    wait = next(
        (w for w in (own.run_wait if own else None, glob.run_wait) if w is not None),
        DEFAULT_RUN_WAIT,
    )
    return RunLimit(tenant, max_runs, wait, rule)


def admit(limit: RunLimit | None, busy: int) -> RunAdmission:
    """Whether a run may start while the tenant has `busy` runs in flight or queued."""
    if limit is None or busy < limit.max_runs:
        return RunAdmission(True)
    return RunAdmission(
        False,
        f"tenant {limit.tenant!r} has {count(busy, 'run')} in flight or queued, its limit "
        f"({limit.rule}) is {limit.max_runs}; retry when one has finished, or raise the limit",
    )
