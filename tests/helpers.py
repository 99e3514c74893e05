"""Helpers shared by test modules (not fixtures)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage

import podium
from podium.gates.decision import adecide, apending_gates, decide, pending_gates
from podium.graphs.research_brief import DEMO_GOAL
from podium.policies import PolicySet
from podium.storage.database import Database
from podium.testing import ScriptedChatModel

EDITOR = frozenset({"editor"})


def allowing(**tools: list[str]) -> PolicySet:
    """A policy allowing each agent (a keyword) the tools listed, and nothing else: without
    a policy every tool is denied."""
    return PolicySet.model_validate(
        {"agents": {agent: {"tools": {"allow": names}} for agent, names in tools.items()}}
    )


# A run budget that four parallel workers cannot all fit in (test_governance and
# test_budgets_async race them on it).
BUDGET = 2500
USED = 600  # per call; 3 * USED + the smallest reservation (1024 + prompt) > BUDGET
BUDGET_POLICY = f"""
global:
  budgets:
    per_run: {{tokens: {BUDGET}}}
"""


def budget_race(policy_dir: Path) -> tuple[Any, dict[str, ScriptedChatModel]]:
    """Four workers in parallel, each spending USED, on a run budget that fits only some:
    the workflow and the workers' models (each answers once)."""
    names = [f"w{i}" for i in range(1, 5)]
    usage = {"input_tokens": 400, "output_tokens": 200, "total_tokens": USED}
    models = {
        name: ScriptedChatModel(
            responses=[AIMessage(f"{name} done", usage_metadata=usage)], name=name, latency=0.05
        )
        for name in names
    }
    policy = policy_dir / "budget-race.yaml"
    policy.write_text(BUDGET_POLICY)
    graph = podium.build_workflow(
        [podium.AgentSpec(name=n, model=models[n]) for n in names],
        name="race",
        supervisor=podium.Plan(
            tasks=[podium.PlannedTask(id=f"t-{n}", agent=n, instruction="work") for n in names]
        ),
        policies=policy,
    )
    return graph, models


def run_demo(
    app: Any,
    thread: str,
    *,
    tenant: str = "default",
    goal: str = DEMO_GOAL,
    inputs: dict | None = None,
) -> dict:
    """Run research_brief to the end, approving its publish gate as an editor."""
    config = {"configurable": {"thread_id": thread}}
    out = app.invoke(inputs or {"goal": goal}, config, context=podium.RunContext(tenant_id=tenant))
    while pending_gates(app, thread):
        out = decide(
            app,
            thread,
            "approve",
            context=podium.RunContext(tenant_id=tenant, user_id="ed", roles=EDITOR),
        )
    return out


async def arun_demo(app: Any, thread: str, *, tenant: str = "default") -> dict:
    """`run_demo` for async runs."""
    config = {"configurable": {"thread_id": thread}}
    out = await app.ainvoke(
        {"goal": DEMO_GOAL}, config, context=podium.RunContext(tenant_id=tenant)
    )
    while await apending_gates(app, thread):
        out = await adecide(
            app,
            thread,
            "approve",
            context=podium.RunContext(tenant_id=tenant, user_id="ed", roles=EDITOR),
        )
    return out


class Clock:
    """A clock tests move by hand (`clock.now += 61`); `sleep` advances it instead of waiting."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def race(script: str, *args: str, processes: int = 2, timeout: float = 60) -> list[int]:
    """Start `processes` copies of a Python `script`, release them together and return the
    integer each printed. A script prints "ready", waits for a line on stdin, works, and
    prints its count."""
    import subprocess
    import sys

    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    for worker in workers:  # all are ready: release them at once
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    counts = []
    for worker in workers:
        out, _ = worker.communicate(timeout=timeout)
        assert worker.returncode == 0
        counts.append(int(out.strip()))
    return counts


def ledger_total(db: Database, tenant: str, scope: str, unit: str = "tokens") -> float:
    """The spend as the ledger table holds it, read without the store's own sums."""
    rows = db.query(
        "SELECT amount FROM podium_budget_ledger WHERE tenant_id = ? AND scope_key = ? "
        "AND unit = ? AND state = 'spent'",
        (tenant, scope, unit),
    )
    return sum(row["amount"] for row in rows)


#: `fetch_feed` opens a breaker of the calling tenant's own, `fetch_index` one shared by
#: every tenant (tenant `*`), each at its first failure; no retries, no fallback.
FAILING_TOOLS_POLICY = """
agents:
  fetcher: {tools: {allow: [fetch_feed, fetch_index]}}
tools:
  fetch_feed:
    retry: {attempts: 1}
    breaker: {failures: 1, window: 60, cooldown: 600, per_tenant: true}
  fetch_index:
    retry: {attempts: 1}
    breaker: {failures: 1, window: 60, cooldown: 600, per_tenant: false}
"""


def fail_a_task(url: str, tenant: str, tools: list[str], policy_dir: Path) -> None:
    """Run one task for `tenant` whose model calls `tools` (`fetch_feed`, `fetch_index`) at
    once, each failing with a transient error: the task becomes one dead letter of the
    tenant's, and each tool's breaker opens (FAILING_TOOLS_POLICY)."""
    from langchain_core.tools import tool

    from podium.policies import load_policies
    from podium.testing import tool_calls

    # The calls run at once, and the first failure ends the task: a call not started by
    # then is never made. Each waits for the others to start, so every tool fails once.
    started = threading.Barrier(len(tools), timeout=10)

    @tool
    def fetch_feed(name: str) -> str:
        """Fetch a news feed."""
        started.wait()
        raise ConnectionError("feed host down")

    @tool
    def fetch_index(name: str) -> str:
        """Fetch a search index."""
        started.wait()
        raise ConnectionError("index host down")

    path = policy_dir / "failing-tools.yaml"
    path.write_text(FAILING_TOOLS_POLICY, encoding="utf-8")
    model = ScriptedChatModel(
        responses=[tool_calls(*((name, {"name": "energy"}) for name in tools))], name="fetcher"
    )
    graph = podium.build_workflow(
        [podium.AgentSpec(name="fetcher", tools=[fetch_feed, fetch_index], model=model)],
        name="fetching",
        supervisor=podium.Plan(
            tasks=[podium.PlannedTask(id="t1", agent="fetcher", instruction="fetch")]
        ),
        policies=load_policies(path),
    )
    with podium.open_runtime(url) as rt:
        out = rt.compile(graph).invoke(
            {"goal": "fetch"},
            {"configurable": {"thread_id": f"{tenant}-fetch"}},
            context=podium.RunContext(tenant_id=tenant),
        )
        # The other calls fail on their own threads while the task ends: wait for each
        # tool's failure to be recorded.
        deadline = time.monotonic() + 10
        while len(
            rt.db.query("SELECT 1 FROM podium_breakers WHERE last_error_tenant = ?", (tenant,))
        ) < len(tools):
            assert time.monotonic() < deadline, "a tool's failure was not recorded"
            time.sleep(0.01)
    model.assert_consumed()
    assert out["tasks"]["t1"]["status"] == "dead_lettered", out["tasks"]["t1"]
