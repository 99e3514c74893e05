"""Tool and agent runtime settings: schema defaults and lookup by scope."""

from __future__ import annotations

import pytest

from podium.policies import (
    AgentSettings,
    CallScope,
    PolicySet,
    RetrySettings,
    ToolSettings,
    agent_settings,
    tool_settings,
)

POLICY = """
global:
  timeout: 120
  retry: {attempts: 3}
workflows:
  research_brief:
    timeout: 60
agents:
  writer:
    retry: {attempts: 5, initial_delay: 1, backoff: 3, max_delay: 10, jitter: false}
tools:
  publish_report: {side_effects: true, timeout: 30, retry: {attempts: 1}}
  send_once: {side_effects: true, idempotent: true}
  search_corpus: {timeout: 10}
"""

TOOL_CASES = [
    (
        "publish_report",
        ToolSettings(True, False, 30.0, RetrySettings(attempts=1), "tools.publish_report"),
    ),
    ("send_once", ToolSettings(True, True, None, None, "tools.send_once")),
    ("search_corpus", ToolSettings(False, True, 10.0, None, "tools.search_corpus")),
    ("not_in_policy", ToolSettings(False, True, None, None, "default")),
]


@pytest.mark.parametrize(("tool", "expected"), TOOL_CASES)
def test_tool_settings(policy, tool, expected):
    assert tool_settings(policy(POLICY), CallScope(), tool) == expected


AGENT_CASES = [
    (
        CallScope(),
        AgentSettings(120.0, RetrySettings(attempts=3), "global.timeout", "global.retry"),
    ),
    (
        CallScope(workflow="research_brief", agent="writer"),
        AgentSettings(
            60.0,
            RetrySettings(attempts=5, initial_delay=1, backoff=3, max_delay=10, jitter=False),
            "workflows.research_brief.timeout",
            "agents.writer.retry",
        ),
    ),
]


@pytest.mark.parametrize(("call", "expected"), AGENT_CASES)
def test_agent_settings(policy, call, expected):
    assert agent_settings(policy(POLICY), call) == expected


def test_retry_defaults_and_bounds():
    retry = RetrySettings()
    assert (retry.attempts, retry.initial_delay, retry.backoff, retry.max_delay, retry.jitter) == (
        3,
        0.5,
        2.0,
        30.0,
        True,
    )
    with pytest.raises(ValueError):
        RetrySettings(backoff=0.5)
    assert agent_settings(PolicySet(), CallScope()) == AgentSettings()
