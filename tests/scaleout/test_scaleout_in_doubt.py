"""An effect in doubt across processes: the process running a side effect is SIGKILLed
after the effect and before the ledger records it; the other process re-runs the step,
cannot know whether the effect happened, and waits at an effect gate instead of running
it again or calling it done. An operator's answer finishes the run without a second
effect."""

from __future__ import annotations

import re
import time

import psycopg
import pytest

from .conftest import client
from .test_scaleout_runs import wait_status

pytestmark = pytest.mark.scaleout

EDITOR = "acme-editor-key"
GOAL = "Write a brief on doubtful heat pump adoption and grid storage costs"


def effect_lines(cluster) -> list[str]:
    log = cluster.workdir / "effects.log"
    return log.read_text().splitlines() if log.exists() else []


def running_on(cluster, run_id: str):
    """The live instance whose log says it started `run_id`, if any."""
    for instance in cluster.instances:
        text = re.sub(r"\x1b\[[0-9;]*m", "", instance.log.read_text(errors="replace"))
        if instance.alive and re.search(rf"Starting background run .*run_id={run_id}", text):
            return instance
    return None


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout:.0f} s")


def test_a_process_killed_after_an_effect_leaves_it_in_doubt_at_a_gate(cluster) -> None:
    a = cluster.instances[0]
    api = client(a.url, EDITOR)
    thread = api.threads.create()["thread_id"]
    api.runs.create(thread, "slow_brief", input={"goal": GOAL})
    wait_status(api, thread, "interrupted", timeout=60)
    (approval,) = api.threads.get_state(thread)["interrupts"]
    assert approval["value"]["kind"] == "tool"

    pause = cluster.workdir / "pause-after-publish"
    before = len(effect_lines(cluster))
    pause.write_text("60")
    try:
        run = api.runs.create(
            thread, "slow_brief", command={"resume": {approval["id"]: {"decision": "approve"}}}
        )
        wait_for(lambda: len(effect_lines(cluster)) > before, 60, "the report was not published")
        victim = wait_for(lambda: running_on(cluster, run["run_id"]), 10, "no process ran it")
        pause.unlink()
        cluster.kill(victim)  # after the effect, before the ledger's record of it
        survivor = next(i for i in cluster.instances if i.alive)
        api = client(survivor.url, EDITOR)

        # The other process re-runs the step and stops at an effect gate: in doubt.
        wait_status(api, thread, "interrupted", timeout=60)
        (doubt,) = api.threads.get_state(thread)["interrupts"]
        assert doubt["value"]["kind"] == "effect", doubt
        assert doubt["value"]["tool"] == "publish_report"
        assert "did its effect happen?" in doubt["value"]["question"]
        assert len(effect_lines(cluster)) == before + 1  # not run again

        # The operator knows it happened (its line is in effects.log): done.
        api.runs.wait(thread, "slow_brief", command={"resume": {doubt["id"]: {"decision": "done"}}})
        wait_status(api, thread, "idle", timeout=60)
    finally:
        pause.unlink(missing_ok=True)
        for instance in cluster.instances:
            if not instance.alive:
                cluster.launch(instance)

    state = api.threads.get_state(thread)
    assert state["values"]["answer"].startswith("# Brief")
    assert not state["interrupts"]
    assert len(effect_lines(cluster)) == before + 1  # one effect, whatever happened
    with psycopg.connect(cluster.podium_url) as db:
        gates = db.execute(
            "SELECT kind, status, decision FROM podium_approvals WHERE thread_id = %s "
            "ORDER BY requested_at",
            (thread,),
        ).fetchall()
        effects = db.execute(
            "SELECT status FROM podium_tool_effects WHERE thread_id = %s AND tool = %s",
            (thread, "publish_report"),
        ).fetchall()
    assert [(kind, status) for kind, status, _ in gates] == [
        ("tool", "decided"),
        ("effect", "decided"),
    ], gates
    assert [status for (status,) in effects] == ["completed"]
