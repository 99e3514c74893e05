"""Circuit-breaker settings from the policy: thresholds, and breakers per tenant."""

from __future__ import annotations

from langchain_core.tools import tool

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext
from podium.policies import load_policies
from podium.testing import ScriptedChatModel, tool_call

POLICY = """
agents:
  worker: {tools: {allow: [fetch]}}
tools:
  fetch:
    retry: {attempts: 1}
    breaker: {failures: 2, window: 60, cooldown: 30, per_tenant: %s}
"""


def _run(rt, policy, tenant: str, thread: str, calls: list[str], fail: bool) -> dict:
    @tool
    def fetch(item: str) -> str:
        """Fetch an item."""
        calls.append(tenant)
        if fail:
            raise ConnectionError("upstream down")
        return "ok"

    model = ScriptedChatModel(responses=[tool_call("fetch", {"item": "x"}), "done"])
    graph = podium.build_workflow(
        [AgentSpec(name="worker", tools=[fetch], model=model)],
        name="breaker_flow",
        supervisor=Plan(tasks=[PlannedTask(id="t1", agent="worker", instruction="x")]),
        policies=policy,
    )
    out = rt.compile(graph).invoke(
        {"goal": "g"}, {"configurable": {"thread_id": thread}}, context=RunContext(tenant_id=tenant)
    )
    return out


def test_per_tenant_breaker_opens_for_one_tenant_only(tmp_path, tenant):
    path = tmp_path / "p.yaml"
    path.write_text(POLICY % "true")
    policy = load_policies(path)
    a, b, calls = f"{tenant}-a", f"{tenant}-b", []
    with podium.open_runtime("memory://") as rt:
        for i in range(2):  # two transient failures open a's breaker (failures: 2)
            out = _run(rt, policy, a, f"a{i}", calls, fail=True)
            assert out["tasks"]["t1"]["status"] == "dead_lettered"
        out = _run(rt, policy, a, "a-fast", calls, fail=False)
        assert "CircuitOpen" in out["tasks"]["t1"]["error"]
        assert calls == [a, a]  # the third call failed fast: fetch did not run
        out = _run(rt, policy, b, "b-ok", calls, fail=False)
        assert out["status"] == "completed" and calls == [a, a, b]
        keys = {info.key for info in rt.services.breakers.list(a)}
        assert f"tenant:{a}:tool:fetch" in keys


def test_shared_breaker_opens_for_every_tenant(tmp_path, tenant):
    path = tmp_path / "p.yaml"
    path.write_text(POLICY % "false")
    policy = load_policies(path)
    a, b, calls = f"{tenant}-a", f"{tenant}-b", []
    with podium.open_runtime("memory://") as rt:
        for i in range(2):
            _run(rt, policy, a, f"a{i}", calls, fail=True)
        out = _run(rt, policy, b, "b-fast", calls, fail=False)
        assert "CircuitOpen" in out["tasks"]["t1"]["error"] and calls == [a, a]


def test_model_call_timeout_from_the_policy(tmp_path):
    import threading
    import time

    release = threading.Event()

    def hang(messages):
        release.wait(10)
        return "too late"

    path = tmp_path / "p.yaml"
    path.write_text(
        "models:\n  slowpoke: {timeout: 0.2}\nagents:\n  worker: {tools: {allow: []}}\n"
        "global:\n  retry: {attempts: 1}\n"
    )
    model = ScriptedChatModel(responses=[hang], model_name="slowpoke")
    graph = podium.build_workflow(
        [AgentSpec(name="worker", model=model)],
        name="slow",
        supervisor=Plan(tasks=[PlannedTask(id="t1", agent="worker", instruction="x")]),
        policies=load_policies(path),
    )
    started = time.monotonic()
    try:
        with podium.open_runtime("memory://") as rt:
            out = rt.compile(graph).invoke({"goal": "g"}, {"configurable": {"thread_id": "s"}})
    finally:
        release.set()
    assert time.monotonic() - started < 5
    assert "timed out after 0.2s" in out["tasks"]["t1"]["error"]
