"""Policy values are safe: linear-time patterns, bounded numbers, errors with file:line."""

from __future__ import annotations

import pytest

from podium.errors import PolicyError
from podium.policies import load_policies
from podium.policies.arguments import check
from podium.policies.schema import ArgConstraint


@pytest.mark.timeout(20)
def test_a_catastrophic_pattern_runs_in_linear_time():
    # On a backtracking engine this pattern takes time doubling every 2 characters: a
    # 24-character argument took 0.56 s, 80 characters would never finish.
    constraint = ArgConstraint(pattern="([a-z]+)+$")
    assert check(constraint, "a" * 80 + "!") == (
        "pattern",
        f"{'a' * 80 + '!'!r} does not match '([a-z]+)+$'",
    )
    assert check(constraint, "a" * 100_000) is None


@pytest.mark.parametrize(
    ("pattern", "line"),
    [(r"'(a)\1'", 5), ("'(?=x)y'", 5), ("'(?<!x)y'", 5)],
)
def test_patterns_re2_cannot_run_are_refused_at_load_with_file_and_line(tmp_path, pattern, line):
    policy = tmp_path / "p.yaml"
    policy.write_text(f"tools:\n  search:\n    args:\n      q:\n        pattern: {pattern}\n")
    with pytest.raises(PolicyError) as caught:
        load_policies(policy)
    assert caught.value.line == line and caught.value.path == str(policy)
    assert "tools.search.args.q.pattern" in str(caught.value)
    assert "backreferences" in str(caught.value) and "lookaround" in str(caught.value)


def test_redaction_patterns_run_on_re2(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text("global:\n  output:\n    redact:\n      - {pattern: '(a|b)\\1'}\n")
    with pytest.raises(PolicyError, match=r"p.yaml:4 .*redact.*invalid regular expression"):
        load_policies(policy)


BOUNDS = [
    ("global:\n  retry:\n    attempts: 1000000\n", 3, "global.retry.attempts", "20"),
    ("global:\n  timeout: 1e9\n", 2, "global.timeout", "86400"),
    ("models:\n  m:\n    rate_limit: {calls: 10, per: 1e12}\n", 3, "models.m.rate_limit.per", None),
    (
        "global:\n  budgets:\n    per_run: {tokens: 1000000000000000}\n",
        3,
        "global.budgets.per_run.tokens",
        None,
    ),
    ("tools:\n  t:\n    breaker: {failures: 99999999}\n", 3, "tools.t.breaker.failures", None),
    ("workflows:\n  w:\n    max_tasks: 1000000\n", 3, "workflows.w.max_tasks", "10000"),
    ("global:\n  retry:\n    max_delay: 1e7\n", 3, "global.retry.max_delay", None),
]


@pytest.mark.parametrize(("text", "line", "key", "bound"), BOUNDS)
def test_numbers_have_upper_bounds(tmp_path, text, line, key, bound):
    policy = tmp_path / "p.yaml"
    policy.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policies(policy)
    message = str(caught.value)
    assert f"p.yaml:{line} {key}: " in message, message
    assert "less than or equal to" in message
    if bound:
        assert bound in message
