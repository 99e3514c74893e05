"""Failover: SIGKILL of one engine process while runs are in flight, then again while the
approved runs publish. Every run reaches its gate, then its end, on the other process;
each report is published once; each gate is recorded once and decided once."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import Any

import psycopg
import pytest

from .conftest import client

pytestmark = pytest.mark.scaleout

RUNS = 20
#: Every run reaches its gate (then its end) within this many seconds of the kill.
DEADLINE = 60.0
#: Runs that must be under way on A (then on B) when it is killed, and how long to wait for
#: that before the kill.
MIN_IN_FLIGHT_A, MIN_IN_FLIGHT_B = 3, 2
KILL_WAIT = 30.0
EDITORS = ("acme-editor-key", "globex-editor-key", "initech-editor-key")


def goal(i: int) -> str:
    # The run's number comes first: the demo writer names its report after the task's start.
    return f"Write a brief on site {i:02d} heat pump adoption and grid storage costs"


def wait_all(cluster, runs: list[dict[str, Any]], wanted: str, since: float) -> None:
    pending = list(runs)
    while pending and time.monotonic() - since < DEADLINE:
        url = next(i.url for i in cluster.instances if i.alive)
        pending = [
            r for r in pending if client(url, r["key"]).threads.get(r["thread"])["status"] != wanted
        ]
        time.sleep(0.5)
    statuses = {
        r["thread"]: client(url, r["key"]).threads.get(r["thread"])["status"] for r in pending
    }
    assert not pending, (
        f"{len(pending)} runs not {wanted} {DEADLINE:.0f} s after the kill: {statuses}"
    )


def in_flight(instance) -> set[str]:
    """Runs the killed process had started and not finished (from its own log)."""
    text = instance.log.read_text(errors="replace")
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    started = set(re.findall(r"Starting background run .*?run_id=(\S+)", text))
    ended = set(re.findall(r"Background run \w+ .*?run_id=(\S+)", text))
    return started - ended


def wait_until(condition, timeout: float) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def published(cluster) -> int:
    log = cluster.workdir / "effects.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def approvals(cluster, threads: list[str]) -> list[tuple[str, str]]:
    """(thread, status or decision) of every approval row of `threads`."""
    with psycopg.connect(cluster.podium_url) as db:
        rows = db.execute(
            "SELECT thread_id, status, decision FROM podium_approvals WHERE thread_id = ANY(%s)",
            (threads,),
        ).fetchall()
    return [(str(t), json.loads(d)["decision"] if d else s) for t, s, d in rows]


def publish_effects(cluster, threads: list[str]) -> Counter:
    with psycopg.connect(cluster.podium_url) as db:
        rows = db.execute(
            "SELECT thread_id FROM podium_tool_effects "
            "WHERE tool = 'publish_report' AND status = 'completed' AND thread_id = ANY(%s)",
            (threads,),
        ).fetchall()
    return Counter(str(t) for (t,) in rows)


def test_runs_survive_the_loss_of_a_process_with_effects_once(cluster) -> None:
    a, b = cluster.instances[:2]
    runs = []
    for i in range(RUNS):
        key, instance = EDITORS[i % len(EDITORS)], (a, b)[i % 2]
        api = client(instance.url, key)
        thread = api.threads.create()["thread_id"]
        run = api.runs.create(thread, "slow_brief", input={"goal": goal(i)})
        runs.append({"key": key, "thread": thread, "run": run["run_id"]})
    threads = [r["thread"] for r in runs]

    try:
        # Phase 1: kill A while its runs are on their way to the gate. A loaded machine
        # starts runs late, so wait (bounded) for A to have several under way first.
        wait_until(lambda: len(in_flight(a)) >= MIN_IN_FLIGHT_A, timeout=KILL_WAIT)
        cluster.kill(a)
        killed_at = time.monotonic()
        lost = in_flight(a)
        assert len(lost) >= MIN_IN_FLIGHT_A, (
            f"too few runs in flight on A when it was killed ({KILL_WAIT:.0f} s wait): {lost}"
        )
        wait_all(cluster, runs, "interrupted", killed_at)
        gates = approvals(cluster, threads)
        assert sorted(t for t, _ in gates) == sorted(threads)  # one gate per run, none lost
        assert {s for _, s in gates} == {"pending"}
        cluster.launch(a)

        # Phase 2: approve every gate, then kill B while the approved runs publish.
        decisions = []
        for i, r in enumerate(runs):
            api = client((a, b)[i % 2].url, r["key"])
            (interrupt,) = api.threads.get_state(r["thread"])["interrupts"]
            decisions.append((api, r["thread"], {interrupt["id"]: {"decision": "approve"}}))
        for api, thread, resume in decisions:
            api.runs.create(thread, "slow_brief", command={"resume": resume})
        # Kill B once reports are being published and B still has runs in flight.
        wait_until(
            lambda: published(cluster) > 0 and len(in_flight(b)) >= MIN_IN_FLIGHT_B,
            timeout=KILL_WAIT,
        )
        cluster.kill(b)
        killed_at = time.monotonic()
        assert in_flight(b), (
            f"no approved run was in flight on B when it was killed ({KILL_WAIT:.0f} s wait)"
        )
        wait_all(cluster, runs, "idle", killed_at)
    finally:
        for instance in (a, b):
            if not instance.alive:
                cluster.launch(instance)

    for r in runs:
        state = client(a.url, r["key"]).threads.get_state(r["thread"])
        assert state["values"]["answer"].startswith("# Brief"), r
        assert not state["interrupts"]
    # Each report was written exactly once, by whichever process ran it.
    executions = Counter(
        line.split()[0] for line in (cluster.workdir / "effects.log").read_text().splitlines()
    )
    mine = {name: n for name, n in executions.items() if re.match(r".*site-\d\d-", name)}
    assert len(mine) == RUNS and set(mine.values()) == {1}, mine
    assert publish_effects(cluster, threads) == Counter({t: 1 for t in threads})
    gates = approvals(cluster, threads)
    assert sorted(t for t, _ in gates) == sorted(threads)
    assert {s for _, s in gates} == {"approve"}
