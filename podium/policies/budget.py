"""Token and cost budgets: the limits that apply to a call and what is left of them.

Three nested levels, each in two units ("tokens", "usd"); a key is "<level>_<unit>":

    tenant_day_tokens / tenant_day_usd   per tenant per (UTC) day:
                                         tenants.<t>.budgets.per_day, else global's
    run_tokens / run_usd                 per run: the smaller of workflows.<w>.budgets.per_run
                                         and tenants.<t> (else global) budgets.per_run
    agent_tokens / agent_usd             per agent per run: agents.<a>.budgets.per_run, else
                                         per_agent of the workflow, tenant or global

Nesting is tenant > run (workflow) > agent: a child limit larger than its parent's is
capped to the parent's (the rule then names the parent's setting). Whether a call fits is
decided by the budget store (`podium.stores.budgets`), which holds what each call may
spend at every level at once, so a child never spends more than its parent has left.

`spent` maps these keys to what was already spent (missing = 0).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from podium.policies.decision import CallScope, first, layers
from podium.policies.schema import PolicySet

LEVELS = ("tenant_day", "run", "agent")
UNITS = ("tokens", "usd")


@dataclass(frozen=True, slots=True)
class BudgetLimit:
    """One limit: at most `limit` `unit` at `scope` level, set by the setting at `rule`."""

    scope: str
    unit: str
    limit: float
    rule: str

    @property
    def key(self) -> str:
        """The key of this level in `spent` / `requested`, e.g. "run_usd"."""
        return f"{self.scope}_{self.unit}"


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """The limits that apply to one caller, outermost level first."""

    limits: tuple[BudgetLimit, ...] = ()

    def __iter__(self) -> Iterator[BudgetLimit]:
        return iter(self.limits)

    def __len__(self) -> int:
        return len(self.limits)

    def get(self, key: str) -> BudgetLimit | None:
        """The limit with key `key` (e.g. "agent_tokens"), or None when there is none."""
        return next((limit for limit in self.limits if limit.key == key), None)


def budget_limits(policy: PolicySet, call: CallScope) -> BudgetLimits:
    """The budget limits for `call`, each with the rule that set it."""
    return policy.memo(("budget_limits", call), lambda: _budget_limits(policy, call))


def _budget_limits(policy: PolicySet, call: CallScope) -> BudgetLimits:
    scopes = layers(policy, call)
    agent = [s for s in scopes if s[0].startswith("agents.")]
    workflow = [s for s in scopes if s[0].startswith("workflows.")]
    tenant = [s for s in scopes if s[0] == "global" or s[0].startswith("tenants.")]
    found: list[BudgetLimit] = []
    for unit in UNITS:
        day = _limit("tenant_day", unit, first(tenant, "budgets", "per_day", unit))
        run_options = [
            _limit("run", unit, first(workflow, "budgets", "per_run", unit)),
            _limit("run", unit, first(tenant, "budgets", "per_run", unit)),
        ]
        run = _cap(min((o for o in run_options if o), key=lambda o: o.limit, default=None), day)
        own = None
        if call.agent is not None:
            own = _limit("agent", unit, first(agent, "budgets", "per_run", unit)) or _limit(
                "agent", unit, first(workflow + tenant, "budgets", "per_agent", unit)
            )
        found += [limit for limit in (day, run, _cap(own, run or day)) if limit is not None]
    order = {level: index for index, level in enumerate(LEVELS)}
    return BudgetLimits(tuple(sorted(found, key=lambda limit: order[limit.scope])))


def remaining(limits: BudgetLimits, spent: Mapping[str, float]) -> dict[str, float]:
    """What is left at each level, a child capped by what its parent has left."""
    left: dict[str, float] = {}
    for unit in UNITS:
        parent: float | None = None
        for level in LEVELS:
            limit = limits.get(f"{level}_{unit}")
            if limit is None:
                continue
            own = max(0.0, limit.limit - float(spent.get(limit.key, 0.0)))
            parent = own if parent is None else min(own, parent)
            left[limit.key] = parent
    return left


def remaining_fraction(limits: BudgetLimits, spent: Mapping[str, float]) -> float | None:
    """The smallest fraction left at any level (0..1), e.g. for `route_model`'s downgrade."""
    left = remaining(limits, spent)
    fractions = [_fraction(left[limit.key], limit.limit) for limit in limits]
    return min(fractions) if fractions else None


def _limit(scope: str, unit: str, found: tuple[Any, str | None]) -> BudgetLimit | None:
    value, rule = found
    return None if value is None or rule is None else BudgetLimit(scope, unit, float(value), rule)


def _cap(child: BudgetLimit | None, parent: BudgetLimit | None) -> BudgetLimit | None:
    if child is None or parent is None or child.limit <= parent.limit:
        return child
    return BudgetLimit(child.scope, child.unit, parent.limit, parent.rule)


def _fraction(left: float, limit: float) -> float:
    return max(0.0, left) / limit if limit > 0 else 0.0
