"""Budgets: which limits apply (with their rules), nesting caps, and the fit check."""

from __future__ import annotations

import pytest

from podium.policies import (
    BudgetLimits,
    CallScope,
    budget_limits,
    remaining,
    remaining_fraction,
)

POLICY = """
global:
  budgets:
    per_run: {tokens: 100000, usd: 1.0}
    per_day: {usd: 10.0}
    per_agent: {tokens: 30000}
tenants:
  acme:
    budgets:
      per_day: {usd: 100.0, tokens: 1000000}
      per_run: {usd: 5.0}
  tiny:
    budgets:
      per_day: {usd: 0.5}
workflows:
  research_brief:
    budgets:
      per_run: {usd: 2.0}
      per_agent: {tokens: 20000, usd: 0.4}
agents:
  writer:
    budgets:
      per_run: {tokens: 500000}
  analyst:
    budgets:
      per_run: {tokens: 1000}
"""

LIMIT_CASES = [
    # (call, expected {key: (limit, rule)})
    (
        CallScope("default"),
        {
            "tenant_day_usd": (10.0, "global.budgets.per_day.usd"),
            "run_tokens": (100000, "global.budgets.per_run.tokens"),
            "run_usd": (1.0, "global.budgets.per_run.usd"),
        },
    ),
    (
        CallScope("acme", "research_brief", "researcher"),
        {
            "tenant_day_tokens": (1000000, "tenants.acme.budgets.per_day.tokens"),
            "tenant_day_usd": (100.0, "tenants.acme.budgets.per_day.usd"),
            "run_tokens": (100000, "global.budgets.per_run.tokens"),
            # The workflow's 2.0 is under the tenant's 5.0: the smaller one applies.
            "run_usd": (2.0, "workflows.research_brief.budgets.per_run.usd"),
            "agent_tokens": (20000, "workflows.research_brief.budgets.per_agent.tokens"),
            "agent_usd": (0.4, "workflows.research_brief.budgets.per_agent.usd"),
        },
    ),
    (
        # Child limits above their parent's are capped to the parent's, naming its rule.
        CallScope("tiny", "research_brief", "writer"),
        {
            "tenant_day_usd": (0.5, "tenants.tiny.budgets.per_day.usd"),
            "run_tokens": (100000, "global.budgets.per_run.tokens"),
            "run_usd": (0.5, "tenants.tiny.budgets.per_day.usd"),
            "agent_tokens": (100000, "global.budgets.per_run.tokens"),
            "agent_usd": (0.4, "workflows.research_brief.budgets.per_agent.usd"),
        },
    ),
    (
        CallScope("default", None, "analyst"),
        {
            "tenant_day_usd": (10.0, "global.budgets.per_day.usd"),
            "run_tokens": (100000, "global.budgets.per_run.tokens"),
            "run_usd": (1.0, "global.budgets.per_run.usd"),
            "agent_tokens": (1000, "agents.analyst.budgets.per_run.tokens"),
        },
    ),
]


@pytest.mark.parametrize(("call", "expected"), LIMIT_CASES)
def test_budget_limits(policy, call, expected):
    limits = budget_limits(policy(POLICY), call)
    assert {lim.key: (lim.limit, lim.rule) for lim in limits} == expected
    order = [lim.scope for lim in limits]
    assert order == sorted(order, key=["tenant_day", "run", "agent"].index)


ACME = CallScope("acme", "research_brief", "researcher")


def test_remaining_is_capped_by_the_parent(policy):
    limits = budget_limits(policy(POLICY), ACME)
    left = remaining(limits, {"tenant_day_usd": 99.9, "run_usd": 0.5})
    assert left["tenant_day_usd"] == pytest.approx(0.1)
    assert left["run_usd"] == pytest.approx(0.1)  # 1.5 of its own, but the day has 0.1
    assert left["agent_usd"] == pytest.approx(0.1)
    assert remaining_fraction(limits, {"run_usd": 1.5}) == pytest.approx(0.25)
    assert remaining_fraction(BudgetLimits(), {}) is None


def test_a_copy_with_other_budgets_answers_with_its_own_limits(policy):
    loaded = policy(POLICY)
    call = CallScope("acme")
    assert budget_limits(loaded, call).get("run_usd").limit == 5.0  # remembered for `loaded`
    smaller = policy("tenants:\n  acme:\n    budgets:\n      per_run: {usd: 0.01}\n")
    copied = loaded.model_copy(update={"tenants": smaller.tenants})
    assert budget_limits(copied, call).get("run_usd").limit == 0.01
    assert budget_limits(loaded, call).get("run_usd").limit == 5.0
