"""Tenant run limits: which limit applies to a tenant, and the admission decision."""

from __future__ import annotations

import pytest

from podium.policies import RunLimit, admit, run_limit
from podium.policies.runs import DEFAULT_RUN_WAIT

POLICY = """
global:
  max_runs: 20
  run_wait: 10
tenants:
  acme:
    max_runs: 100
  quiet:
    run_wait: 0
"""


@pytest.mark.parametrize(
    ("tenant", "expected"),
    [
        ("default", RunLimit("default", 20, 10.0, "global.max_runs")),
        ("acme", RunLimit("acme", 100, 10.0, "tenants.acme.max_runs")),  # global run_wait
        ("quiet", RunLimit("quiet", 20, 0.0, "global.max_runs")),  # own run_wait
    ],
)
def test_run_limit(policy, tenant, expected):
    assert run_limit(policy(POLICY), tenant) == expected


def test_no_max_runs_anywhere_means_no_limit(policy):
    assert run_limit(policy("tenants:\n  acme:\n    run_wait: 5\n"), "acme") is None
    assert run_limit(None, "acme") is None


def test_a_tenant_limit_alone_waits_the_default(policy):
    limit = run_limit(policy("tenants:\n  acme:\n    max_runs: 3\n"), "acme")
    assert limit == RunLimit("acme", 3, DEFAULT_RUN_WAIT, "tenants.acme.max_runs")
    assert run_limit(policy("tenants:\n  acme:\n    max_runs: 3\n"), "other") is None


@pytest.mark.parametrize(("busy", "allowed"), [(0, True), (19, True), (20, False), (25, False)])
def test_admit(busy, allowed):
    decision = admit(RunLimit("acme", 20, 1.0, "global.max_runs"), busy)
    assert decision.allowed is allowed
    if not allowed:
        assert f"{busy} runs in flight or queued" in decision.reason
        assert "(global.max_runs) is 20" in decision.reason


def test_admit_without_a_limit():
    assert admit(None, 10_000).allowed
