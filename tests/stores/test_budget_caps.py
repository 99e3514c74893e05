"""Budgets are hard caps: parallel workers never spend past a run's budget, whatever their
models would write, and calls wait for holds instead of being refused while room remains."""

from __future__ import annotations

import uuid

import pytest
from langchain_core.messages import AIMessage

import podium
from podium.runtime import open_runtime
from podium.testing import ScriptedChatModel

BUDGET = 10_000
WORKERS = 8


def _race(tmp_path, output_tokens: int, max_tokens: int | None = None):
    usage = {
        "input_tokens": 100,
        "output_tokens": output_tokens,
        "total_tokens": 100 + output_tokens,
    }
    names = [f"w{i}" for i in range(WORKERS)]
    models = {
        n: ScriptedChatModel(
            responses=[AIMessage("x" * 4 * output_tokens, usage_metadata=usage)],
            name=n,
            latency=0.05,
            max_tokens=max_tokens,
        )
        for n in names
    }
    policy = tmp_path / "budget.yaml"
    policy.write_text(f"global:\n  budgets:\n    per_run: {{tokens: {BUDGET}}}\n")
    flow = podium.build_workflow(
        [podium.AgentSpec(name=n, model=models[n]) for n in names],
        name="caps",
        supervisor=podium.Plan(
            tasks=[podium.PlannedTask(id=f"t-{n}", agent=n, instruction="work") for n in names]
        ),
        policies=policy,
    )
    return flow, models


def _spent(rt, thread: str) -> float:
    rows = rt.db.query(
        "SELECT SUM(amount) AS total FROM podium_budget_spent "
        "WHERE scope_key = ? AND unit = 'tokens'",
        (f"run:{thread}:1",),
    )
    return float(rows[0]["total"] or 0)


def _run(url: str, flow) -> tuple[dict, float]:
    with open_runtime(url) as rt:
        thread = f"caps-{uuid.uuid4().hex[:6]}"
        out = rt.compile(flow).invoke({"goal": "go"}, {"configurable": {"thread_id": thread}})
        return out, _spent(rt, thread)


def test_parallel_calls_never_spend_past_the_run_budget(durable_url, tmp_path):
    # Each model would write 4,000 tokens: 8 x 4,100 = 32,800 against a 10,000 budget.
    flow, models = _race(tmp_path, 4_000)
    out, spent = _run(durable_url, flow)
    recorded = sum(u["total_tokens"] for u in out["usage"].values())
    assert 0 < spent == recorded <= BUDGET, (spent, recorded)
    # Every call that ran wrote at most what its hold covered (max_tokens = 1,024), and
    # any call without room was refused, saying what was spent and held.
    for agent, used in out["usage"].items():
        assert used["output_tokens"] <= 1024 * used["calls"], (agent, used)
    for task in out["tasks"].values():
        if task["status"] != "completed":
            assert "budget" in task["error"] and "spent" in task["error"]
    assert len(out["usage"]) + sum(
        t["status"] != "completed" for t in out["tasks"].values()
    ) == WORKERS and all(m.calls for m in models.values() if m.name in out["usage"])


def test_small_calls_all_complete_by_waiting_for_holds(durable_url, tmp_path):
    # Models that may write 4,000 tokens: holds of ~4,100, two fit at once; each settles
    # at 600, so every call fits in turn if the others wait for holds to be settled.
    flow, models = _race(tmp_path, 500, max_tokens=4_000)
    out, spent = _run(durable_url, flow)
    assert [t["status"] for t in out["tasks"].values()] == ["completed"] * WORKERS, out["error"]
    assert all(m.remaining == 0 for m in models.values())
    assert spent == WORKERS * 600 <= BUDGET


def test_a_hopeless_call_is_refused_at_once_with_spent_and_held(tmp_path):
    from podium.errors import BudgetExceeded
    from podium.storage.database import open_database
    from podium.storage.urls import parse_url
    from podium.stores.budgets.backends import open_budgets
    from podium.stores.budgets.sql import Claim

    db = open_database(parse_url(f"sqlite:///{tmp_path / 'b.db'}"))
    budgets = open_budgets(db, hold_wait=60)
    first = budgets.reserve("t", [Claim("run:x", "tokens", 1000, 600)], ref="a")
    budgets.settle(first, {"tokens": 600})
    held = budgets.reserve("t", [Claim("run:x", "tokens", 1000, 300)], ref="b")
    # 600 spent + 500 asked > 1,000 whatever the holds do: no wait for the 300 held.
    with pytest.raises(BudgetExceeded) as caught:
        budgets.reserve("t", [Claim("run:x", "tokens", 1000, 500)], ref="c")
    assert caught.value.spent == 600 and caught.value.reserved == 300
    assert "600" in str(caught.value) and "300 held" in str(caught.value)
    budgets.release(held)
    db.close()
