"""Budgets: which limits apply (with their rules), nesting caps, and the fit check."""

from __future__ import annotations

import pytest

from podium.errors import BudgetExceeded
from podium.policies import (
    BudgetLimits,
    CallScope,
    budget_error,
    budget_limits,
    evaluate_budget,
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

EVALUATE_CASES = [
    # (spent, requested, allowed, rule, scope, unit)
    ({}, {"tokens": 1000, "usd": 0.01}, True, None, None, None),
    (
        {"agent_tokens": 19500},
        {"tokens": 1000},
        False,
        "workflows.research_brief.budgets.per_agent.tokens",
        "agent",
        "tokens",
    ),
    (
        {"run_usd": 1.95, "agent_usd": 0.0},
        {"usd": 0.1},
        False,
        "workflows.research_brief.budgets.per_run.usd",
        "run",
        "usd",
    ),
    # The outermost level that would go over is the one reported.
    (
        {"tenant_day_usd": 99.99, "run_usd": 1.99, "agent_usd": 0.39},
        {"usd": 0.02},
        False,
        "tenants.acme.budgets.per_day.usd",
        "tenant_day",
        "usd",
    ),
    # Level-specific requests win over the unit shortcut.
    ({"run_usd": 1.95}, {"usd": 0.1, "run_usd": 0.01}, True, None, None, None),
    # Float sums that exactly fill a limit fit.
    ({"agent_usd": 0.1 + 0.2}, {"usd": 0.1}, True, None, None, None),
    # Already over: even a free call is refused.
    ({"agent_tokens": 20001}, {}, False, None, "agent", "tokens"),
]


@pytest.mark.parametrize(("spent", "requested", "allowed", "rule", "scope", "unit"), EVALUATE_CASES)
def test_evaluate_budget(policy, spent, requested, allowed, rule, scope, unit):
    decision = evaluate_budget(budget_limits(policy(POLICY), ACME), spent, requested)
    assert decision.allowed is allowed, decision.reason
    if not allowed:
        assert decision.details["scope"] == scope
        assert decision.details["unit"] == unit
        if rule:
            assert decision.rule == rule
        error = budget_error(decision, tenant_id="acme")
        assert isinstance(error, BudgetExceeded)
        assert (error.scope, error.unit, error.rule) == (scope, unit, decision.rule)
        assert "acme" in str(error)


def test_allowed_budget_reports_tightest_level(policy):
    limits = budget_limits(policy(POLICY), ACME)
    decision = evaluate_budget(limits, {"agent_usd": 0.3}, {"usd": 0.05, "tokens": 10})
    assert decision.rule == "workflows.research_brief.budgets.per_agent.usd"
    assert decision.details["remaining"]["agent_usd"] == pytest.approx(0.05)


def test_no_limits_allows_everything():
    decision = evaluate_budget(BudgetLimits(), {"run_usd": 1e9}, {"usd": 1e9})
    assert (decision.allowed, decision.rule) == (True, "default")


def test_remaining_is_capped_by_the_parent(policy):
    limits = budget_limits(policy(POLICY), ACME)
    left = remaining(limits, {"tenant_day_usd": 99.9, "run_usd": 0.5})
    assert left["tenant_day_usd"] == pytest.approx(0.1)
    assert left["run_usd"] == pytest.approx(0.1)  # 1.5 of its own, but the day has 0.1
    assert left["agent_usd"] == pytest.approx(0.1)
    assert remaining_fraction(limits, {"run_usd": 1.5}) == pytest.approx(0.25)
    assert remaining_fraction(BudgetLimits(), {}) is None
