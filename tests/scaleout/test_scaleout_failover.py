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
    """Wait until every run's thread is `wanted` ("interrupted", "idle" or "settled": idle
    or waiting at an effect gate), for at most DEADLINE seconds from `since`."""
    pending = list(runs)
    while pending and time.monotonic() - since < DEADLINE:
        url = next(i.url for i in cluster.instances if i.alive)
        pending = [r for r in pending if not reached(url, r, wanted)]
        time.sleep(0.5)
    assert not pending, (
        f"{len(pending)} runs not {wanted} {DEADLINE:.0f} s after the kill:\n"
        + "\n".join(explain(cluster, url, r) for r in pending)
    )


def reached(url: str, run: dict[str, Any], wanted: str) -> bool:
    api = client(url, run["key"])
    status = api.threads.get(run["thread"])["status"]
    if wanted != "settled":
        return status == wanted
    return status == "idle" or (status == "interrupted" and effect_gate(api, run) is not None)


def effect_gate(api, run: dict[str, Any]) -> dict[str, Any] | None:
    """The interrupt of the thread's effect gate ("did this effect happen?"), if it waits
    at one: the process died between a side effect's start and its report."""
    for interrupt in api.threads.get_state(run["thread"])["interrupts"]:
        if (interrupt.get("value") or {}).get("kind") == "effect":
            return interrupt
    return None


def resolve_in_doubt(cluster, runs: list[dict[str, Any]], url: str) -> list[str]:
    """Answer every effect gate as an operator would, from the effect's own trace: `done`
    when effects.log has the report's line, `retry` when it does not. Returns the threads."""
    lines = published_names(cluster)
    resolved = []
    for r in runs:
        api = client(url, r["key"])
        interrupt = effect_gate(api, r)
        if interrupt is None:
            continue
        happened = interrupt["value"]["args"]["filename"] in lines
        verdict = {"decision": "done" if happened else "retry"}
        api.runs.create(r["thread"], "slow_brief", command={"resume": {interrupt["id"]: verdict}})
        resolved.append(r["thread"])
    return resolved


def published_names(cluster) -> set[str]:
    log = cluster.workdir / "effects.log"
    return {line.split()[0] for line in log.read_text().splitlines()} if log.exists() else set()


def explain(cluster, url: str, run: dict[str, Any]) -> str:
    """What the engine knows of a thread that did not get where it should: its status, its
    runs, its pending nodes and interrupts, and every log line of the processes naming them."""
    api = client(url, run["key"])
    thread = api.threads.get(run["thread"])
    runs = api.runs.list(run["thread"])
    state = api.threads.get_state(run["thread"])
    ids = {run["thread"], *(r["run_id"] for r in runs)}
    lines = [
        f"thread {run['thread']}: {thread['status']}; next {state['next']}; "
        f"{len(state['interrupts'])} interrupts",
        *(f"  run {r['run_id']}: {r['status']} (created {r['created_at']})" for r in runs),
    ]
    for instance in cluster.instances:
        text = re.sub(r"\x1b\[[0-9;]*m", "", instance.log.read_text(errors="replace"))
        lines += [
            f"  {instance.name}: {line[:400]}"
            for line in text.splitlines()
            if any(i in line for i in ids)
        ]
    return "\n".join(lines)


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


def approvals(cluster, threads: list[str], kind: str = "tool") -> list[tuple[str, str]]:
    """(thread, status or decision) of every gate of `kind` of `threads` (`tool`: the
    approval of a tool call; `effect`: an effect in doubt)."""
    with psycopg.connect(cluster.podium_url) as db:
        rows = db.execute(
            "SELECT thread_id, status, decision FROM podium_approvals "
            "WHERE thread_id = ANY(%s) AND kind = %s",
            (threads, kind),
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
        # A run killed between its report's write and the ledger's record of it cannot know
        # whether the effect happened: it waits at an effect gate instead of guessing.
        wait_all(cluster, runs, "settled", killed_at)
        in_doubt = resolve_in_doubt(cluster, runs, a.url)
        wait_all(cluster, runs, "idle", time.monotonic())
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
    # An effect in doubt was asked about once and answered once.
    doubts = approvals(cluster, threads, "effect")
    assert sorted(t for t, _ in doubts) == sorted(in_doubt)
    assert {s for _, s in doubts} <= {"done", "retry"}
