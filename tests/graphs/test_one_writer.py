"""One writer per thread, with real processes: `podium resume` twice at once on one thread.

The thread (recovery_scripts/writer_flow.py) is first run up to its join task and stopped
there. Two `podium resume` processes are then started together: the one that gets the
thread runs the join, whose model call waits for a `go` file; the other must be refused
at once, while the first still waits (one line on stderr, exit code 2). Only then is `go`
written. The thread's checkpoint history must be one line (no fork) and the join's model
called and counted once. A holder killed with SIGKILL must not keep the thread locked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import podium
from podium import RunContext
from tests.graphs.test_crash_resume import ROOT, SCRIPTS

EXIT_USAGE = 2
WAIT_LIMIT = 30.0


@pytest.fixture
def flow(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    import writer_flow

    return writer_flow


def _env(workdir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SCRIPTS), str(ROOT)]),
        "PODIUM_WORKFLOWS": "writer_flow=writer_flow:build",
        "WRITER_WORKDIR": str(workdir),
    }


def _resume(url: str, tenant: str, thread: str, workdir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "podium.cli", "resume", thread, "--db", url, "--tenant", tenant],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(workdir),
        cwd=workdir,
    )


def _start_thread(flow, url: str, tenant: str, thread: str) -> None:
    """Run the thread up to its join task and stop there (as a run cut off would)."""
    with podium.open_runtime(url) as rt:
        app = rt.compile(flow.build(), interrupt_before=["joiner"])
        app.invoke({"goal": "join"}, _config(thread), context=RunContext(tenant_id=tenant))
        assert app.get_state(_config(thread)).next == ("joiner",)


def _config(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


def _wait_for(what, predicate, procs) -> None:
    deadline = time.monotonic() + WAIT_LIMIT
    while time.monotonic() < deadline:
        if predicate():
            return
        for proc in procs:
            if proc.poll() is not None and proc.returncode == 0:
                raise AssertionError(f"a resume ended before {what}: {proc.communicate()}")
        time.sleep(0.02)
    raise AssertionError(f"not {what} within {WAIT_LIMIT}s")


def _history(flow, url: str, thread: str) -> list:
    with podium.open_runtime(url) as rt:
        app = rt.compile(flow.build())
        return list(app.get_state_history(_config(thread)))


def _usage_rows(url: str, tenant: str, thread: str) -> dict[str, int]:
    with podium.open_runtime(url) as rt:
        rows = rt.db.query(
            "SELECT agent, COUNT(*) AS n FROM podium_usage "
            "WHERE tenant_id = ? AND thread_id = ? GROUP BY agent",
            (tenant, thread),
        )
    return {row["agent"]: int(row["n"]) for row in rows}


def _assert_one_line(history: list) -> None:
    """Every checkpoint but the first has the one before it as its parent: no fork."""
    ids = [s.config["configurable"]["checkpoint_id"] for s in history]  # newest first
    parents = [
        (s.parent_config or {}).get("configurable", {}).get("checkpoint_id") for s in history
    ]
    assert parents == [*ids[1:], None], "the thread's checkpoint history forked"


def test_two_resumes_at_once_one_runs_the_other_is_refused(flow, durable_url, tenant, tmp_path):
    thread = f"{tenant}-two"
    _start_thread(flow, durable_url, tenant, thread)
    before = _usage_rows(durable_url, tenant, thread)
    assert before == {"left": 1}
    procs = [_resume(durable_url, tenant, thread, tmp_path) for _ in range(2)]
    try:
        _wait_for(
            "one resume refused",
            lambda: any(p.poll() == EXIT_USAGE for p in procs) and (tmp_path / "joining").exists(),
            procs,
        )
        refused = next(p for p in procs if p.poll() == EXIT_USAGE)
        runner = next(p for p in procs if p is not refused)
        # Refused while the other was still inside the join: it did not wait for it.
        assert runner.poll() is None and not (tmp_path / "go").exists()
        _, err = refused.communicate()
        error = [line for line in err.splitlines() if line.startswith("podium: error:")]
        assert len(error) == 1 and "Traceback" not in err, err
        assert error[0].startswith(
            f"podium: error: thread {thread!r} of tenant {tenant!r} is already running (by "
        )
        assert error[0].endswith(f"(`podium resume {thread} --tenant {tenant}`)")
        (tmp_path / "go").write_text("go", encoding="utf-8")
        out, err = runner.communicate(timeout=WAIT_LIMIT)
        assert runner.returncode == 0, err
        assert "joined" in out
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    # The join ran once: one model call, one usage row; the history is one line.
    calls = (tmp_path / "calls.txt").read_text(encoding="utf-8").split()
    assert calls == [str(runner.pid)]
    assert _usage_rows(durable_url, tenant, thread) == {"left": 1, "joiner": 1}
    history = _history(flow, durable_url, thread)
    _assert_one_line(history)
    assert history[0].values["status"] == "completed"


def test_a_killed_holder_does_not_keep_the_thread(flow, durable_url, tenant, tmp_path):
    thread = f"{tenant}-kill"
    _start_thread(flow, durable_url, tenant, thread)
    holder = _resume(durable_url, tenant, thread, tmp_path)
    try:
        _wait_for("joining", (tmp_path / "joining").exists, [holder])
        with podium.open_runtime(durable_url) as rt:
            with pytest.raises(podium.ThreadBusy):
                rt.services.writers.acquire(tenant, thread)
            holder.send_signal(signal.SIGKILL)
            holder.communicate(timeout=10)
            killed = time.monotonic()
            while True:  # how long the dead holder keeps the thread
                try:
                    rt.services.writers.acquire(tenant, thread).release()
                    break
                except podium.ThreadBusy:
                    assert time.monotonic() - killed < 5.0, "a killed holder kept the thread"
                    time.sleep(0.01)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.communicate()
    (tmp_path / "go").write_text("go", encoding="utf-8")
    again = _resume(durable_url, tenant, thread, tmp_path)
    out, err = again.communicate(timeout=WAIT_LIMIT)
    assert again.returncode == 0, err
    assert "joined" in out
    history = _history(flow, durable_url, thread)
    _assert_one_line(history)
    assert history[0].values["status"] == "completed"


# -- a lock lost mid-run (PostgreSQL ends the lock session) ---------------------------------


def _checkpoint_rows(url: str, thread: str) -> tuple[int, int]:
    """(checkpoints, pending writes) stored for `thread`, every namespace."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        [(checkpoints,)] = conn.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = %s", (thread,)
        ).fetchall()
        [(writes,)] = conn.execute(
            "SELECT count(*) FROM checkpoint_writes WHERE thread_id = %s", (thread,)
        ).fetchall()
    return checkpoints, writes


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
@pytest.mark.parametrize("taken", [True, False], ids=["taken meanwhile", "free"])
def test_a_run_that_lost_its_lock_stops_before_its_next_write(
    fresh_postgres_url, tenant, taken, mode
):
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from podium import AgentSpec, Plan, WriterLockLost
    from podium.testing import ScriptedChatModel
    from tests.stores.test_writer_locks import _end_lock_sessions

    calling, go = threading.Event(), threading.Event()

    def slow(messages):
        calling.set()
        assert go.wait(WAIT_LIMIT)
        return "facts"

    first = ScriptedChatModel(responses=[slow], name="first")
    second = ScriptedChatModel(responses=["report"], name="second")
    graph = podium.build_workflow(
        [AgentSpec(name="first", model=first), AgentSpec(name="second", model=second)],
        name="lost_lock",
        supervisor=Plan.chain(("first", "find facts"), ("second", "write it up")),
    )
    thread = f"{tenant}-lost"
    with (
        podium.open_runtime(fresh_postgres_url) as rt,
        podium.open_runtime(fresh_postgres_url) as elsewhere,
        ThreadPoolExecutor(1) as pool,
    ):
        app, context = rt.compile(graph), RunContext(tenant_id=tenant)
        if mode == "invoke":
            run = pool.submit(app.invoke, {"goal": "g"}, _config(thread), context=context)
        else:  # an async runtime on its own event loop, on the pool's thread

            async def arun() -> dict:
                async with podium.open_async_runtime(fresh_postgres_url) as art:
                    aapp = art.compile(graph)
                    return await aapp.ainvoke({"goal": "g"}, _config(thread), context=context)

            run = pool.submit(asyncio.run, arun())
        assert calling.wait(WAIT_LIMIT)
        _end_lock_sessions(fresh_postgres_url)
        other = elsewhere.services.writers.acquire(tenant, thread) if taken else None
        written = _checkpoint_rows(fresh_postgres_url, thread)
        go.set()
        try:
            if taken:
                with pytest.raises(WriterLockLost, match="lost its writer lock"):
                    run.result(WAIT_LIMIT)
                # It stopped in the step that was running, before writing anything more
                # (the worker's end, the step's checkpoint): the thread has one writer.
                assert second.calls == []
                assert _checkpoint_rows(fresh_postgres_url, thread) == written
                tasks = app.get_state(_config(thread)).values["tasks"]
                assert tasks["t1"]["status"] != "completed"  # the new holder runs it again
                assert tasks["t2"]["status"] == "queued"
                assert elsewhere.services.dead_letters.list(tenant) == []  # not the task's fault
            else:
                out = run.result(WAIT_LIMIT)
                assert out["status"] == "completed" and out["answer"]
                assert len(second.calls) == 1
        finally:
            if other is not None:
                other.release()
