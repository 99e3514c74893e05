"""A step the engine runs again after its process died is marked as a retry.

Runs of one tenant go to the gate on both processes; a process is killed right after one
of its runs recorded a model reply that asks for tools, so that run's task is mid-way. The
other runs it again from its last checkpoint (the engine's attempt 2): the task starts over,
replays the recorded reply instead of paying for it again, and everything it writes
carries `step_attempt` 2 and `run_attempt` 2. Work done once carries no marks, and every
paid call has one usage row, retries included.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from typing import Any

import psycopg
import pytest
from langgraph_sdk import get_sync_client

import podium
from podium.server import sign_token

from .conftest import JOBS_PER_PROCESS, TOKEN_SECRET

pytestmark = pytest.mark.scaleout

#: More runs than one process takes at once: the engine may hand every run it can to one
#: process, and some runs must be left untouched by the kill.
RUNS = JOBS_PER_PROCESS + 2
#: Seconds to wait for a run to be mid-task, and for every run to reach its gate after the kill.
KILL_WAIT, DEADLINE = 30.0, 60.0
#: A reply recorded at most this long ago belongs to a task still running: its tool calls
#: run next, then a model call that takes the cluster's model latency (0.3 s).
FRESH = 0.15


def in_flight(instance: Any) -> set[str]:
    """Runs `instance` started and did not finish (from its own log)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", instance.log.read_text(errors="replace"))
    started = set(re.findall(r"Starting background run .*?run_id=(\S+)", text))
    ended = set(re.findall(r"Background run \w+ .*?run_id=(\S+)", text))
    return started - ended


def mid_task(db: psycopg.Connection, tenant: str, threads: set[str]) -> str | None:
    """One of `threads` whose task just recorded a reply asking for tools, if any."""
    rows = db.execute(
        "SELECT thread_id, message FROM podium_model_replies WHERE tenant_id = %s "
        "AND recorded_at > EXTRACT(EPOCH FROM clock_timestamp()) - %s",
        (tenant, FRESH),
    ).fetchall()
    for thread_ns, message in rows:
        thread = thread_ns.split("|", 1)[0]
        if thread in threads and json.loads(message)["data"].get("tool_calls"):
            return str(thread)
    return None


def test_a_step_run_again_after_its_process_died_is_marked_a_retry(cluster) -> None:
    a, b = cluster.instances[:2]
    tenant = f"r-{uuid.uuid4().hex[:8]}"
    token = sign_token(TOKEN_SECRET, tenant_id=tenant, identity="rex", roles=["editor"])
    runs: dict[str, str] = {}  # run id -> thread
    for i in range(RUNS):
        api = get_sync_client(url=(a, b)[i % 2].url, headers={"Authorization": f"Bearer {token}"})
        thread = api.threads.create()["thread_id"]
        goal = f"Write a brief on district {i:02d} heat pumps and grid storage"
        runs[api.runs.create(thread, "slow_brief", input={"goal": goal})["run_id"]] = thread

    # Whichever process is first seen mid-task is killed (the engine decides which process
    # claims which run).
    chosen, victim = None, None
    try:
        with psycopg.connect(cluster.podium_url, autocommit=True) as db:
            deadline = time.monotonic() + KILL_WAIT
            while victim is None and time.monotonic() < deadline:
                for instance in (a, b):
                    on_it = {runs[r] for r in in_flight(instance) if r in runs}
                    if (chosen := mid_task(db, tenant, on_it)) is not None:
                        victim = instance
                        break
                else:
                    time.sleep(0.02)
        assert victim is not None, f"no run was seen mid-task within {KILL_WAIT:.0f} s"
        cluster.kill(victim)
        lost = {runs[r] for r in in_flight(victim) if r in runs}

        survivor = b if victim is a else a
        api = get_sync_client(url=survivor.url, headers={"Authorization": f"Bearer {token}"})
        deadline = time.monotonic() + DEADLINE
        while pending := [
            t for t in runs.values() if api.threads.get(t)["status"] != "interrupted"
        ]:
            if time.monotonic() >= deadline:
                states = Counter(str(api.threads.get(t)["status"]) for t in pending)
                lost_ones = sum(t in lost for t in pending)
                raise AssertionError(
                    f"{len(pending)} runs not at their gate ({dict(states)}; {lost_ones} of "
                    f"them were on the killed process)"
                )
            time.sleep(0.5)
    finally:
        for instance in (a, b):
            if not instance.alive:
                cluster.launch(instance)

    with podium.open_runtime(cluster.podium_url) as rt:
        events = rt.services.audit.events(tenant)
        usage = rt.db.query(
            "SELECT thread_id, step_attempt, run_attempt FROM podium_usage "
            "WHERE tenant_id = ? AND agent <> 'supervisor'",
            (tenant,),
        )
        replies = rt.db.query(
            "SELECT thread_id FROM podium_model_replies WHERE tenant_id = ?", (tenant,)
        )
    assert chosen in lost and len(lost) < RUNS

    # The task A was running starts over on B and replays the reply it had recorded.
    replayed = [e for e in events if e.kind == "model_call" and e.payload.get("replayed") is True]
    assert chosen in {e.thread_id for e in replayed}, "the killed task did not replay its reply"
    for e in replayed:
        assert (e.payload.get("step_attempt"), e.payload.get("run_attempt")) == (2, 2), e
        assert "input_tokens" not in e.payload  # a replay is no new spend
    # Only runs the kill interrupted carry retry marks; the others did everything once.
    marked = {e.thread_id for e in events if {"step_attempt", "run_attempt"} & set(e.payload)}
    assert chosen in marked and marked <= lost
    assert {r["thread_id"] for r in usage if r["run_attempt"] > 1} <= lost
    assert any(r["thread_id"] == chosen and r["step_attempt"] == 2 for r in usage)
    # Each recorded reply was paid once (one usage row), whichever attempt made it; the
    # replayed ones were not paid again.
    paid = Counter(r["thread_id"] for r in usage)
    recorded = Counter(r["thread_id"].split("|", 1)[0] for r in replies)
    assert paid == recorded
