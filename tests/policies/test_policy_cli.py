"""`podium policies check|explain`, registered on a bare parser as the CLI will do."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from podium.commands import policies as policies_command
from podium.errors import ConfigurationError

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "policies" / "default.yaml"


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="podium")
    sub = parser.add_subparsers(dest="command")
    policies_command.register(sub)
    args = parser.parse_args(argv)
    return args.handler(args)


def test_check_valid_file(capsys):
    assert run(["policies", "check", str(DEFAULT_POLICY)]) == 0
    assert "valid" in capsys.readouterr().out


def test_check_counts_each_section_in_the_singular_or_plural(write_policy, capsys):
    one = write_policy(
        """
        tenants: {acme: {}}
        workflows: {brief: {}, digest: {}}
        agents: {}
        tools: {calculate: {}}
        """
    )
    assert run(["policies", "check", str(one)]) == 0
    assert capsys.readouterr().out == (
        f"{one}: valid (1 file: 1 tenant, 2 workflows, 0 agents, 1 tool, 0 models)\n"
    )
    two = write_policy("tenants: {acme: {}, globex: {}}\n", name="more.yaml")
    assert run(["policies", "check", str(two)]) == 0
    assert capsys.readouterr().out == (
        f"{two}: valid (1 file: 2 tenants, 0 workflows, 0 agents, 0 tools, 0 models)\n"
    )


def test_check_bad_file_exits_2_with_location(write_policy, capsys):
    path = write_policy("global:\n  tools:\n    alow: []\n")
    assert run(["policies", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3 global.tools.alow: unknown key 'alow'" in err


def test_check_against_a_workflow(write_policy, capsys):
    argv = ["policies", "check", str(DEFAULT_POLICY), "--workflow", "research_brief"]
    assert run(argv) == 0
    stray = write_policy("agents:\n  writer:\n    tools: {allow: [send_email]}\n")
    argv = ["policies", "check", str(stray), "--workflow", "research_brief"]
    assert run(argv) == 2
    assert "unknown tool 'send_email'" in capsys.readouterr().err
    assert run([*argv, "--known-tool", "send_email"]) == 0


def test_explain(capsys):
    argv = ["policies", "explain", "--file", str(DEFAULT_POLICY), "--tenant", "acme"]
    argv += ["--workflow", "research_brief", "--agent", "researcher", "--tool", "calculate"]
    assert run([*argv, "--args", '{"expression": "1+1"}']) == 0
    out = capsys.readouterr().out
    assert "[rule: agents.researcher.tools.deny]" in out
    assert "[rule: tools.calculate.args]" in out


def test_explain_rejects_bad_args():
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        run(["policies", "explain", "--file", str(DEFAULT_POLICY), "--args", "{nope"])
    with pytest.raises(ConfigurationError, match="JSON object"):
        run(["policies", "explain", "--file", str(DEFAULT_POLICY), "--args", "[1]"])


def test_group_without_action_prints_usage(capsys):
    assert run(["policies"]) == 2
    assert "check" in capsys.readouterr().err


def test_explain_without_a_file_uses_the_shipped_policy_outside_the_repo(capsys):
    # Tests run in a temporary directory, where no policies/default.yaml exists.
    argv = ["policies", "explain", "--agent", "writer", "--tool", "publish_report"]
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert "podium/policies/default.yaml" in out
    assert "tools.publish_report.requires_approval" in out
