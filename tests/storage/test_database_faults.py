"""Lost PostgreSQL connections mid-run: retried, not dead-lettered; every effect once."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid

import psycopg
import pytest
from langchain_core.tools import tool

import podium
from podium.runtime import open_async_runtime, open_runtime
from podium.storage.faults import DatabaseUnavailable, retry
from podium.testing import tool_call

POLICY = """
global:
  tools: {allow: ["*"]}
tools:
  send: {side_effects: true, idempotent: false}
"""


def _flow(scripted, tmp_path, disrupt, sent: list[str]):
    """Three chained tasks; each sends once; the second send disrupts the database."""

    @tool
    def send(item: str) -> str:
        """Send an item."""
        sent.append(item)
        if item == "b":
            disrupt()
        return f"sent {item}"

    replies = []
    for item in "abc":
        replies += [tool_call("send", {"item": item}), f"{item} done"]
    policy = tmp_path / "send.yaml"
    policy.write_text(POLICY)
    return podium.build_workflow(
        [podium.AgentSpec(name="sender", tools=[send], model=scripted(*replies, name="sender"))],
        name="faults",
        supervisor=podium.Plan.chain(*[("sender", f"send {i}") for i in "abc"]),
        policies=policy,
    )


def _terminate_others(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def _check_run(rt, out, sent: list[str]) -> None:
    assert out["status"] == "completed", out.get("error")
    assert sent == ["a", "b", "c"]  # every effect exactly once
    assert rt.services.dead_letters.list(tenant_id="default") == []


def test_terminated_backends_mid_run_are_replaced(postgres_url, scripted, tmp_path):
    sent: list[str] = []
    killed: list[int] = []
    flow = _flow(scripted, tmp_path, lambda: killed.append(_terminate_others(postgres_url)), sent)
    with open_runtime(postgres_url) as rt:
        out = rt.compile(flow).invoke(
            {"goal": "send"}, {"configurable": {"thread_id": f"kill-{uuid.uuid4().hex[:6]}"}}
        )
        _check_run(rt, out, sent)
    assert killed and killed[0] >= 1  # podium's pooled connections were really cut


def test_a_server_restart_mid_run(own_cluster, scripted, tmp_path):
    sent: list[str] = []
    flow = _flow(scripted, tmp_path, own_cluster.restart, sent)
    with open_runtime(own_cluster.url) as rt:
        out = rt.compile(flow).invoke({"goal": "send"}, {"configurable": {"thread_id": "restart"}})
        _check_run(rt, out, sent)


def test_a_server_down_for_a_moment_is_waited_for(own_cluster, scripted, tmp_path):
    """The server is down while the run goes on: podium's writes wait for it (retry)."""
    sent: list[str] = []

    def outage() -> None:
        own_cluster.stop()
        threading.Timer(1.5, own_cluster.start).start()

    flow = _flow(scripted, tmp_path, outage, sent)
    with open_runtime(own_cluster.url, db_retry_for=30) as rt:
        started = time.monotonic()
        out = rt.compile(flow).invoke({"goal": "send"}, {"configurable": {"thread_id": "down"}})
        waited = time.monotonic() - started
        _check_run(rt, out, sent)
    assert waited >= 1.0  # the run really waited for the server


def test_an_outage_longer_than_the_window_stops_with_a_clear_error():
    calls = []

    def lost():
        calls.append(1)
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    now = [0.0]
    with pytest.raises(DatabaseUnavailable) as caught:
        retry(
            lost,
            url="postgresql://u:***@db/x",
            retry_for=5,
            clock=lambda: now[0],
            sleep=lambda s: now.__setitem__(0, now[0] + s),
        )
    message = str(caught.value)
    assert "postgresql://u:***@db/x was unreachable for 5s" in message
    assert "server closed the connection unexpectedly" in message
    assert "check that the server is running and reachable" in message
    assert "podium resume" not in message  # no run named: said by the run that stopped
    assert len(calls) > 3 and now[0] <= 5


def _stopping_flow(own_cluster, scripted, tmp_path, sent: list[str], name: str = "faults"):
    """Two chained tasks; the second one's first model call stops the database server for
    good, so its reply cannot be recorded. Scripted for the run and then its resume."""

    @tool
    def send(item: str) -> str:
        """Send an item."""
        sent.append(item)
        return f"sent {item}"

    def stop_then_ask(_messages):
        own_cluster.stop()
        return tool_call("send", {"item": "b"})

    model = scripted(
        tool_call("send", {"item": "a"}),
        "a done",
        stop_then_ask,  # t2's first call: its answer cannot be recorded
        tool_call("send", {"item": "b"}),  # t2 again, after the resume
        "b done",
        name="sender",
    )
    policy = tmp_path / "send.yaml"
    policy.write_text(POLICY)
    return podium.build_workflow(
        [podium.AgentSpec(name="sender", tools=[send], model=model)],
        name=name,
        supervisor=podium.Plan.chain(("sender", "send a"), ("sender", "send b")),
        policies=policy,
    )


def _with_password(url: str) -> str:
    """The cluster's URL with a password in it (trust auth ignores it), to see it masked."""
    return url.replace("postgresql://postgres@", "postgresql://postgres:s3cret@", 1)


def _check_failed(out: dict, thread: str, url: str, took: float) -> None:
    assert out["status"] == "failed"
    masked = url.replace(":s3cret@", ":***@")
    assert out["error"].startswith(f"the database {masked} was unreachable for 2s ("), out
    assert f"`podium resume {thread}`" in out["error"]
    assert "s3cret" not in out["error"]
    assert out["tasks"]["t1"]["status"] == "completed"  # the state it reached
    assert took < 20  # the retry window (1.5 s) and stopping the server, not minutes


def _check_resumed(out: dict, sent: list[str], rt) -> None:
    assert out["status"] == "completed", out.get("error")
    assert sent == ["a", "b"]  # each effect once
    assert rt.services.dead_letters.list(tenant_id="default") == []


def test_a_server_down_for_good_fails_the_run_then_it_resumes(own_cluster, scripted, tmp_path):
    """Down longer than the window: `invoke` returns the run `failed` with the reason (no
    exception, no dead letter); once the server is back the thread resumes where it
    stopped, each effect once."""
    sent: list[str] = []
    flow = _stopping_flow(own_cluster, scripted, tmp_path, sent)
    url, config = _with_password(own_cluster.url), {"configurable": {"thread_id": "for-good"}}
    try:
        with open_runtime(url, db_retry_for=1.5) as rt:
            started = time.monotonic()
            out = rt.compile(flow).invoke({"goal": "send"}, config)
            took = time.monotonic() - started
    finally:
        own_cluster.start()
    _check_failed(out, "for-good", url, took)
    with open_runtime(url) as rt:
        _check_resumed(rt.compile(flow).invoke(None, config), sent, rt)
        by_attempt = rt.services.ledger.totals("default", by="attempt", thread_id="for-good")
    # t2 ran again from its start: its paid calls are its attempt 2 (the reply the outage
    # kept from being recorded left no row), t1's two are first attempts.
    assert sorted((r.key, r.calls) for r in by_attempt) == [("1", 2), ("2", 2)]


async def test_an_async_run_fails_the_same_way_then_resumes(own_cluster, scripted, tmp_path):
    sent: list[str] = []
    flow = _stopping_flow(own_cluster, scripted, tmp_path, sent)
    url, config = _with_password(own_cluster.url), {"configurable": {"thread_id": "async-down"}}
    events: list[dict] = []
    try:
        async with open_async_runtime(url, db_retry_for=1.5) as rt:
            started = time.monotonic()
            async for mode, chunk in rt.compile(flow).astream(
                {"goal": "send"}, config, stream_mode=["custom", "values"]
            ):
                if mode == "custom":
                    events.append(chunk)
                else:
                    out = chunk
            took = time.monotonic() - started
    finally:
        own_cluster.start()
    _check_failed(out, "async-down", url, took)
    finished = events[-1]
    assert (finished["event"], finished["status"]) == ("run_finished", "failed")
    assert (finished["reason"], finished["error"]) == ("database_unavailable", out["error"])
    async with open_async_runtime(url) as rt:
        _check_resumed(await rt.compile(flow).ainvoke(None, config), sent, rt)


#: A workflow module for the CLI test: two chained sends; the first model call of t2
#: stops the database server (once: a marker file says it happened), as `_stopping_flow`.
CLI_FLOW = """
import json, os, subprocess
import podium
from langchain_core.tools import tool
from podium.testing import ScriptedChatModel, tool_call

MARK = os.environ["OUTAGE_MARK"]

@tool
def send(item: str) -> str:
    \"\"\"Send an item.\"\"\"
    with open(os.environ["OUTAGE_SENT"], "a") as out:
        out.write(item + "\\n")
    return f"sent {item}"

def stop_then_ask(_messages):
    open(MARK, "w").close()
    subprocess.run(json.loads(os.environ["OUTAGE_STOP"]), check=True, capture_output=True)
    return tool_call("send", {"item": "b"})

def build(model=None):
    if os.path.exists(MARK):  # the resume: t2 asks again, t1 is done
        replies = [tool_call("send", {"item": "b"}), "b done"]
    else:
        replies = [tool_call("send", {"item": "a"}), "a done", stop_then_ask]
    return podium.build_workflow(
        [podium.AgentSpec(name="sender", tools=[send],
                          model=ScriptedChatModel(responses=replies, name="sender"))],
        name="outage",
        supervisor=podium.Plan.chain(("sender", "send a"), ("sender", "send b")),
        policies=os.environ["OUTAGE_POLICY"],
    )
"""


def test_the_cli_says_the_run_failed_then_resumes_it(own_cluster, tmp_path):
    """`podium run` prints why the run failed in one line (no traceback, no log noise of
    the connection pool) and exits 1; `podium resume` finishes it once the server is back."""
    (tmp_path / "outage_flow.py").write_text(CLI_FLOW)
    (tmp_path / "send.yaml").write_text(POLICY)
    url = _with_password(own_cluster.url)
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "PODIUM_WORKFLOWS": "outage=outage_flow:build",
        "PODIUM_DATABASE_URL": url,
        "PODIUM_DB_RETRY_FOR": "1.5",
        "OUTAGE_MARK": str(tmp_path / "stopped"),
        "OUTAGE_SENT": str(tmp_path / "sent"),
        "OUTAGE_POLICY": str(tmp_path / "send.yaml"),
        "OUTAGE_STOP": json.dumps(own_cluster.command("-m", "fast", "stop")),
    }

    def podium_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "podium.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )

    try:
        started = time.monotonic()
        ran = podium_cli("run", "outage", "send", "--thread", "cli-down", "--quiet")
        took = time.monotonic() - started
    finally:
        own_cluster.start()
    assert (tmp_path / "stopped").exists()  # the server really went down mid-run
    assert ran.returncode == 1 and took < 30, ran.stderr
    assert "Traceback" not in ran.stderr and "s3cret" not in ran.stderr
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    masked = url.replace(":s3cret@", ":***@")
    assert lines[0] == "thread: cli-down" and len(lines) == 2, ran.stderr
    assert lines[1].startswith(
        f"podium: run failed: the database {masked} was unreachable for 2s ("
    ), ran.stderr
    assert "continue it with `podium resume cli-down`" in lines[1]
    assert "Connection refused" in lines[1]  # the server's own reason, not the pool's

    resumed = podium_cli("resume", "cli-down")
    assert resumed.returncode == 0, resumed.stderr
    assert "b done" in resumed.stdout
    assert (tmp_path / "sent").read_text().split() == ["a", "b"]  # each effect once


def test_closing_a_runtime_while_the_database_is_down_says_what_was_lost(own_cluster, caplog):
    """Buffered audit events that cannot be written at close are logged, not raised: a
    raise there would replace what the caller is told about how its run ended."""
    with caplog.at_level(logging.WARNING, logger="podium"):
        try:
            with open_runtime(own_cluster.url, db_retry_for=1) as rt:
                rt.services.recorder.event(
                    "transition", "system:podium", {"n": 1}, tenant_id="default"
                )
                own_cluster.stop()
        finally:
            own_cluster.start()
    assert "audit events and usage rows still buffered were not written" in caplog.text
    assert "was unreachable for 1s" in caplog.text
