"""Failure recovery on compiled workflows: retries, fallbacks, dead letters, breakers,
timeouts, the router's ping-pong guard, exactly-once replay and the `podium dlq` CLI.

Retry and breaker timing runs on injected fakes (`sleep=`, `clock=`), so nothing waits.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from langchain_core.tools import ToolException, tool
from langgraph.errors import GraphRecursionError
from langgraph.types import Command

import podium
import podium.names as names
from podium import AgentSpec, Plan, PlannedTask, RunContext
from podium.errors import DeadLetterStateError, ReplayError, ThreadBusy
from podium.governance.writers import holding_thread
from podium.replay import finish, replay, requeued_tasks
from podium.stores.effects.store import EffectKey
from podium.testing import tool_call

ONE_TASK = Plan(tasks=[PlannedTask(id="t1", agent="worker", instruction="do the job")])
SCRIPTS = Path(__file__).parent / "recovery_scripts"


def _config(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


class FakeSleep:
    """Records every wait instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Failing:
    """A `fetch` tool failing with `errors` (in turn) before it succeeds; counts calls."""

    def __init__(self, *errors: BaseException, name: str = "fetch") -> None:
        self.errors = list(errors)
        self.calls = 0
        self.name = name

    def tool(self):
        def fetch(item: str) -> str:
            """Fetch an item."""
            self.calls += 1
            if self.errors:
                raise self.errors.pop(0)
            return f"fetched {item}"

        fetch.__name__ = self.name
        return tool(fetch)


RETRY = "{attempts: 3, initial_delay: 1, backoff: 2, max_delay: 30, jitter: false}"


def _tool_policy(tmp_path: Path, agents: list[str], name: str = "fetch", **settings: str) -> Path:
    """Agents allowed tool `name`, whose settings are given as YAML flow values."""
    lines = ["agents:"]
    lines += [f"  {a}:\n    tools: {{allow: [{name}]}}" for a in agents]
    lines += ["tools:", f"  {name}:"]
    lines += [f"    {key}: {value}" for key, value in settings.items()] or ["    {}"]
    return _policy(tmp_path, "\n".join(lines) + "\n")


class HTTPError(Exception):
    """What provider SDKs raise: an error carrying the response's status code."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        super().__init__(f"HTTP {status_code}")


TRANSIENT = [
    pytest.param(lambda: ConnectionError("reset by peer"), id="connection"),
    pytest.param(lambda: TimeoutError("read timed out"), id="timeout"),
    pytest.param(lambda: OSError("network unreachable"), id="oserror"),
    pytest.param(lambda: HTTPError(429), id="http429"),
    pytest.param(lambda: HTTPError(503), id="http503"),
]
PERMANENT = [
    pytest.param(lambda: ValueError("bad item"), id="valueerror"),
    pytest.param(lambda: HTTPError(400), id="http400"),
]


def _run(rt, graph, thread: str, tenant: str) -> dict:
    return rt.compile(graph).invoke(
        {"goal": "g"}, _config(thread), context=RunContext(tenant_id=tenant)
    )


@pytest.mark.parametrize("error", TRANSIENT)
def test_flaky_tool_is_retried_with_growing_waits_and_the_task_completes(
    error, scripted, tenant, tmp_path
):
    flaky = Failing(error(), error())
    worker = scripted(tool_call("fetch", {"item": "x"}), "got x", name="worker")
    graph = podium.build_workflow(
        [AgentSpec(name="worker", tools=[flaky.tool()], model=worker)],
        name="flaky",
        supervisor=ONE_TASK,
        policies=_tool_policy(tmp_path, ["worker"], retry=RETRY),
    )
    sleep = FakeSleep()
    with podium.open_runtime("memory://", sleep=sleep) as rt:
        out = rt.compile(graph).invoke(
            {"goal": "g"}, _config(f"{tenant}-flaky"), context=RunContext(tenant_id=tenant)
        )
    assert flaky.calls == 3
    assert sleep.waits == [1.0, 2.0]
    assert out["status"] == "completed"
    assert out["answer"] == "got x"
    assert out["tasks"]["t1"]["status"] == "completed"
    # The model saw the tool's result, not the transient errors.
    assert worker.calls[1][-1].content == "fetched x"


@pytest.mark.parametrize("error", PERMANENT)
def test_permanent_tool_error_is_not_retried(error, scripted, tenant, tmp_path):
    broken = Failing(error())
    graph = podium.build_workflow(
        [
            AgentSpec(
                name="worker",
                tools=[broken.tool()],
                model=scripted(tool_call("fetch", {"item": "x"}), name="worker"),
            )
        ],
        name="permanent",
        supervisor=ONE_TASK,
        policies=_tool_policy(tmp_path, ["worker"], retry=RETRY),
    )
    sleep = FakeSleep()
    with podium.open_runtime("memory://", sleep=sleep) as rt:
        out = _run(rt, graph, f"{tenant}-permanent", tenant)
        [letter] = rt.services.dead_letters.list(tenant)
    assert broken.calls == 1
    assert sleep.waits == []
    task = out["tasks"]["t1"]
    assert task["status"] == "dead_lettered"
    assert task["failures"][0]["class"] == "permanent"
    assert task["error"] == f"{type(error()).__name__}: {error()}"
    assert letter.attempts[0].error_type == type(error()).__name__
    assert out["status"] == "failed"


def test_tool_exception_goes_back_to_the_model_instead_of_failing_the_task(
    scripted, tenant, tmp_path
):
    refusing = Failing(ToolException("item x does not exist; try y"))
    worker = scripted(tool_call("fetch", {"item": "x"}), "x is missing", name="worker")
    graph = podium.build_workflow(
        [AgentSpec(name="worker", tools=[refusing.tool()], model=worker)],
        name="toolerror",
        supervisor=ONE_TASK,
        policies=_tool_policy(tmp_path, ["worker"], retry=RETRY),
    )
    sleep = FakeSleep()
    with podium.open_runtime("memory://", sleep=sleep) as rt:
        out = _run(rt, graph, f"{tenant}-toolerror", tenant)
        letters = rt.services.dead_letters.list(tenant)
    assert refusing.calls == 1 and sleep.waits == []
    assert "item x does not exist; try y" in worker.calls[1][-1].content
    assert out["status"] == "completed" and out["answer"] == "x is missing"
    assert letters == []


def test_exhausted_retries_hand_the_task_to_the_fallback(scripted, tenant, tmp_path):
    down = Failing(*(ConnectionError(f"down {i}") for i in range(3)))
    agents = [
        AgentSpec(
            name="worker",
            tools=[down.tool()],
            model=scripted(tool_call("fetch", {"item": "x"}), name="worker"),
            fallback="backup",
        ),
        AgentSpec(name="backup", model=scripted("backup did it", name="backup")),
    ]
    graph = podium.build_workflow(
        agents,
        name="fallback",
        supervisor=ONE_TASK,
        policies=_tool_policy(tmp_path, ["worker"], retry=RETRY),
    )
    sleep = FakeSleep()
    with podium.open_runtime("memory://", sleep=sleep) as rt:
        out = _run(rt, graph, f"{tenant}-fallback", tenant)
        letters = rt.services.dead_letters.list(tenant)
    assert down.calls == 3 and sleep.waits == [1.0, 2.0]
    assert out["status"] == "completed"
    assert out["answer"] == "backup did it"
    assert out["results"]["t1"]["agent"] == "backup"
    task = out["tasks"]["t1"]
    assert task["status"] == "completed" and task["agent"] == "backup"
    assert task["assigned"] == ["worker", "backup"]
    statuses = [h["to"] for h in task["history"]]
    i = statuses.index("failed")
    assert statuses[i + 1] == "retrying"
    assert "down 2" in task["history"][i]["reason"]
    assert "reassigned from worker to backup" in task["history"][i + 1]["reason"]
    assert statuses[-1] == "completed"
    assert letters == []


def test_exhausted_fallback_dead_letters_the_task_with_its_context(
    db_url, scripted, tenant, tmp_path
):
    # A name of its own: breakers are shared by every tenant of a database.
    name = f"fetch_{tenant[-8:]}"
    down = Failing(*(ConnectionError(f"down {i}") for i in range(6)), name=name)
    fetch = down.tool()
    agents = [
        AgentSpec(
            name="worker",
            tools=[fetch],
            model=scripted(tool_call(name, {"item": "x"}), name="worker"),
            fallback="backup",
        ),
        AgentSpec(
            name="backup",
            tools=[fetch],
            model=scripted(tool_call(name, {"item": "x"}), name="backup"),
        ),
    ]
    plan = Plan(tasks=[PlannedTask(id="t1", agent="worker", instruction="fetch x for the report")])
    graph = podium.build_workflow(
        agents,
        name="deadend",
        supervisor=plan,
        policies=_tool_policy(tmp_path, ["worker", "backup"], name=name, retry=RETRY),
    )
    thread = f"{tenant}-deadend"
    with podium.open_runtime(db_url, sleep=FakeSleep()) as rt:
        app = rt.compile(graph)
        out = _run(rt, graph, thread, tenant)
        [letter] = rt.services.dead_letters.list(tenant)
        checkpoints = {
            s.config["configurable"]["checkpoint_id"]
            for s in app.get_state_history(_config(thread))
        }
    assert down.calls == 6
    assert out["status"] == "failed"
    task = out["tasks"]["t1"]
    assert task["status"] == "dead_lettered"
    assert task["dead_letter"] == letter.id
    assert (letter.workflow, letter.thread_id, letter.task_id) == ("deadend", thread, "t1")
    assert letter.agent == "backup" and letter.status == "pending"
    assert letter.inputs["goal"] == "g"
    assert letter.inputs["task"]["instruction"] == "fetch x for the report"
    assert [(a.agent, a.attempt, a.error_type) for a in letter.attempts] == [
        ("worker", 1, "ConnectionError"),
        ("backup", 2, "ConnectionError"),
    ]
    assert letter.attempts[0].error == "down 2" and letter.attempts[1].error == "down 5"
    assert letter.last_checkpoint_id in checkpoints


def test_a_dead_lettered_branch_does_not_stop_the_others(scripted, tenant, tmp_path):
    broken = Failing(ValueError("no such item"))
    agents = [
        AgentSpec(
            name="worker",
            tools=[broken.tool()],
            model=scripted(tool_call("fetch", {"item": "x"}), name="worker"),
        ),
        AgentSpec(name="steady", model=scripted("steady part", "steady summary", name="steady")),
        AgentSpec(name="joiner", model=scripted(name="joiner")),  # never runs
    ]
    plan = Plan(
        tasks=[
            PlannedTask(id="t1", agent="worker", instruction="fetch x"),
            PlannedTask(id="t2", agent="steady", instruction="part"),
            PlannedTask(id="t3", agent="steady", instruction="sum up", depends_on=["t2"]),
            PlannedTask(id="t4", agent="joiner", instruction="join", depends_on=["t1"]),
        ]
    )
    graph = podium.build_workflow(
        agents, name="branches", supervisor=plan, policies=_tool_policy(tmp_path, ["worker"])
    )
    with podium.open_runtime("memory://", sleep=FakeSleep()) as rt:
        out = _run(rt, graph, f"{tenant}-branches", tenant)
        [letter] = rt.services.dead_letters.list(tenant)
    statuses = {t: task["status"] for t, task in out["tasks"].items()}
    assert statuses == {
        "t1": "dead_lettered",
        "t2": "completed",
        "t3": "completed",
        "t4": "cancelled",
    }
    assert letter.task_id == "t1"
    assert out["status"] == "partial"
    assert "steady summary" in out["answer"]
    assert "t1" in out["answer"].split("Not completed:")[1]


def test_breaker_opens_fails_fast_and_closes_after_a_successful_probe(scripted, tenant, tmp_path):
    down = Failing(*(ConnectionError(f"down {i}") for i in range(5)))
    worker = scripted(
        *(tool_call("fetch", {"item": "x"}) for _ in range(8)),  # 5 failures, 2 fast, 1 probe
        "probe worked",
        tool_call("fetch", {"item": "y"}),
        "closed again",
        name="worker",
    )
    graph = podium.build_workflow(
        [AgentSpec(name="worker", tools=[down.tool()], model=worker)],
        name="breaker",
        supervisor=ONE_TASK,
        policies=_tool_policy(tmp_path, ["worker"], retry="{attempts: 1}"),
    )
    clock, runs = FakeClock(), iter(range(100))
    with podium.open_runtime("memory://", clock=clock, sleep=FakeSleep()) as rt:
        app = rt.compile(graph)

        def run() -> dict:
            return app.invoke(
                {"goal": "g"},
                _config(f"{tenant}-breaker-{next(runs)}"),
                context=RunContext(tenant_id=tenant),
            )

        def breaker():
            return rt.services.breakers.state("tool:fetch", tenant)

        for i in range(5):
            out = run()
            assert out["tasks"]["t1"]["error"] == f"ConnectionError: down {i}"
            clock.advance(1)
        assert down.calls == 5
        assert breaker().state == "open"
        for _ in range(2):  # open: fails fast, the tool is not run
            out = run()
            assert down.calls == 5
            assert out["tasks"]["t1"]["status"] == "dead_lettered"
            assert out["tasks"]["t1"]["failures"][0]["error_type"] == "CircuitOpen"
            assert "circuit breaker 'tool:fetch' is open" in out["tasks"]["t1"]["error"]
            clock.advance(1)
        clock.advance(30)  # past the cool-down: the next call is the probe
        out = run()
        assert down.calls == 6
        assert out["status"] == "completed" and out["answer"] == "probe worked"
        assert breaker().state == "closed"
        out = run()
        assert down.calls == 7 and out["answer"] == "closed again"
        assert len(rt.services.dead_letters.list(tenant)) == 7


def test_a_hung_tool_times_out_and_the_run_moves_on(scripted, tenant, tmp_path):
    release, started = threading.Event(), []

    @tool
    def hang(item: str) -> str:
        """Wait for a service that never answers."""
        started.append(item)
        release.wait(30)
        return "too late"

    graph = podium.build_workflow(
        [
            AgentSpec(
                name="worker",
                tools=[hang],
                model=scripted(tool_call("hang", {"item": "x"}), name="worker"),
            )
        ],
        name="hung",
        supervisor=ONE_TASK,
        policies=_tool_policy(
            tmp_path, ["worker"], name="hang", timeout="0.2", retry="{attempts: 1}"
        ),
    )
    try:
        with podium.open_runtime("memory://", sleep=FakeSleep()) as rt:
            began = time.monotonic()
            out = _run(rt, graph, f"{tenant}-hung", tenant)
            elapsed = time.monotonic() - began
    finally:
        release.set()
    assert started == ["x"]
    assert elapsed < 5
    task = out["tasks"]["t1"]
    assert task["status"] == "dead_lettered"
    assert task["failures"][0]["error_type"] == "CallTimeout"
    assert "tool 'hang' timed out after 0.2s" in task["error"]
    assert out["status"] == "failed"


def test_router_ping_pong_is_stopped_with_a_dead_letter(scripted, tenant):
    turns = ["alpha", "beta"] * 3
    boss = scripted(*(f'{{"next": "{a}", "instruction": "your turn"}}' for a in turns), name="boss")
    agents = [
        AgentSpec(name="alpha", model=scripted("a1", "a2", "a3", name="alpha")),
        AgentSpec(name="beta", model=scripted("b1", "b2", name="beta")),
    ]
    graph = podium.build_workflow(agents, name="pingpong", supervisor="router", model=boss)
    with podium.open_runtime("memory://") as rt:
        out = _run(rt, graph, f"{tenant}-pingpong", tenant)
        [letter] = rt.services.dead_letters.list(tenant)
    assert out["status"] == "failed"
    assert out["error"].startswith("the router bounced between alpha and beta ")
    assert f"(dead letter {letter.id})" in out["error"]
    assert [t["agent"] for t in out["tasks"].values()] == ["alpha", "beta"] * 2 + ["alpha"]
    assert {t["status"] for t in out["tasks"].values()} == {"completed"}
    assert letter.task_id == "router"
    assert letter.workflow == "pingpong" and letter.thread_id == f"{tenant}-pingpong"
    assert letter.agent == "beta"
    assert letter.inputs == {"goal": "g", "next": "beta", "instruction": "your turn"}
    assert letter.attempts[0].error_type == "RouterPingPong"


def test_replaying_a_dead_letter_twice_repeats_no_effect(db_url, scripted, tenant, tmp_path):
    sent: list[str] = []

    @tool
    def send(to: str) -> str:
        """Send the report (a side effect: it must happen once)."""
        sent.append(to)
        return f"sent to {to} #{len(sent)}"

    worker = scripted(
        tool_call("send", {"to": "ops"}, id="call-send-1"),
        ValueError("the model broke after sending"),  # permanent: the task dead-letters
        # The replay: the model asks for the same call again; the ledger answers it.
        tool_call("send", {"to": "ops"}, id="call-send-1"),
        "report sent",
        name="worker",
    )
    graph = podium.build_workflow(
        [AgentSpec(name="worker", tools=[send], model=worker)],
        name="replayed",
        supervisor=ONE_TASK,
        policies=_tool_policy(
            tmp_path, ["worker"], name="send", side_effects="true", idempotent="false"
        ),
    )
    thread = f"{tenant}-replay"
    context = RunContext(tenant_id=tenant, user_id="oncall")
    with podium.open_runtime(db_url, sleep=FakeSleep()) as rt:
        app = rt.compile(graph)
        out = app.invoke({"goal": "g"}, _config(thread), context=context)
        assert out["tasks"]["t1"]["status"] == "dead_lettered"
        assert sent == ["ops"]
        [letter] = rt.services.dead_letters.list(tenant)

        replayed = replay(app, letter, services=rt.services, context=context)
        assert finish(app, letter, services=rt.services) == "completed"
        with pytest.raises(DeadLetterStateError, match="already replayed"):
            replay(app, letter, services=rt.services, context=context)
        with pytest.raises(DeadLetterStateError):
            replay(
                app,
                rt.services.dead_letters.get(letter.id, tenant),
                services=rt.services,
                context=context,
            )
        after = rt.services.dead_letters.get(letter.id, tenant)
        effect = rt.services.effects.get(EffectKey(tenant, thread, "t1", "r1:call-send-1"))
        final = app.get_state(_config(thread)).values
    assert sent == ["ops"]  # exactly one effect, through the run, the replay and the refusal
    assert replayed["status"] == "completed" and replayed["answer"] == "report sent"
    # The replayed model got the recorded result of the first call.
    assert worker.calls[3][-1].content == "sent to ops #1"
    assert after.status == "replayed"
    assert after.resolution["replay_by"] == "oncall"
    assert after.resolution["result"]["status"] == "completed"
    assert effect.status == "completed" and effect.attempts == 1
    assert final["status"] == "completed"
    assert final["tasks"]["t1"]["status"] == "completed"


def _load_script_module(name: str):
    spec = importlib.util.spec_from_file_location(
        f"recovery_scripts_{name}", SCRIPTS / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dlq_cli_lists_shows_replays_and_discards(tmp_path, tenant):
    flow = _load_script_module("dlq_flow")
    url = f"sqlite:///{tmp_path / 'podium.db'}"
    context = RunContext(tenant_id=tenant)
    with podium.open_runtime(url) as rt:
        for thread in ("first", "second"):
            app = rt.compile(flow.build(phase="fail"))
            out = app.invoke({"goal": "answer"}, _config(f"{tenant}-{thread}"), context=context)
            assert out["tasks"]["t1"]["status"] == "dead_lettered"
        letters = {d.thread_id: d.id for d in rt.services.dead_letters.list(tenant)}
    first, second = letters[f"{tenant}-first"], letters[f"{tenant}-second"]
    root = Path(podium.__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SCRIPTS), str(root)]),
        "PODIUM_WORKFLOWS": f"{flow.NAME}=dlq_flow:build",
        "PODIUM_TEST_DLQ_PHASE": "fixed",
    }

    def dlq(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "podium.cli", "dlq", *args, "--db", url, "--tenant", tenant],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )

    listed = dlq("list")
    assert listed.returncode == 0, listed.stderr
    for letter_id in (first, second):
        [row] = [line for line in listed.stdout.splitlines() if letter_id in line]
        assert "pending" in row and flow.NAME in row and "worker" in row and flow.ERROR in row

    shown = dlq("show", first)
    assert shown.returncode == 0, shown.stderr
    assert f"dead letter {first}  status pending  tenant {tenant}" in shown.stdout
    assert f"workflow {flow.NAME}  thread {tenant}-first  task t1  agent worker" in shown.stdout
    assert f"worker #1  ValueError: {flow.ERROR}" in shown.stdout
    assert '"goal": "answer"' in shown.stdout

    replayed = dlq("replay", first, "--quiet", "--user", "oncall")
    assert replayed.returncode == 0, replayed.stderr
    assert flow.ANSWER in replayed.stdout
    assert f"replay of {first}: task t1 is now completed" in replayed.stderr

    again = dlq("replay", first)
    assert again.returncode == 2
    assert f"cannot replay dead letter {first!r}: it was already replayed" in again.stderr

    discarded = dlq("discard", second, "--reason", "duplicate request")
    assert discarded.returncode == 0, discarded.stderr
    assert f"discarded {second}: duplicate request" in discarded.stdout

    remaining = dlq("list", "--status", "pending")
    assert remaining.returncode == 0, remaining.stderr
    assert f"no dead letters for tenant {tenant!r}" in remaining.stdout

    with podium.open_runtime(url) as rt:
        done = rt.services.dead_letters.get(first, tenant)
        closed = rt.services.dead_letters.get(second, tenant)
        app = rt.compile(flow.build(phase="fail"))
        state = app.get_state(_config(f"{tenant}-first")).values
    assert done.status == "replayed" and done.resolution["replay_by"] == "oncall"
    assert closed.status == "discarded" and closed.resolution["reason"] == "duplicate request"
    assert state["status"] == "completed" and state["answer"] == flow.ANSWER


def _dlq_env(flow, phase: str, **extra: str) -> dict[str, str]:
    root = Path(podium.__file__).resolve().parent.parent
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SCRIPTS), str(root)]),
        "PODIUM_WORKFLOWS": f"{flow.NAME}=dlq_flow:build",
        "PODIUM_TEST_DLQ_PHASE": phase,
        **extra,
    }


def _dead_lettered(flow, url: str, thread: str, tenant: str):
    with podium.open_runtime(url) as rt:
        app = rt.compile(flow.build(phase="fail"))
        out = app.invoke({"goal": "answer"}, _config(thread), context=RunContext(tenant_id=tenant))
        assert out["tasks"]["t1"]["status"] == "dead_lettered"
        [letter] = rt.services.dead_letters.list(tenant)
    return letter


def _replays_of(task: dict) -> list[dict]:
    """The history entries that put `task` back for a replay."""
    return [
        h for h in task["history"] if h["to"] == "queued" and "replay" in (h.get("reason") or "")
    ]


def _replay_cli(letter, user: str, url: str, tenant: str) -> list[str]:
    return [sys.executable, "-m", "podium.cli", "dlq", "replay", letter.id, "--quiet",
            "--user", user, "--db", url, "--tenant", tenant]  # fmt: skip


def _dlq_list_cli(url: str, tenant: str) -> list[str]:
    return [sys.executable, "-m", "podium.cli", "dlq", "list", "--db", url, "--tenant", tenant]


def _kill_in_model_call(command: list[str], env: dict[str, str], mark, cwd) -> None:
    """Start a replay and SIGKILL it once its model call created `mark`."""
    killed = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not mark.exists():
            assert killed.poll() is None, killed.communicate()
            assert time.monotonic() < deadline, "the replay never reached the model call"
            time.sleep(0.05)
    finally:
        killed.kill()
        killed.communicate()


def _replay_again(command: list[str], env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_a_replay_killed_mid_run_is_taken_over_by_the_next(durable_url, tmp_path, tenant):
    flow = _load_script_module("dlq_flow")
    thread = f"{tenant}-killed"
    letter = _dead_lettered(flow, durable_url, thread, tenant)
    mark = tmp_path / "in-model-call"
    ana, bob = (_replay_cli(letter, user, durable_url, tenant) for user in ("ana", "bob"))
    # ana's replay is killed in the worker's model call.
    _kill_in_model_call(ana, _dlq_env(flow, "hang", PODIUM_TEST_DLQ_MARK=str(mark)), mark, tmp_path)
    with podium.open_runtime(durable_url) as rt:
        stuck = rt.services.dead_letters.get(letter.id, tenant)
    assert stuck.status == "replaying" and stuck.resolution["replay_by"] == "ana"

    # ana's replay is gone with its process (and the thread's writer lock with it): the
    # next replay takes the letter over and runs the thread on from its last checkpoint.
    again = _replay_again(bob, _dlq_env(flow, "fixed"), tmp_path)
    assert again.returncode == 0, again.stderr
    assert flow.ANSWER in again.stdout
    assert f"replay of {letter.id}: task t1 is now completed" in again.stderr
    with podium.open_runtime(durable_url) as rt:
        done = rt.services.dead_letters.get(letter.id, tenant)
        state = rt.compile(flow.build()).get_state(_config(thread)).values
    assert done.status == "replayed"
    assert done.resolution["replay_by"] == "bob"
    assert done.resolution["took_over_from"]["replay_by"] == "ana"
    assert done.resolution["result"]["status"] == "completed"
    assert state["status"] == "completed" and state["answer"] == flow.ANSWER
    # ana had put the task back; bob went on from there instead of putting it back again.
    assert len(_replays_of(state["tasks"]["t1"])) == 1


def test_a_replay_killed_after_its_side_effect_is_taken_over_without_repeating_it(
    durable_url, tmp_path, tenant
):
    flow = _load_script_module("dlq_effect_flow")
    sent, mark = tmp_path / "sent.txt", tmp_path / "in-model-call"
    env = {"PODIUM_TEST_DLQ_SENT": str(sent), "PODIUM_TEST_DLQ_MARK": str(mark)}
    os.environ.update(env)  # the first run builds the flow in this process
    thread = f"{tenant}-effect"
    try:
        with podium.open_runtime(durable_url) as rt:
            app = rt.compile(flow.build(phase="fail"))
            out = app.invoke(
                {"goal": "report"}, _config(thread), context=RunContext(tenant_id=tenant)
            )
            assert out["tasks"]["t1"]["status"] == "dead_lettered"
            [letter] = rt.services.dead_letters.list(tenant)
    finally:
        for key in env:
            os.environ.pop(key)
    assert len(sent.read_text().splitlines()) == 1

    ana, bob = (_replay_cli(letter, user, durable_url, tenant) for user in ("ana", "bob"))
    workflows = {"PODIUM_WORKFLOWS": f"{flow.NAME}=dlq_effect_flow:build", **env}
    # ana's replay sends the report, then is killed as it asks the model on.
    _kill_in_model_call(ana, _dlq_env(flow, "hang", **workflows), mark, tmp_path)
    made = len(sent.read_text().splitlines())
    assert made >= 2  # the replay sent the report again before it was killed

    again = _replay_again(bob, _dlq_env(flow, "fixed", **workflows), tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"replay of {letter.id}: task t1 is now completed" in again.stderr
    # bob went on from ana's recorded model replies: their sends were answered from the
    # effect ledger, not made again.
    assert len(sent.read_text().splitlines()) == made, sent.read_text()
    with podium.open_runtime(durable_url) as rt:
        done = rt.services.dead_letters.get(letter.id, tenant)
    assert done.status == "replayed"
    assert done.resolution["took_over_from"]["replay_by"] == "ana"


def test_a_replay_that_died_before_putting_its_task_back_is_taken_over(durable_url, tenant):
    flow = _load_script_module("dlq_flow")
    thread = f"{tenant}-claimed"
    letter = _dead_lettered(flow, durable_url, thread, tenant)
    with podium.open_runtime(durable_url) as rt:
        # ana's process claimed the letter and died before it wrote anything to the thread.
        rt.services.dead_letters.claim_for_replay(letter.id, tenant, by="ana")
        app = rt.compile(flow.build(phase="fixed"))
        out = replay(
            app, letter, services=rt.services, context=RunContext(tenant_id=tenant, user_id="bob")
        )
        status = finish(app, letter, services=rt.services)
        done = rt.services.dead_letters.get(letter.id, tenant)
    assert status == "completed" and out["answer"] == flow.ANSWER
    assert len(_replays_of(out["tasks"]["t1"])) == 1
    assert done.status == "replayed"
    assert (done.resolution["replay_by"], done.resolution["took_over_from"]["replay_by"]) == (
        "bob",
        "ana",
    )


def test_a_replay_that_ended_is_never_taken_over(durable_url, tenant):
    # The replay gives the thread's lock back only after it recorded its outcome: a
    # second replay right after it finds the letter replayed, not a stopped replay.
    flow = _load_script_module("dlq_flow")
    thread = f"{tenant}-ended"
    letter = _dead_lettered(flow, durable_url, thread, tenant)
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(flow.build(phase="fixed"))
        ana = RunContext(tenant_id=tenant, user_id="ana")
        out = replay(app, letter, services=rt.services, context=ana)
        with pytest.raises(DeadLetterStateError, match="already replayed"):
            replay(app, letter, services=rt.services, context=RunContext(tenant_id=tenant))
        done = rt.services.dead_letters.get(letter.id, tenant)
        assert finish(app, letter, services=rt.services) == "completed"
    assert out["answer"] == flow.ANSWER
    assert done.status == "replayed" and done.resolution["replay_by"] == "ana"
    assert "took_over_from" not in done.resolution


def test_a_streamed_replay_whose_reader_stopped_early_is_never_taken_over(durable_url, tenant):
    # ana reads one event of her streamed replay and stops. Her replay records its
    # outcome (as the thread stands) before it gives the thread's lock back, so bob's
    # replay right after is refused; taking it over, bob's replay would run while
    # ana's `finish` closed the letter under it, and fail to record its own outcome.
    flow = _load_script_module("dlq_flow")
    thread = f"{tenant}-stopped-reading"
    letter = _dead_lettered(flow, durable_url, thread, tenant)
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(flow.build(phase="fixed"))
        ana = RunContext(tenant_id=tenant, user_id="ana")
        events = replay(app, letter, services=rt.services, context=ana, stream_mode="updates")
        next(events)
        events.close()
        with pytest.raises(DeadLetterStateError, match="already replayed"):
            replay(app, letter, services=rt.services, context=RunContext(tenant_id=tenant))
        status = finish(app, letter, services=rt.services)
        done = rt.services.dead_letters.get(letter.id, tenant)
    assert done.status == "replayed" and done.resolution["replay_by"] == "ana"
    assert "took_over_from" not in done.resolution
    assert status == done.resolution["result"]["status"]


class _BreaksMidStream:
    """`app`, whose streamed runs raise after their first event (the database went away)."""

    def __init__(self, app) -> None:
        self.app = app

    def __getattr__(self, name: str):
        return getattr(self.app, name)

    def stream(self, *args, **kwargs):
        for event in self.app.stream(*args, **kwargs):
            yield event
            raise ConnectionError("the database went away")


def test_a_streamed_replay_that_raises_mid_stream_is_never_taken_over(durable_url, tenant):
    # The run raises after its first event (the worker's task has completed by then).
    # The letter is finished as the thread stands before the lock is given back: left
    # `replaying`, the next replay would take it over and run the thread on.
    flow = _load_script_module("dlq_flow")
    thread = f"{tenant}-raises"
    letter = _dead_lettered(flow, durable_url, thread, tenant)
    with podium.open_runtime(durable_url) as rt:
        app = _BreaksMidStream(rt.compile(flow.build(phase="fixed")))
        ana = RunContext(tenant_id=tenant, user_id="ana")
        events = replay(app, letter, services=rt.services, context=ana, stream_mode="updates")
        with pytest.raises(ConnectionError):
            list(events)
        with pytest.raises(DeadLetterStateError, match="already replayed"):
            replay(app, letter, services=rt.services, context=RunContext(tenant_id=tenant))
        status = finish(app, letter, services=rt.services)
        done = rt.services.dead_letters.get(letter.id, tenant)
    assert done.status == "replayed" and done.resolution["replay_by"] == "ana"
    assert "took_over_from" not in done.resolution
    assert status == done.resolution["result"]["status"] == "completed"


@pytest.mark.parametrize("stream_mode", [None, "updates"])
def test_a_replay_whose_run_raises_is_finished_as_the_thread_stands(
    durable_url, tmp_path, tenant, stream_mode
):
    # The replay's run hits LangGraph's recursion limit after it put t1 and t2 back and
    # ran them, before the answer is aggregated. The letter is finished as the thread
    # stands: sent back to `pending`, its next replay could not put t1 back (it is no
    # longer dead-lettered). Replaying it again is refused and names the way on, and
    # the thread goes on from where the run stopped, running neither task again.
    flow = _load_script_module("dlq_flow")
    thread = f"{tenant}-recursion"
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(flow.build_chain(phase="fail"))
        out = app.invoke({"goal": "answer"}, _config(thread), context=RunContext(tenant_id=tenant))
        assert [t["status"] for t in out["tasks"].values()] == ["dead_lettered", "cancelled"]
        [letter] = rt.services.dead_letters.list(tenant)
        app = rt.compile(flow.build_chain(phase="fixed"))
        ana = RunContext(tenant_id=tenant, user_id="ana")
        limited = app.with_config(recursion_limit=2)
        with pytest.raises(GraphRecursionError):
            ran = replay(
                limited, letter, services=rt.services, context=ana, stream_mode=stream_mode
            )
            if stream_mode:
                list(ran)
        done = rt.services.dead_letters.get(letter.id, tenant)
        with pytest.raises(DeadLetterStateError, match="already replayed") as refused:
            replay(app, letter, services=rt.services, context=RunContext(tenant_id=tenant))
        assert finish(app, letter, services=rt.services) == "completed"
        assert app.get_state(_config(thread)).next  # the answer is still to be aggregated
    assert done.status == "replayed" and done.resolution["replay_by"] == "ana"
    assert done.resolution["result"]["status"] == "completed"
    assert done.resolution["result"]["stopped"].startswith("GraphRecursionError: ")
    resume = f"podium resume {thread} --tenant {tenant}"
    assert resume in str(refused.value) and "GraphRecursionError" in str(refused.value)

    # The CLI says the same, and its resume finishes the thread.
    env = _dlq_env(flow, "fixed", PODIUM_WORKFLOWS=f"{flow.CHAIN}=dlq_flow:build_chain")
    again = _replay_again(_replay_cli(letter, "bob", durable_url, tenant), env, tmp_path)
    assert again.returncode == 2 and resume in again.stderr, again.stderr
    listed = _replay_again(_dlq_list_cli(durable_url, tenant), env, tmp_path)
    assert f"{letter.id}  replayed (run stopped)" in listed.stdout, listed.stderr
    resumed = _replay_again(
        [sys.executable, "-m", "podium.cli", "resume", thread,
         "--db", durable_url, "--tenant", tenant],
        env,
        tmp_path,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert flow.ANSWER in resumed.stdout
    with podium.open_runtime(durable_url) as rt:
        state = rt.compile(flow.build_chain()).get_state(_config(thread)).values
        settled = rt.services.dead_letters.get(letter.id, tenant)
    assert state["status"] == "completed" and state["answer"]
    assert [t["status"] for t in state["tasks"].values()] == ["completed", "completed"]
    assert len(_replays_of(state["tasks"]["t1"])) == 1
    # The resume that finished the thread settled the letter: it no longer says stopped.
    assert settled.status == "replayed"
    assert settled.resolution["result"] == {"status": "completed", "agent": "worker", "error": None}
    assert settled.resolution["run_stopped"] == done.resolution["result"]
    assert settled.resolution["thread_finished_at"] >= done.resolution["finished_at"]
    listed = _replay_again(_dlq_list_cli(durable_url, tenant), env, tmp_path)
    assert f"{letter.id}  replayed " in listed.stdout and "run stopped" not in listed.stdout
    # With the thread finished, a replay is refused as replayed, with nothing to resume.
    last = _replay_again(_replay_cli(letter, "bob", durable_url, tenant), env, tmp_path)
    assert last.returncode == 2 and "already replayed" in last.stderr
    assert "podium resume" not in last.stderr


class _RaisesAtOnce:
    """`app`, whose runs raise before their first step (the database went away)."""

    def __init__(self, app) -> None:
        self.app = app

    def __getattr__(self, name: str):
        return getattr(self.app, name)

    def invoke(self, *args, **kwargs):
        raise ConnectionError("the database went away")


def test_the_run_that_finishes_a_stopped_replays_thread_settles_its_letter(durable_url, tenant):
    # The replay's run raises before t1 runs: the letter is finished with t1 as it stood
    # (`initializing`) and why the run stopped. Any later run that finishes the thread
    # (here an `invoke` from Python) records t1's final outcome on the letter.
    flow = _load_script_module("dlq_flow")
    thread = f"{tenant}-settled"
    letter = _dead_lettered(flow, durable_url, thread, tenant)
    ana = RunContext(tenant_id=tenant, user_id="ana")
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(flow.build(phase="fixed"))
        with pytest.raises(ConnectionError):
            replay(_RaisesAtOnce(app), letter, services=rt.services, context=ana)
        stopped = rt.services.dead_letters.get(letter.id, tenant)
        assert stopped.status == "replayed"
        assert stopped.resolution["result"] == {
            "status": "initializing",
            "agent": "worker",
            "error": None,
            "stopped": "ConnectionError: the database went away",
            "round": 1,
        }
        assert rt.services.dead_letters.stopped_replays(tenant, thread) == [stopped]
        out = app.invoke(None, _config(thread), context=ana)
        settled = rt.services.dead_letters.get(letter.id, tenant)
        assert rt.services.dead_letters.stopped_replays(tenant, thread) == []
        assert finish(app, letter, services=rt.services) == "completed"
    assert out["status"] == "completed" and out["answer"] == flow.ANSWER
    assert settled.status == "replayed" and settled.resolution["replay_by"] == "ana"
    assert settled.resolution["result"] == {"status": "completed", "agent": "worker", "error": None}
    assert settled.resolution["run_stopped"] == stopped.resolution["result"]


def test_a_stopped_replays_letter_is_settled_when_the_answer_gate_ends_the_run(
    durable_url, scripted, tenant
):
    # The run after the stopped replay completes t1 and waits at the answer gate: the
    # thread has not finished, so the letter still says its run stopped, until the
    # approval ends the run.
    worker = scripted(ValueError("the model broke"), "the answer", name="worker")
    graph = podium.build_workflow(
        [AgentSpec(name="worker", model=worker)],
        name="dlq_gated",
        supervisor=ONE_TASK,
        approve_answer=True,
    )
    thread = f"{tenant}-gated"
    ana = RunContext(tenant_id=tenant, user_id="ana")
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(graph)
        out = app.invoke({"goal": "g"}, _config(thread), context=ana)
        assert out["tasks"]["t1"]["status"] == "dead_lettered"
        [letter] = rt.services.dead_letters.list(tenant)
        with pytest.raises(ConnectionError):
            replay(_RaisesAtOnce(app), letter, services=rt.services, context=ana)
        app.invoke(None, _config(thread), context=ana)
        assert app.get_state(_config(thread)).next == (names.GATE,)
        waiting = rt.services.dead_letters.get(letter.id, tenant)
        app.invoke(Command(resume={"decision": "approve"}), _config(thread), context=ana)
        settled = rt.services.dead_letters.get(letter.id, tenant)
    assert waiting.resolution["result"]["stopped"] == "ConnectionError: the database went away"
    assert settled.resolution["result"] == {"status": "completed", "agent": "worker", "error": None}
    assert settled.resolution["run_stopped"] == waiting.resolution["result"]


def test_a_pending_letter_whose_task_was_put_back_is_refused_with_the_way_on(durable_url, tenant):
    # A letter an older replay sent back to `pending` after it had put its task back
    # (its run raised). The task is no longer dead-lettered, so it cannot be put back:
    # the replay is refused with what to do instead, and the thread is left as it was.
    flow = _load_script_module("dlq_flow")
    thread = f"{tenant}-put-back"
    letter = _dead_lettered(flow, durable_url, thread, tenant)
    context = RunContext(tenant_id=tenant, user_id="ana")
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(flow.build(phase="fixed"))
        rt.services.dead_letters.claim_for_replay(letter.id, tenant, by="ana")
        with holding_thread(app, _config(thread), context) as held:
            tasks = app.get_state(held).values["tasks"]
            changes = requeued_tasks(tasks, "t1", agent=None, reason="replay", at=time.time())
            update = {"tasks": changes, "status": "running", "error": None}
            app.update_state(held, update, as_node=names.SUPERVISOR)
        result = {"error": "the run raised", "error_type": "GraphRecursionError"}
        rt.services.dead_letters.finish_replay(letter.id, tenant, ok=False, result=result)
        before = app.get_state(_config(thread)).values
        with pytest.raises(ReplayError, match="'initializing'") as refused:
            replay(app, letter, services=rt.services, context=context)
        after = app.get_state(_config(thread)).values
        out = app.invoke(None, _config(thread), context=context)
    assert f"podium resume {thread} --tenant {tenant}" in str(refused.value)
    assert f"podium dlq discard {letter.id}" in str(refused.value)
    assert after == before
    assert out["tasks"]["t1"]["status"] == "completed" and out["answer"] == flow.ANSWER


def test_a_replay_still_running_is_not_taken_over(durable_url, tenant):
    flow = _load_script_module("dlq_flow")
    thread = f"{tenant}-running"
    letter = _dead_lettered(flow, durable_url, thread, tenant)
    context = RunContext(tenant_id=tenant, user_id="bob")
    with podium.open_runtime(durable_url) as rt:
        app = rt.compile(flow.build(phase="fixed"))
        rt.services.dead_letters.claim_for_replay(letter.id, tenant, by="ana")
        # ana's replay is running: it holds the thread's writer lock.
        with (
            holding_thread(app, _config(thread), RunContext(tenant_id=tenant)),
            pytest.raises(ThreadBusy),
        ):
            replay(app, letter, services=rt.services, context=context)
        still = rt.services.dead_letters.get(letter.id, tenant)
    assert still.status == "replaying" and still.resolution == {
        "replay_by": "ana",
        "replay_started_at": still.resolution["replay_started_at"],
    }


# -- the same on async runs ----------------------------------------------------------------


class AsyncFakeSleep(FakeSleep):
    async def __call__(self, seconds: float) -> None:  # type: ignore[override]
        self.waits.append(seconds)


async def test_flaky_tool_is_retried_in_async_runs(scripted, tenant, tmp_path):
    flaky = Failing(ConnectionError("reset"), HTTPError(503))
    graph = podium.build_workflow(
        [
            AgentSpec(
                name="worker",
                tools=[flaky.tool()],
                model=scripted(tool_call("fetch", {"item": "x"}), "got x", name="worker"),
            )
        ],
        name="aflaky",
        supervisor=ONE_TASK,
        policies=_tool_policy(tmp_path, ["worker"], retry=RETRY),
    )
    sleep = AsyncFakeSleep()
    async with podium.open_async_runtime("memory://", asleep=sleep) as rt:
        out = await rt.compile(graph).ainvoke(
            {"goal": "g"}, _config(f"{tenant}-aflaky"), context=RunContext(tenant_id=tenant)
        )
    assert flaky.calls == 3 and sleep.waits == [1.0, 2.0]
    assert out["status"] == "completed" and out["answer"] == "got x"


async def test_breaker_opens_and_closes_in_async_runs(scripted, tenant, tmp_path):
    down = Failing(*(TimeoutError(f"slow {i}") for i in range(5)))
    worker = scripted(
        *(tool_call("fetch", {"item": "x"}) for _ in range(7)),  # 5 failures, 1 fast, 1 probe
        "probe worked",
        name="worker",
    )
    graph = podium.build_workflow(
        [AgentSpec(name="worker", tools=[down.tool()], model=worker)],
        name="abreaker",
        supervisor=ONE_TASK,
        policies=_tool_policy(tmp_path, ["worker"], retry="{attempts: 1}"),
    )
    clock = FakeClock()
    async with podium.open_async_runtime("memory://", clock=clock, asleep=AsyncFakeSleep()) as rt:
        app = rt.compile(graph)

        async def run(i: int) -> dict:
            return await app.ainvoke(
                {"goal": "g"}, _config(f"{tenant}-ab-{i}"), context=RunContext(tenant_id=tenant)
            )

        for i in range(5):
            out = await run(i)
            assert out["tasks"]["t1"]["error"] == f"TimeoutError: slow {i}"
            clock.advance(1)
        out = await run(5)
        assert down.calls == 5
        assert out["tasks"]["t1"]["failures"][0]["error_type"] == "CircuitOpen"
        clock.advance(31)
        out = await run(6)
        state = rt.services.breakers.state("tool:fetch", tenant)
    assert down.calls == 6
    assert out["status"] == "completed" and out["answer"] == "probe worked"
    assert state.state == "closed"


async def test_a_hung_tool_times_out_in_async_runs(scripted, tenant, tmp_path):
    never, cancelled = asyncio.Event(), []

    @tool
    async def hang(item: str) -> str:
        """Wait for a service that never answers."""
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(item)
            raise
        return "too late"

    graph = podium.build_workflow(
        [
            AgentSpec(
                name="worker",
                tools=[hang],
                model=scripted(tool_call("hang", {"item": "x"}), name="worker"),
            )
        ],
        name="ahung",
        supervisor=ONE_TASK,
        policies=_tool_policy(
            tmp_path, ["worker"], name="hang", timeout="0.2", retry="{attempts: 1}"
        ),
    )
    async with podium.open_async_runtime("memory://", asleep=AsyncFakeSleep()) as rt:
        began = time.monotonic()
        out = await rt.compile(graph).ainvoke(
            {"goal": "g"}, _config(f"{tenant}-ahung"), context=RunContext(tenant_id=tenant)
        )
        elapsed = time.monotonic() - began
    assert elapsed < 5
    assert cancelled == ["x"]  # the hung call was cancelled, not left running
    assert out["tasks"]["t1"]["status"] == "dead_lettered"
    assert "tool 'hang' timed out after 0.2s" in out["tasks"]["t1"]["error"]
