"""explain(): a readable report naming the rule that decides each question."""

from __future__ import annotations

from pathlib import Path

from podium.policies import CallScope, explain, load_policies

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "policies" / "default.yaml"


def _line(report: str, label: str) -> str:
    return next(line for line in report.splitlines() if line.strip().startswith(label))


def test_explain_names_the_deciding_rules():
    policy = load_policies(DEFAULT_POLICY)
    call = CallScope("acme", "research_brief", "writer")
    report = explain(policy, call, tool="publish_report", args={"filename": "../etc/x.md"})
    assert str(DEFAULT_POLICY) in report
    assert "ALLOW" in _line(report, "access")
    assert "[rule: agents.writer.tools.allow]" in _line(report, "access")
    assert "[rule: tools.publish_report.args.filename.under]" in _line(report, "arguments")
    assert "DENY" in _line(report, "arguments")
    assert "NEEDED" in _line(report, "approval")
    assert "[rule: tools.publish_report.requires_approval]" in _line(report, "approval")
    for rule in (
        "tenants.acme.rate_limits[0]",
        "tenants.acme.budgets.per_day.usd",
        "workflows.research_brief.budgets.per_run.usd",
        "agents.writer.budgets.per_run.tokens",
        "workflows.research_brief.model.downgrade",
        "workflows.research_brief.approve_plan",
        "global.output.pii.email",
        "agents.writer.data_scopes",
    ):
        assert f"[rule: {rule}]" in report, rule


def test_explain_default_deny_and_defaults(policy):
    report = explain(policy("{}"), CallScope(agent="researcher"), tool="search_corpus")
    assert "DENY" in _line(report, "access")
    assert "[rule: default-deny]" in _line(report, "access")
    assert "[rule: default-deny]" in _line(report, "data scopes")
    assert "no budget limit applies" in report
    assert "output passes unchanged" in report
    assert "tool 'search_corpus'" in report


def test_explain_without_tool_skips_tool_questions(policy):
    report = explain(policy("global: {tools: {allow: ['*']}}"), CallScope("acme"))
    assert "access" not in report
    assert report.startswith("policy for tenant 'acme'")


def test_explain_conditional_approval_depends_on_arguments(policy):
    ps = policy("tools: {pay: {requires_approval: {roles: [cfo], when: {amount: {min: 100}}}}}")
    without = explain(ps, CallScope(), tool="pay")
    assert "DEPENDS on arguments amount" in _line(without, "approval")
    with_args = explain(ps, CallScope(), tool="pay", args={"amount": 500})
    assert "NEEDED" in _line(with_args, "approval")
    assert "[rule: tools.pay.requires_approval]" in _line(with_args, "approval")
