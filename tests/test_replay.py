"""Replaying a dead letter writes its thread under the thread's writer lock.

The replay writes the thread's state (`update_state`) and then runs it on: both under
the lock a run takes. A replay of a thread that a run is running is refused before the
letter is claimed, and a run of a thread that a replay is running is refused, each with
`ThreadBusy` naming the thread; the history does not fork.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from langchain_core.tools import tool

import podium
from podium import AgentSpec, RunContext
from podium.errors import ThreadBusy
from podium.plan import Plan, PlannedTask
from podium.replay import finish, replay
from podium.testing import tool_call

POLICY = """
agents:
  flaky: {tools: {allow: [hold]}}
  slow: {tools: {allow: [hold]}}
"""
WAIT = 30.0


class Gates:
    """`hold(tag)` blocks until the test lets that tag go; the test waits until it is held."""

    def __init__(self) -> None:
        self.held: dict[str, threading.Event] = {}
        self.go: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def _pair(self, tag: str) -> tuple[threading.Event, threading.Event]:
        with self._lock:
            return (
                self.held.setdefault(tag, threading.Event()),
                self.go.setdefault(tag, threading.Event()),
            )

    def hold(self, tag: str) -> None:
        held, go = self._pair(tag)
        held.set()
        assert go.wait(WAIT), f"{tag} was never let go"

    def wait_held(self, tag: str) -> None:
        assert self._pair(tag)[0].wait(WAIT), f"{tag} was never reached"

    def release(self, tag: str) -> None:
        self._pair(tag)[1].set()


def _letters(rt: Any, tenant: str) -> list[Any]:
    """The tenant's dead letters, once there are any (t1 fails beside the waiting t2)."""
    deadline = time.monotonic() + WAIT
    while not (letters := rt.services.dead_letters.list(tenant)):
        assert time.monotonic() < deadline, "no dead letter"
        time.sleep(0.02)
    return letters


class InThread:
    def __init__(self, fn: Any) -> None:
        self.out: list[Any] = []
        self.thread = threading.Thread(target=lambda: self.out.append(fn()), daemon=True)
        self.thread.start()

    def result(self) -> Any:
        self.thread.join(WAIT)
        assert self.out, "still running (or it raised: see the log)"
        return self.out[0]


def test_a_replay_and_a_run_of_one_thread_refuse_each_other(db_url, scripted, tenant, tmp_path):
    gates = Gates()

    @tool
    def hold(tag: str) -> str:
        """Wait at a named point until the test lets go."""
        gates.hold(tag)
        return f"{tag} went on"

    flaky = scripted(
        ValueError("the model broke"),  # permanent: t1 is dead-lettered at once
        # The replay: t1 waits at "replay" while the test tries to run the thread.
        tool_call("hold", {"tag": "replay"}),
        "t1 fixed",
        name="flaky",
    )
    slow = scripted(tool_call("hold", {"tag": "run"}), "t2 done", name="slow")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    graph = podium.build_workflow(
        [
            AgentSpec(name="flaky", tools=[hold], model=flaky),
            AgentSpec(name="slow", tools=[hold], model=slow),
        ],
        name="replayed",
        supervisor=Plan(
            tasks=[
                PlannedTask(id="t1", agent="flaky", instruction="break"),
                PlannedTask(id="t2", agent="slow", instruction="take your time"),
            ]
        ),
        policies=policy,
    )
    thread = f"{tenant}-replay"
    config = {"configurable": {"thread_id": thread}}
    root = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    context = RunContext(tenant_id=tenant, user_id="oncall")
    with podium.open_runtime(db_url) as rt:
        app = rt.compile(graph)
        # 1. The run is running (t2 waits) when t1's dead letter is replayed: refused,
        #    and the letter stays pending (not claimed, no new attempt).
        run = InThread(lambda: app.invoke({"goal": "g"}, config, context=context))
        gates.wait_held("run")
        [letter] = _letters(rt, tenant)
        with pytest.raises(ThreadBusy, match=f"thread '{thread}' of tenant '{tenant}'"):
            replay(app, letter, services=rt.services, context=context)
        unclaimed = rt.services.dead_letters.get(letter.id, tenant)
        assert (unclaimed.status, unclaimed.attempts) == ("pending", letter.attempts)
        gates.release("run")
        out = run.result()
        assert out["tasks"]["t1"]["status"] == "dead_lettered"
        assert out["tasks"]["t2"]["status"] == "completed"
        checkpoints = len(list(rt.checkpointer.list(root)))

        # 2. The replay is running (t1 waits) when the thread is run again: refused, and
        #    so is a second replay; neither wrote anything.
        replayed = InThread(lambda: replay(app, letter, services=rt.services, context=context))
        gates.wait_held("replay")
        with pytest.raises(ThreadBusy, match=f"thread '{thread}' of tenant '{tenant}'"):
            app.invoke(None, config, context=context)
        with pytest.raises(ThreadBusy):
            app.invoke({"goal": "another goal"}, config, context=context)
        gates.release("replay")
        done = replayed.result()
        assert done["status"] == "completed"
        assert done["tasks"]["t1"]["status"] == "completed"
        assert finish(app, letter, services=rt.services) == "completed"
        assert rt.services.dead_letters.get(letter.id, tenant).status == "replayed"
        history = list(rt.checkpointer.list(root))
    # One line of history: every checkpoint after the first run descends from its last.
    parents = {c.config["configurable"]["checkpoint_id"]: c.parent_config for c in history}
    newest = history[0].config["configurable"]["checkpoint_id"]
    chain = []
    while newest is not None:
        chain.append(newest)
        parent = parents[newest]
        newest = parent["configurable"]["checkpoint_id"] if parent else None
    assert len(chain) == len(history) > checkpoints  # no fork: all in one chain
