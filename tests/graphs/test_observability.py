"""Observability of real runs: the audit chain, the cost ledger and lifecycle hooks.

The runs are the research_brief demo (two researcher tasks in parallel, an analyst, a
writer whose `publish_report` waits for an editor), under the shipped policy with a
price for the demo model so that costs are not all zero.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from pathlib import Path

import pytest

import podium
from podium import AgentSpec, Plan, PlannedTask
from podium.cli import main as podium_main
from podium.graphs.research_brief import build_research_brief, default_policy_path
from tests.helpers import run_demo

PRICES = "prices: {demo: [1.5, 6.0]}"  # USD per 1M input / output tokens
REQUIRED_KINDS = {
    "plan",
    "dispatch",
    "transition",
    "model_call",
    "tool_call",
    "tool_result",
    "approval",
}
TOOLS = {"search_corpus", "calculate", "publish_report"}


def _priced_policy(tmp_path: Path) -> Path:
    text = default_policy_path().read_text(encoding="utf-8")
    assert "prices: {}" in text
    path = tmp_path / "policy.yaml"
    path.write_text(text.replace("prices: {}", PRICES), encoding="utf-8")
    return path


@pytest.fixture
def brief(tmp_path):
    return build_research_brief(policies=_priced_policy(tmp_path))


def _transitions(tasks: dict) -> Counter:
    """(task, from, to) of every history entry of the final task table."""
    return Counter(
        (task_id, entry["from"], entry["to"])
        for task_id, task in tasks.items()
        for entry in task["history"]
    )


class Calls:
    """A hook that records the keyword fields of every call (threads call it at once)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self._lock = threading.Lock()

    def __call__(self, **fields) -> None:
        with self._lock:
            self.calls.append(fields)


# -- audit -------------------------------------------------------------------------------


def test_audit_chain_verifies_after_a_parallel_run(durable_url, tenant, brief):
    with podium.open_runtime(durable_url) as rt:
        out = run_demo(rt.compile(brief), "audit-1", tenant=tenant)
        assert out["status"] == "completed"
        report = rt.services.audit.verify(tenant)
        events = rt.services.audit.events(tenant, thread_id="audit-1")
    assert report.ok, report
    assert report[tenant].ok
    kinds = Counter(e.kind for e in events)
    assert set(kinds) >= REQUIRED_KINDS, kinds

    # The two research tasks went out in one dispatch: they ran in parallel.
    first = next(e for e in events if e.kind == "dispatch")
    researchers = sorted(t for t, v in out["tasks"].items() if v["agent"] == "researcher")
    assert len(researchers) == 2 and sorted(first.payload["tasks"]) == researchers

    # Every transition in the final task table is in the log, once, and nothing else is.
    logged = Counter(
        (e.task_id, e.payload["from"], e.payload["to"]) for e in events if e.kind == "transition"
    )
    assert logged == _transitions(out["tasks"])

    # One model_call per model call counted in the run's usage, and every tool call
    # has its result.
    assert kinds["model_call"] == sum(u["calls"] for u in out["usage"].values())
    calls = Counter(e.payload["tool"] for e in events if e.kind == "tool_call")
    results = Counter(e.payload["tool"] for e in events if e.kind == "tool_result")
    assert set(calls) == TOOLS and calls == results

    # The editor's approval of publish_report names the decision and who made it.
    [approval] = [e for e in events if e.kind == "approval"]
    assert approval.payload["tool"] == "publish_report"
    assert approval.payload["decision"] == "approve"
    assert approval.task_id == "t4"
    assert "ed" in (approval.payload.get("user"), approval.actor.name), approval


# -- costs -------------------------------------------------------------------------------


def _cli_rows(capsys, url: str, tenant: str, by: str) -> dict[str, list[str]]:
    assert podium_main(["costs", "--db", url, "--tenant", tenant, "--by", by]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == [by, "calls", "input", "output", "cached", "tokens", "cost_usd"]
    return {cells[0]: cells[1:] for cells in (line.split() for line in lines[2:])}


def test_costs_table_matches_the_ledger_and_the_run_usage(durable_url, tenant, brief, capsys):
    with podium.open_runtime(durable_url) as rt:
        out = run_demo(rt.compile(brief), "costs-1", tenant=tenant)
        ledger = {row.key: row for row in rt.services.ledger.totals(tenant, by="agent")}
        [thread_row] = rt.services.ledger.totals(tenant, by="thread")
    usage = out["usage"]
    assert set(ledger) == set(usage) == {"supervisor", "researcher", "analyst", "writer"}
    for agent, row in ledger.items():
        assert row.calls == usage[agent]["calls"], agent
        assert row.input_tokens == usage[agent]["input_tokens"], agent
        assert row.output_tokens == usage[agent]["output_tokens"], agent
        assert row.cost_usd == pytest.approx(usage[agent]["cost_usd"], abs=1e-9), agent
    total_cost = sum(u["cost_usd"] for u in usage.values())
    assert total_cost > 0
    assert thread_row.key == "costs-1"
    assert thread_row.cost_usd == pytest.approx(total_cost, abs=1e-9)

    rows = _cli_rows(capsys, durable_url, tenant, "agent")
    assert set(rows) == {*ledger, "total"}
    for agent, row in ledger.items():
        assert rows[agent] == [
            str(row.calls),
            str(row.input_tokens),
            str(row.output_tokens),
            str(row.cached_tokens),
            str(row.total_tokens),
            f"{row.cost_usd:.4f}",
        ]
    calls, tokens_in, tokens_out, _cached, tokens, cost = rows["total"]
    assert int(calls) == sum(u["calls"] for u in usage.values())
    assert int(tokens_in) == sum(u["input_tokens"] for u in usage.values())
    assert int(tokens_out) == sum(u["output_tokens"] for u in usage.values())
    assert int(tokens) == sum(u["total_tokens"] for u in usage.values())
    assert cost == f"{total_cost:.4f}"


# -- lifecycle hooks ---------------------------------------------------------------------


def test_transition_hooks_see_every_transition_and_a_failing_hook_breaks_nothing(
    tenant, brief, caplog
):
    def broken(**fields) -> None:
        raise RuntimeError("hook bug")

    seen = Calls()
    with podium.open_runtime("memory://") as rt:
        rt.services.recorder.on("transition", broken)
        rt.services.recorder.on("transition", seen)
        with caplog.at_level(logging.ERROR, logger="podium.hooks"):
            out = run_demo(rt.compile(brief), "hooks-1", tenant=tenant)
        logged = [
            e
            for e in rt.services.audit.events(tenant, thread_id="hooks-1")
            if e.kind == "transition"
        ]
    assert out["status"] == "completed"
    assert Counter((c["task_id"], c["from"], c["to"]) for c in seen.calls) == _transitions(
        out["tasks"]
    )
    assert len(seen.calls) == len(logged)
    for call in seen.calls:
        assert call["event"] == "transition"
        assert call["tenant_id"] == tenant and call["thread_id"] == "hooks-1"
        assert call["workflow"] == "research_brief"
        assert call["agent"] == out["tasks"][call["task_id"]]["agent"]
    failures = [r for r in caplog.records if r.name == "podium.hooks"]
    assert len(failures) == len(seen.calls)
    assert all(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in failures)


def test_gate_hook_fires_when_the_editor_decides(tenant, brief):
    gates = Calls()
    with podium.open_runtime("memory://") as rt:
        rt.services.recorder.on("gate", gates)
        out = run_demo(rt.compile(brief), "gate-1", tenant=tenant)
    assert out["status"] == "completed"
    [call] = gates.calls
    assert call["event"] == "gate"
    assert call["kind"] == "tool" and call["tool"] == "publish_report"
    assert call["decision"] == "approve"
    assert call.get("user") == "ed"  # who decided; run_demo decides as user "ed"
    assert call["tenant_id"] == tenant and call["thread_id"] == "gate-1"
    assert call["task_id"] == "t4"
    assert call["gate_id"].startswith("g-")


def test_dead_letter_hook_fires_with_the_letter(tenant, scripted):
    letters = Calls()
    agents = [
        AgentSpec(name="steady", model=scripted("fine", name="steady")),
        AgentSpec(name="broken", model=scripted(ValueError("model refused"), name="broken")),
    ]
    plan = Plan(
        tasks=[
            PlannedTask(id="a", agent="steady", instruction="work"),
            PlannedTask(id="b", agent="broken", instruction="fail"),
        ]
    )
    graph = podium.build_workflow(agents, name="letters", supervisor=plan)
    with podium.open_runtime("memory://") as rt:
        rt.services.recorder.on("dead_letter", letters)
        app = rt.compile(graph)
        out = app.invoke(
            {"goal": "g"},
            {"configurable": {"thread_id": "dl-1"}},
            context=podium.RunContext(tenant_id=tenant),
        )
        [call] = letters.calls
        stored = rt.services.dead_letters.get(call["dead_letter"], tenant)
    assert out["status"] == "partial"
    assert out["tasks"]["b"]["status"] == "dead_lettered"
    assert out["tasks"]["b"]["dead_letter"] == call["dead_letter"]
    assert call["event"] == "dead_letter"
    assert call["task_id"] == "b" and call["agent"] == "broken"
    assert call["tenant_id"] == tenant and call["thread_id"] == "dl-1"
    assert "model refused" in call["error"]
    assert stored.task_id == "b"
