"""Argument constraints: each refusal names the argument and the constraint."""

from __future__ import annotations

import pytest

from podium.policies import CallScope, evaluate_arguments
from podium.policies.arguments import normalise_path

POLICY = r"""
tools:
  publish_report:
    args:
      path: {required: true, under: "reports/", pattern: '[\w./-]+\.md'}
      title: {max_length: 10}
  absolute:
    args:
      path: {under: /srv/reports}
  fetch:
    args:
      url: {hosts: [example.com, "*.docs.example.org"]}
  pay:
    args:
      amount: {min: 0.5, max: 100}
      currency: {one_of: [EUR, USD]}
      flag: {one_of: [1, 2]}
      tags: {max_length: 2}
"""

CASES = [
    # (tool, args, allowed, rule or None, argument or None)
    ("publish_report", {"path": "reports/q3.md"}, True, None, None),
    ("publish_report", {"path": "reports/2024/q3.md"}, True, None, None),
    ("publish_report", {"path": "reports/../reports/q3.md"}, True, None, None),
    ("publish_report", {"path": "./reports/q3.md"}, True, None, None),
    ("publish_report", {}, False, "required", "path"),
    ("publish_report", {"path": "reports/q3.txt"}, False, "pattern", "path"),
    ("publish_report", {"path": "reports/q3.md", "title": "x" * 11}, False, "max_length", "title"),
    ("publish_report", {"path": "reports/q3.md", "other": "not constrained"}, True, None, None),
    ("fetch", {"url": "https://example.com/a"}, True, None, None),
    ("fetch", {"url": "http://EXAMPLE.com:8080/a"}, True, None, None),
    ("fetch", {"url": "https://api.docs.example.org/x"}, True, None, None),
    ("fetch", {"url": "https://docs.example.org/x"}, False, "hosts", "url"),
    ("fetch", {"url": "https://example.com.evil.io/"}, False, "hosts", "url"),
    ("fetch", {"url": "https://example.com@evil.io/"}, False, "hosts", "url"),
    ("fetch", {"url": "example.com/path"}, False, "hosts", "url"),
    ("fetch", {"url": 42}, False, "hosts", "url"),
    ("fetch", {}, True, None, None),
    ("pay", {"amount": 0.5, "currency": "EUR"}, True, None, None),
    ("pay", {"amount": 100}, True, None, None),
    ("pay", {"amount": 0.49}, False, "min", "amount"),
    ("pay", {"amount": 100.01}, False, "max", "amount"),
    ("pay", {"amount": "50"}, False, "min", "amount"),
    ("pay", {"amount": True}, False, "min", "amount"),
    ("pay", {"amount": float("nan")}, False, "min", "amount"),
    ("pay", {"currency": "GBP"}, False, "one_of", "currency"),
    ("pay", {"flag": 1}, True, None, None),
    ("pay", {"flag": True}, False, "one_of", "flag"),
    ("pay", {"tags": ["a", "b"]}, True, None, None),
    ("pay", {"tags": ["a", "b", "c"]}, False, "max_length", "tags"),
    ("pay", {"tags": 3}, False, "max_length", "tags"),
    ("unconstrained", {"anything": 1}, True, None, None),
]


@pytest.mark.parametrize(("tool", "args", "allowed", "constraint", "argument"), CASES)
def test_evaluate_arguments(policy, tool, args, allowed, constraint, argument):
    decision = evaluate_arguments(policy(POLICY), CallScope(), tool, args)
    assert decision.allowed is allowed, decision.reason
    if not allowed:
        assert decision.rule == f"tools.{tool}.args.{argument}.{constraint}"
        assert decision.details["argument"] == argument
        assert decision.details["constraint"] == constraint
        assert repr(argument) in decision.reason


ESCAPES = [
    "../secrets.md",
    "reports/../../etc/passwd.md",
    "reports/../secrets.md",
    "/etc/passwd.md",
    "//etc/passwd.md",
    "reports\\..\\..\\x.md",
    "C:\\Windows\\x.md",
    "~/reports/x.md",
    "reportsX/x.md",
    "reports.md",
    "",
    "reports/\x00.md",
]


@pytest.mark.parametrize("path", ESCAPES)
def test_under_rejects_escapes(policy, path):
    decision = evaluate_arguments(policy(POLICY), CallScope(), "publish_report", {"path": path})
    assert not decision.allowed
    assert decision.rule == "tools.publish_report.args.path.under"


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/srv/reports/a.md", True),
        ("/srv/reports/x/../a.md", True),
        ("/srv/reports/../a.md", False),
        ("/../srv/reports/a.md", True),  # ".." at the root stays at the root
        ("/srv/reportsX/a.md", False),
        ("reports/a.md", False),  # relative against an absolute base: refused
    ],
)
def test_under_with_absolute_base(policy, path, allowed):
    decision = evaluate_arguments(policy(POLICY), CallScope(), "absolute", {"path": path})
    assert decision.allowed is allowed, decision.reason


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("a/./b/../c", "a/c"), ("a\\b", "a/b"), ("//x//y/", "/x/y"), ("../a", "../a")],
)
def test_normalise_path(raw, normal):
    assert normalise_path(raw) == normal
