"""A run killed with SIGKILL mid-way resumes in a new process, with every effect once.

The child (recovery_scripts/crash_child.py) runs two parallel tasks that each record a
line through an exactly-once side-effect tool; one of them then hangs. The parent waits
until both effects are in the ledger, kills the child, and resumes the thread in a new
process (recovery_scripts/crash_resume.py) whose tools no longer hang. The outcome must
equal an undisturbed reference run, and each line must be in the counter file once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import podium

SCRIPTS = Path(__file__).parent / "recovery_scripts"
ROOT = Path(podium.__file__).resolve().parent.parent
WAIT_LIMIT = 20.0


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SCRIPTS), str(ROOT)])}


def _args(script: str, url: str, tenant: str, thread: str, workdir: Path) -> list[str]:
    return [sys.executable, str(SCRIPTS / script), url, tenant, thread, str(workdir)]


def _run(script: str, url: str, tenant: str, thread: str, workdir: Path) -> dict:
    done = subprocess.run(
        _args(script, url, tenant, thread, workdir),
        capture_output=True,
        text=True,
        env=_env(),
        cwd=workdir,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _lines(workdir: Path) -> list[str]:
    path = workdir / "counter.txt"
    return sorted(path.read_text(encoding="utf-8").splitlines()) if path.exists() else []


def _completed_effects(url: str, tenant: str, thread: str) -> int:
    with podium.open_runtime(url) as rt:
        effects = rt.services.effects.list(tenant, thread_id=thread)
    return sum(e.status == "completed" for e in effects)


def _wait_until_hung(child: subprocess.Popen, url: str, tenant: str, thread: str, workdir: Path):
    """Until the child hangs after both effects were recorded (in the file and the ledger)."""
    deadline = time.monotonic() + WAIT_LIMIT
    while time.monotonic() < deadline:
        assert child.poll() is None, f"the child ended early: {child.communicate()[1]}"
        if (
            (workdir / "blocked").exists()
            and _lines(workdir) == ["left", "right"]
            and _completed_effects(url, tenant, thread) == 2
        ):
            return
        time.sleep(0.05)
    raise AssertionError(
        f"the child did not reach its hang within {WAIT_LIMIT}s; lines {_lines(workdir)}"
    )


def test_killed_run_resumes_in_a_new_process_with_each_effect_once(durable_url, tenant, tmp_path):
    reference_dir, crash_dir = tmp_path / "reference", tmp_path / "crash"
    reference_dir.mkdir()
    crash_dir.mkdir()
    reference = _run("crash_child.py", durable_url, tenant, f"{tenant}-reference", reference_dir)
    assert reference["status"] == "completed"
    assert reference["answer"] == "joined: left done + right done"
    assert _lines(reference_dir) == ["left", "right"]

    thread = f"{tenant}-crash"
    child = subprocess.Popen(
        [*_args("crash_child.py", durable_url, tenant, thread, crash_dir), "block"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=crash_dir,
    )
    try:
        _wait_until_hung(child, durable_url, tenant, thread, crash_dir)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=10)
    assert child.returncode == -signal.SIGKILL
    assert _lines(crash_dir) == ["left", "right"]

    resumed = _run("crash_resume.py", durable_url, tenant, thread, crash_dir)
    for key in ("status", "answer", "tasks", "results"):
        assert resumed[key] == reference[key], key
    assert resumed["tasks"] == {"t1": "completed", "t2": "completed", "t3": "completed"}
    # Each side effect happened exactly once, although the run was killed and resumed.
    assert _lines(crash_dir) == ["left", "right"]
    assert resumed["effects"] == [
        ["t1", "r1:call-left-record", "completed", 1],
        ["t2", "r1:call-right-record", "completed", 1],
    ]
    assert resumed["effects"] == reference["effects"]
