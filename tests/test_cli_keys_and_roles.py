"""The `podium` command's audit key and asserted roles, run as a user runs them.

Every command that writes audit events uses PODIUM_AUDIT_KEY, so a keyed verify passes
after a keyed demo and an approval; without the key verify calls the chain unkeyed and says
what that means. `PODIUM_CLI_ROLES=off` turns the operator's `--role` off.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def podium(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "podium.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _modes(cwd: Path) -> set[str]:
    with sqlite3.connect(cwd / ".podium" / "podium.db") as db:
        return {row[0] for row in db.execute("SELECT DISTINCT mode FROM podium_audit_events")}


def _decide_command(stderr: str) -> list[str]:
    line = next(x for x in stderr.splitlines() if "decide with: " in x)
    words = line.split("decide with: ", 1)[1].split("   ")[0].split()
    # The hint starts podium as it was started: here `python -m podium.cli`.
    return words[3:] if words[1:3] == ["-m", "podium.cli"] else words[1:]


def test_a_keyed_demo_verifies_with_the_key(tmp_path):
    done = podium("demo", "--approve-all", cwd=tmp_path, PODIUM_AUDIT_KEY="x")
    assert done.returncode == 0, done.stderr
    assert _modes(tmp_path) == {"hmac-sha256"}
    verified = podium("audit", "verify", cwd=tmp_path, PODIUM_AUDIT_KEY="x")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("OK    tenant default: ")
    assert "unkeyed" not in verified.stdout + verified.stderr
    # Without the key the signed rows cannot be checked, and verify says so.
    unkeyed = podium("audit", "verify", cwd=tmp_path)
    assert unkeyed.returncode == 1 and "seq 1 key_required" in unkeyed.stdout
    wrong = podium("audit", "verify", cwd=tmp_path, PODIUM_AUDIT_KEY="y")
    assert wrong.returncode == 1 and "FAIL  tenant default" in wrong.stdout


def test_a_decision_from_the_cli_is_signed_with_the_key(tmp_path):
    stopped = podium("demo", cwd=tmp_path, PODIUM_AUDIT_KEY="k")
    assert stopped.returncode == 0 and "waiting for approval" in stopped.stderr
    approved = podium(*_decide_command(stopped.stderr), cwd=tmp_path, PODIUM_AUDIT_KEY="k")
    assert approved.returncode == 0, approved.stderr
    listed = podium("approvals", cwd=tmp_path, PODIUM_AUDIT_KEY="k")
    assert listed.returncode == 0
    assert _modes(tmp_path) == {"hmac-sha256"}
    verified = podium("audit", "verify", cwd=tmp_path, PODIUM_AUDIT_KEY="k")
    assert verified.returncode == 0, verified.stdout


def test_without_the_key_verify_calls_the_chain_unkeyed_and_says_what_that_means(tmp_path):
    done = podium("demo", "--approve-all", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _modes(tmp_path) == {"sha256"}
    verified = podium("audit", "verify", cwd=tmp_path)
    assert verified.returncode == 0
    assert verified.stdout.rstrip().endswith(", unkeyed (SHA-256)")
    assert "unkeyed (plain SHA-256, PODIUM_AUDIT_KEY unset)" in verified.stderr
    assert "recompute every hash" in verified.stderr
    # With a key, the unkeyed rows are named as written without it.
    keyed = podium("audit", "verify", cwd=tmp_path, PODIUM_AUDIT_KEY="x")
    assert keyed.returncode == 1 and "seq 1 unkeyed" in keyed.stdout


def test_cli_roles_off_refuses_role_and_approve_all_at_a_role_gate(tmp_path):
    refused = podium("demo", "--role", "editor", cwd=tmp_path, PODIUM_CLI_ROLES="off")
    assert refused.returncode == 2
    assert "--role editor refused: PODIUM_CLI_ROLES=off" in refused.stderr
    assert "LangGraph server" in refused.stderr
    # --approve-all acts with no role, so the editor gate is refused and stays open.
    stuck = podium("demo", "--approve-all", cwd=tmp_path, PODIUM_CLI_ROLES="off")
    assert stuck.returncode == 2
    assert "may not decide gate" in stuck.stderr and "needs one of: editor" in stuck.stderr
    assert not (tmp_path / "reports").exists()
    listed = podium("approvals", cwd=tmp_path)
    assert "publish_report" in listed.stdout and "pending" in listed.stdout
    # Without a terminal the stop message does not suggest a --role that would be refused.
    stopped = podium("demo", cwd=tmp_path, PODIUM_CLI_ROLES="off")
    assert "PODIUM_CLI_ROLES=off: decide it on the LangGraph server" in stopped.stderr
    assert "decide with:" not in stopped.stderr


@pytest.mark.parametrize("value", ["no", "false", "0"])
def test_cli_roles_takes_on_or_off_only(tmp_path, value):
    done = podium("demo", "--role", "editor", cwd=tmp_path, PODIUM_CLI_ROLES=value)
    assert done.returncode == 2
    assert f"PODIUM_CLI_ROLES={value!r} is not understood" in done.stderr


def test_approve_records_the_cli_user_as_the_decider(tmp_path):
    stopped = podium("demo", cwd=tmp_path)
    args = _decide_command(stopped.stderr)
    approved = podium(*args, "--user", "ana", cwd=tmp_path)
    assert approved.returncode == 0, approved.stderr
    with sqlite3.connect(tmp_path / ".podium" / "podium.db") as db:
        [(decided_by, decision)] = db.execute(
            "SELECT decided_by, decision FROM podium_approvals WHERE status = 'decided'"
        ).fetchall()
        [(actor, payload)] = db.execute(
            "SELECT actor_type || ':' || actor_name, payload FROM podium_audit_events "
            "WHERE kind = 'approval'"
        ).fetchall()
    assert decided_by == "ana" and '"user":"ana"' in decision
    assert actor == "user:ana" and '"user":"ana"' in payload


def test_a_second_decision_on_a_gate_names_the_first(tmp_path):
    stopped = podium("demo", cwd=tmp_path)
    args = _decide_command(stopped.stderr)
    assert podium(*args, "--user", "ana", cwd=tmp_path).returncode == 0
    reject = ["reject", *args[1:]]
    late = podium(*reject, "--user", "eve", cwd=tmp_path)
    assert late.returncode == 2
    assert "was already decided: approve by ana at " in late.stderr
    assert "nothing was done twice" in late.stderr
