"""Lost PostgreSQL connections mid-run: retried, not dead-lettered; every effect once."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest
from langchain_core.tools import tool

import podium
from podium.runtime import open_runtime
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
    assert "podium resume" in message
    assert len(calls) > 3 and now[0] <= 5


def test_a_server_down_for_good_stops_the_run_then_it_resumes(own_cluster, scripted, tmp_path):
    """Down longer than the window: the run stops with DatabaseUnavailable (no dead letter);
    once the server is back the thread resumes where it stopped, each effect once."""
    sent: list[str] = []

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
    flow = podium.build_workflow(
        [podium.AgentSpec(name="sender", tools=[send], model=model)],
        name="faults",
        supervisor=podium.Plan.chain(("sender", "send a"), ("sender", "send b")),
        policies=policy,
    )
    config = {"configurable": {"thread_id": "for-good"}}
    try:
        with open_runtime(own_cluster.url, db_retry_for=1.5) as rt:
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailable, match="was unreachable for 2s"):
                rt.compile(flow).invoke({"goal": "send"}, config)
            assert time.monotonic() - started < 20
    except DatabaseUnavailable:
        pass  # closing the runtime while the server is down may say so too
    finally:
        own_cluster.start()
    with open_runtime(own_cluster.url) as rt:
        out = rt.compile(flow).invoke(None, config)
        assert out["status"] == "completed", out.get("error")
        assert sent == ["a", "b"]
        assert rt.services.dead_letters.list(tenant_id="default") == []
        by_attempt = rt.services.ledger.totals("default", by="attempt", thread_id="for-good")
    # t2 ran again from its start: its paid calls are its attempt 2 (the reply the outage
    # kept from being recorded left no row), t1's two are first attempts.
    assert sorted((r.key, r.calls) for r in by_attempt) == [("1", 2), ("2", 2)]
