"""Tool access and data scopes: the most specific scope decides; default deny."""

from __future__ import annotations

import pytest

from podium.errors import PolicyViolation
from podium.policies import (
    CallScope,
    Decision,
    PolicySet,
    evaluate_data_scope,
    evaluate_tool,
)

TOOLS = """
global:
  tools: {allow: [search_corpus], deny: [shell]}
tenants:
  acme:
    tools: {allow: ["*"], deny: [calculate]}
  locked:
    tools: {deny: ["*"]}
workflows:
  research_brief:
    tools: {allow: [calculate]}
agents:
  researcher:
    tools: {allow: [search_corpus], deny: ["*"]}
  writer:
    tools: {allow: [shell, "*"], deny: ["*"]}
tools:
  publish_report: {enabled: false}
"""

R, W = "research_brief", "researcher"

TOOL_CASES = [
    # (tenant, workflow, agent, tool, allowed, rule)
    ("default", None, None, "search_corpus", True, "global.tools.allow"),
    ("default", None, None, "shell", False, "global.tools.deny"),
    ("default", None, None, "calculate", False, "default-deny"),
    ("acme", None, None, "anything", True, "tenants.acme.tools.allow"),
    ("acme", None, None, "calculate", False, "tenants.acme.tools.deny"),
    ("locked", None, None, "search_corpus", False, "tenants.locked.tools.deny"),
    ("acme", R, None, "calculate", True, "workflows.research_brief.tools.allow"),
    ("default", R, "analyst", "calculate", True, "workflows.research_brief.tools.allow"),
    ("acme", R, W, "search_corpus", True, "agents.researcher.tools.allow"),
    ("acme", R, W, "calculate", False, "agents.researcher.tools.deny"),
    # A name beats "*", and deny beats allow at the same level of detail.
    ("default", None, "writer", "shell", True, "agents.writer.tools.allow"),
    ("default", None, "writer", "search_corpus", False, "agents.writer.tools.deny"),
    # The tool scope is the most specific: disabled beats every allow.
    ("acme", None, None, "publish_report", False, "tools.publish_report.enabled"),
    ("default", None, "unknown_agent", "search_corpus", True, "global.tools.allow"),
]


@pytest.mark.parametrize(("tenant", "workflow", "agent", "tool", "allowed", "rule"), TOOL_CASES)
def test_evaluate_tool(policy, tenant, workflow, agent, tool, allowed, rule):
    decision = evaluate_tool(policy(TOOLS), CallScope(tenant, workflow, agent), tool)
    assert (decision.allowed, decision.rule) == (allowed, rule), decision.reason
    assert tool in decision.reason
    assert decision.details["tool"] == tool


def test_default_deny_says_where_to_allow(policy):
    decision = evaluate_tool(policy("{}"), CallScope(agent="researcher"), "search_corpus")
    assert decision.rule == "default-deny"
    assert "agents.researcher.tools.allow" in decision.reason


def test_decision_is_frozen_and_raises_violation():
    decision = Decision(False, "no", "global.tools.deny", {"tool": "x"})
    with pytest.raises(AttributeError):
        decision.allowed = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        decision.details["tool"] = "y"  # type: ignore[index]
    with pytest.raises(PolicyViolation) as caught:
        decision.raise_if_denied()
    assert (caught.value.rule, caught.value.details) == ("global.tools.deny", {"tool": "x"})
    ok = Decision(True, "yes", "default")
    assert ok.raise_if_denied() is ok


SCOPES = """
global:
  data_scopes: ["store:{tenant}/*"]
tenants:
  open:
    data_scopes: ["*"]
workflows:
  research_brief:
    data_scopes: ["corpus:*", "store:{tenant}/{workflow}/*"]
agents:
  researcher:
    data_scopes: ["corpus:energy"]
  writer:
    data_scopes: []
  auditor:
    data_scopes: ["audit:{agent}"]
"""

SCOPE_CASES = [
    # (tenant, workflow, agent, namespace, allowed, rule)
    ("acme", None, None, "store:acme/notes", True, "global.data_scopes"),
    ("acme", None, None, "store:acme/a/b", True, "global.data_scopes"),
    ("acme", None, None, "store:globex/notes", False, "global.data_scopes"),
    ("acme", None, None, "store:acme", False, "global.data_scopes"),
    ("a.c", None, None, "store:abc/x", False, "global.data_scopes"),  # tenant is literal
    ("open", None, None, "anything:at/all", True, "tenants.open.data_scopes"),
    ("acme", R, None, "corpus:finance", True, "workflows.research_brief.data_scopes"),
    ("acme", R, None, "store:acme/research_brief/x", True, "workflows.research_brief.data_scopes"),
    ("acme", R, None, "store:acme/other/x", False, "workflows.research_brief.data_scopes"),
    ("acme", R, W, "corpus:energy", True, "agents.researcher.data_scopes"),
    ("acme", R, W, "corpus:energy2", False, "agents.researcher.data_scopes"),
    ("acme", R, W, "corpus:finance", False, "agents.researcher.data_scopes"),
    ("acme", R, "writer", "corpus:energy", False, "agents.writer.data_scopes"),
    ("acme", None, "auditor", "audit:auditor", True, "agents.auditor.data_scopes"),
]


@pytest.mark.parametrize(
    ("tenant", "workflow", "agent", "namespace", "allowed", "rule"), SCOPE_CASES
)
def test_evaluate_data_scope(policy, tenant, workflow, agent, namespace, allowed, rule):
    decision = evaluate_data_scope(policy(SCOPES), CallScope(tenant, workflow, agent), namespace)
    assert (decision.allowed, decision.rule) == (allowed, rule), decision.reason
    assert decision.details["namespace"] == namespace


def test_data_scope_default_deny_without_any_list(policy):
    decision = evaluate_data_scope(policy("{}"), CallScope(agent="researcher"), "corpus:energy")
    assert (decision.allowed, decision.rule) == (False, "default-deny")
    assert "agents.researcher.data_scopes" in decision.reason


def test_placeholder_the_caller_cannot_fill_matches_nothing(policy):
    ps = policy('global: {data_scopes: ["audit:{agent}", "x:*"]}')
    assert not evaluate_data_scope(ps, CallScope(), "audit:").allowed
    assert evaluate_data_scope(ps, CallScope(), "x:1").allowed


def test_the_baseline_denies_every_tool_and_namespace_naming_the_key_that_allows_it():
    baseline = PolicySet.baseline()
    assert baseline.is_baseline and not PolicySet().is_baseline
    call = CallScope(tenant="acme", workflow="my_brief", agent="researcher")
    tool = evaluate_tool(baseline, call, "search_corpus")
    assert (tool.allowed, tool.rule) == (False, "default-deny")
    assert "the workflow has no policy" in tool.reason
    assert "`agents.researcher.tools.allow: [search_corpus]`" in tool.reason
    data = evaluate_data_scope(baseline, call, "corpus:energy")
    assert (data.allowed, data.rule) == (False, "default-deny")
    assert "`agents.researcher.data_scopes`" in data.reason
    workflow_only = evaluate_tool(baseline, CallScope(workflow="my_brief"), "calculate")
    assert "`workflows.my_brief.tools.allow: [calculate]`" in workflow_only.reason
