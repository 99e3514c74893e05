"""Exactly-once with a model that makes up new call ids on every call, across a SIGKILL.

The child runs one task whose model asks for `pay` (a side effect) and `wait` in one
reply, with random call ids. In "block" mode `wait` hangs after `pay` ran; the parent
kills the child with SIGKILL and resumes the thread in a new process. The task runs
again from its start (`worker_durability="exit"`), and its recorded reply is replayed:
the same call ids, so `pay` is not repeated, and the replayed call is not paid again.
That second run is the task's attempt 2, and its audit events and usage rows say so.

In "hang" mode `pay` itself hangs after its effect: the kill leaves it in doubt. The
resumed run's task moves to `waiting` and the run waits at an effect gate, its status
`waiting`: `podium resume` exits 3 and says so, `podium show` and `podium threads` say
waiting, `podium approvals` lists it, and `podium effects resolve ... done` finishes the
run. Resumed through the embedded API, `invoke` returns status `waiting` and the thread
index says so too; `podium.decide(..., Decision(decision="done"))` finishes it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import podium

SCRIPTS = Path(__file__).parent / "recovery_scripts"
ROOT = Path(podium.__file__).resolve().parent.parent
WAIT_LIMIT = 20.0


def _env(workdir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SCRIPTS), str(ROOT)]),
        "PODIUM_WORKFLOWS": "random_ids=random_ids_flow:build_from_env",
        "RANDOM_IDS_WORKDIR": str(workdir),
        # Every process of a thread (the killed child, the CLI, the resume) signs its audit
        # events with this key, so `podium audit verify` with it passes only if all did.
        "PODIUM_AUDIT_KEY": "exactly-once-key",
    }


def _args(url: str, tenant: str, thread: str, workdir: Path, mode: str) -> list[str]:
    return [
        sys.executable,
        str(SCRIPTS / "random_ids_flow.py"),
        url,
        tenant,
        thread,
        str(workdir),
        mode,
    ]


def _run(url: str, tenant: str, thread: str, workdir: Path, mode: str) -> dict:
    done = subprocess.run(
        _args(url, tenant, thread, workdir, mode),
        capture_output=True,
        text=True,
        env=_env(workdir),
        cwd=workdir,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _payments(workdir: Path) -> list[str]:
    path = workdir / "payments.txt"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _hung(url: str, tenant: str, thread: str, workdir: Path, mode: str) -> bool:
    """Whether the child hangs where the test wants it: in "block" mode after the payment
    completed in the ledger (`pay` and `wait` run in parallel), in "hang" mode inside it."""
    if not (workdir / "blocked").exists():
        return False
    if mode == "hang":
        return True
    with podium.open_runtime(url) as rt:
        effects = rt.services.effects.list(tenant, thread_id=thread)
    return [e.status for e in effects] == ["completed"]


def _kill_when_hung(url: str, tenant: str, thread: str, workdir: Path, mode: str) -> None:
    child = subprocess.Popen(
        _args(url, tenant, thread, workdir, mode),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(workdir),
        cwd=workdir,
    )
    try:
        deadline = time.monotonic() + WAIT_LIMIT
        while not _hung(url, tenant, thread, workdir, mode):
            assert child.poll() is None, f"the child ended early: {child.communicate()[1]}"
            assert time.monotonic() < deadline, "the child never reached its hang"
            time.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=10)
    assert child.returncode == -signal.SIGKILL
    assert _payments(workdir) == ["paid 5"]


def _podium(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "podium.cli", *args],
        capture_output=True,
        text=True,
        env=_env(workdir),
        cwd=workdir,
        timeout=60,
    )


def test_a_killed_task_replays_its_recorded_reply_so_the_payment_runs_once_as_attempt_2(
    durable_url, tenant, tmp_path
):
    reference_dir, crash_dir = tmp_path / "reference", tmp_path / "crash"
    reference_dir.mkdir()
    crash_dir.mkdir()
    reference = _run(durable_url, tenant, f"{tenant}-ref", reference_dir, "reference")
    assert (reference["status"], reference["answer"]) == ("completed", "paid")
    assert reference["usage_calls"] == 2 and reference["model_calls"] == 2

    thread = f"{tenant}-crash"
    _kill_when_hung(durable_url, tenant, thread, crash_dir, "block")
    resumed = _run(durable_url, tenant, thread, crash_dir, "resume")

    assert (resumed["status"], resumed["answer"]) == ("completed", "paid")
    assert _payments(crash_dir) == ["paid 5"], "the payment ran again after the crash"
    assert resumed["effects"] == [["t1", "pay", "completed", 1]]
    # The reply that asked for the payment was replayed, not asked for (or paid) again:
    # the new process called the model once, for the final answer.
    assert resumed["model_calls"] == 1
    assert resumed["usage_calls"] == reference["usage_calls"] == 2
    assert resumed["budget_spent"] == resumed["usage_tokens"]

    # The task's second run says so: every event it wrote is its attempt 2, the replayed
    # reply included, and of the thread's two paid calls the first run paid one and the
    # retry the other. The undisturbed run has no retry marks at all.
    with podium.open_runtime(durable_url) as rt:
        events = rt.services.audit.timeline(thread, tenant)
        # The task's own events (the supervisor wrote the dispatch: queued -> initializing).
        crashed = [e for e in events if e.task_id == "t1" and e.payload.get("from") != "queued"]
        undisturbed = rt.services.audit.timeline(f"{tenant}-ref", tenant)
        by_attempt = rt.services.ledger.totals(tenant, by="attempt", thread_id=thread)
    assert crashed and {e.payload.get("step_attempt") for e in crashed} == {2}
    calls = [e.payload for e in crashed if e.kind == "model_call"]
    assert [(c.get("replayed", False), "input_tokens" in c) for c in calls] == [
        (True, False),
        (False, True),
    ]
    assert undisturbed and not any("step_attempt" in e.payload for e in undisturbed)
    assert sorted((r.key, r.calls) for r in by_attempt) == [("1", 1), ("2", 1)]
    costs = _podium(crash_dir, "costs", "--by", "attempt", "--db", durable_url, "--tenant", tenant)
    assert costs.returncode == 0, costs.stderr
    # Both threads, the retry included, paid for four calls: two each, none twice.
    table = {line.split()[0]: line.split()[1] for line in costs.stdout.splitlines()[2:]}
    assert table == {"1": "3", "2": "1", "total": "4"}, costs.stdout


def test_an_effect_killed_mid_tool_waits_for_an_operator_and_is_not_a_success(
    durable_url, tenant, tmp_path
):
    thread = f"{tenant}-doubt"
    _kill_when_hung(durable_url, tenant, thread, tmp_path, "hang")
    (tmp_path / "blocked").unlink()

    resumed = _podium(tmp_path, "resume", thread, "--db", durable_url, "--tenant", tenant)
    assert resumed.returncode == 3, resumed.stderr
    assert "waiting: gate g-" in resumed.stderr and "did pay" in resumed.stderr
    # The progress lines say the task moved to waiting, and why.
    assert re.search(r"waiting +t1 payer: effect in doubt: pay started at", resumed.stderr)
    assert _payments(tmp_path) == ["paid 5"]  # not run again while in doubt

    listed = _podium(tmp_path, "approvals", "--db", durable_url, "--tenant", tenant)
    assert listed.returncode == 0 and "effect" in listed.stdout and thread in listed.stdout
    threads = _podium(tmp_path, "threads", "--db", durable_url, "--tenant", tenant)
    assert re.search(rf"^{thread} +random_ids +waiting ", threads.stdout, re.M), threads.stdout
    shown = _podium(tmp_path, "show", thread, "--db", durable_url, "--tenant", tenant)
    assert f"thread {thread}  workflow random_ids  tenant {tenant}  status waiting" in shown.stdout
    assert "waiting (effect in doubt)" in shown.stdout
    assert re.search(r"^t1 +payer +waiting .*effect in doubt: did pay happen\?", shown.stdout, re.M)

    gate = next(
        line.split("--gate ", 1)[1].split()[0]
        for line in resumed.stderr.splitlines()
        if "effects resolve" in line  # started as `python -m podium.cli`, the hint says so
    )
    done = _podium(
        tmp_path,
        "effects",
        "resolve",
        thread,
        "done",
        "--gate",
        gate,
        "--user",
        "oncall",
        "--db",
        durable_url,
        "--tenant",
        tenant,
    )
    assert done.returncode == 0, done.stderr
    assert _payments(tmp_path) == ["paid 5"]
    shown = _podium(tmp_path, "show", thread, "--db", durable_url, "--tenant", tenant)
    assert "status completed" in shown.stdout
    assert re.search(r"^t1 +payer +completed ", shown.stdout, re.M), shown.stdout

    with podium.open_runtime(durable_url) as rt:
        [effect] = rt.services.effects.list(tenant, thread_id=thread)
        events = rt.services.audit.timeline(thread, tenant)
        record = rt.services.approvals.get(gate, tenant)
    assert (effect.status, effect.resolution, effect.resolved_by) == (
        "completed",
        "mark_done",
        "oncall",
    )
    assert record is not None and record.status == "decided"
    decided = [e.payload for e in events if e.kind == "approval"]
    assert [(d["kind"], d["decision"], d["user"]) for d in decided] == [
        ("effect", "done", "oncall")
    ]
    assert any(e.kind == "error" and e.payload.get("in_doubt") for e in events)
    verified = _podium(tmp_path, "audit", "verify", "--db", durable_url, "--tenant", tenant)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "unkeyed" not in verified.stderr


def test_effects_resolve_refuses_an_asserted_role_when_cli_roles_are_off(durable_url, tenant):
    refused = subprocess.run(
        [
            *(sys.executable, "-m", "podium.cli", "effects", "resolve", "t-none", "done"),
            *("--role", "oncall", "--db", durable_url, "--tenant", tenant),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PODIUM_CLI_ROLES": "off"},
        timeout=60,
    )
    assert refused.returncode != 0
    assert "--role oncall refused: PODIUM_CLI_ROLES=off" in refused.stderr, refused.stderr


def test_an_effect_killed_mid_tool_makes_the_embedded_api_say_waiting(
    durable_url, tenant, tmp_path
):
    thread = f"{tenant}-doubt-api"
    _kill_when_hung(durable_url, tenant, thread, tmp_path, "hang")
    (tmp_path / "blocked").unlink()

    resumed = _run(durable_url, tenant, thread, tmp_path, "resume")
    assert (resumed["status"], resumed["thread_status"]) == ("waiting", "waiting")
    assert resumed["tasks"] == {"t1": "waiting"}
    assert [(g["kind"], g["tool"]) for g in resumed["gates"]] == [("effect", "pay")]
    assert resumed["effects"] == [["t1", "pay", "started", 1]]
    assert _payments(tmp_path) == ["paid 5"]

    done = _run(durable_url, tenant, thread, tmp_path, "done")
    assert (done["status"], done["thread_status"], done["answer"]) == (
        "completed",
        "completed",
        "paid",
    )
    assert done["tasks"] == {"t1": "completed"} and done["gates"] == []
    assert done["effects"] == [["t1", "pay", "completed", 1]]
    assert _payments(tmp_path) == ["paid 5"]
    # Every run after the kill is the task's attempt 2: moving to `waiting`, raising the
    # gate and going on after the answer continue the retry; none is a retry of its own.
    with podium.open_runtime(durable_url) as rt:
        events = rt.services.audit.timeline(thread, tenant)
        by_attempt = rt.services.ledger.totals(tenant, by="attempt", thread_id=thread)
    mine = [e for e in events if str(e.actor) == "agent:payer"]
    assert {e.kind for e in mine} >= {"model_call", "tool_call", "error"}
    assert {e.payload.get("step_attempt") for e in mine} == {2}
    assert sorted((r.key, r.calls) for r in by_attempt) == [("1", 1), ("2", 1)]
