"""Approvals: tool calls (with conditions and exempt roles), plans and answers."""

from __future__ import annotations

import pytest

from podium.policies import CallScope, approval_for, requires_approval

POLICY = """
global:
  approve_answer: {roles: [reviewer], expires_in: 86400}
tenants:
  strict:
    approve_plan: true
    approve_answer: true
workflows:
  research_brief:
    approve_plan: false
tools:
  publish_report:
    requires_approval: {roles: [editor], expires_in: 3600}
  pay:
    requires_approval:
      roles: [finance, admin]
      when: {amount: {min: 1000}}
      unless_roles: [cfo]
  legacy:
    requires_approval: {required: false}
"""

TOOL_CASES = [
    # (tool, args, roles, needs approval, rule, approver roles)
    (
        "publish_report",
        {"path": "reports/a.md"},
        set(),
        True,
        "tools.publish_report.requires_approval",
        ("editor",),
    ),
    # Having the approver role does not approve one's own call.
    ("publish_report", {}, {"editor"}, True, "tools.publish_report.requires_approval", ("editor",)),
    ("pay", {"amount": 5000}, set(), True, "tools.pay.requires_approval", ("finance", "admin")),
    ("pay", {"amount": 999}, set(), False, "tools.pay.requires_approval.when", None),
    ("pay", {}, set(), False, "tools.pay.requires_approval.when", None),
    ("pay", {"amount": 5000}, {"cfo"}, False, "tools.pay.requires_approval.unless_roles", None),
    ("legacy", {}, set(), False, "tools.legacy.requires_approval", None),
    ("search_corpus", {"query": "x"}, set(), False, "default", None),
]


@pytest.mark.parametrize(("tool", "args", "roles", "needed", "rule", "approvers"), TOOL_CASES)
def test_requires_approval(policy, tool, args, roles, needed, rule, approvers):
    call = CallScope("acme", "research_brief", "writer", frozenset(roles))
    decision = requires_approval(policy(POLICY), call, tool, args)
    assert (decision.allowed, decision.rule) == (not needed, rule), decision.reason
    if needed:
        assert decision.details["roles"] == approvers
        assert "expires_in" in decision.details


def test_tool_approval_carries_expiry(policy):
    decision = requires_approval(policy(POLICY), CallScope(), "publish_report", {})
    assert decision.details["expires_in"] == 3600
    assert "'editor'" in decision.reason


GATE_CASES = [
    # (tenant, workflow, kind, needed, rule, roles)
    ("acme", "research_brief", "plan", False, "workflows.research_brief.approve_plan", None),
    ("acme", None, "plan", False, "default", None),
    ("acme", "research_brief", "answer", True, "global.approve_answer", ("reviewer",)),
    ("strict", "research_brief", "plan", False, "workflows.research_brief.approve_plan", None),
    ("strict", "other", "plan", True, "tenants.strict.approve_plan", ()),
    ("strict", "research_brief", "answer", True, "tenants.strict.approve_answer", ()),
]


@pytest.mark.parametrize(("tenant", "workflow", "kind", "needed", "rule", "roles"), GATE_CASES)
def test_approval_for(policy, tenant, workflow, kind, needed, rule, roles):
    decision = approval_for(policy(POLICY), CallScope(tenant, workflow, "writer"), kind)
    assert (decision.allowed, decision.rule) == (not needed, rule), decision.reason
    if needed:
        assert decision.details["roles"] == roles


def test_approval_kind_is_checked(policy):
    with pytest.raises(ValueError, match="'plan' or 'answer'"):
        approval_for(policy("{}"), CallScope(), "tool")  # type: ignore[arg-type]
