"""Budgets from the event loop on PostgreSQL: the async runtime's hold, settle and release.

An async runtime on PostgreSQL hands podium's database an async pool; budget holds and
settlements then run on the loop (`Budgets.areserve`, `asettle`, `arelease`) with the
same rules as the sync methods, checked here against the same ledger.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from langchain_core.messages import AIMessage

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext
from podium.stores.budgets.store import BudgetExceeded, Claim
from podium.testing import ScriptedChatModel
from tests.helpers import BUDGET, BUDGET_POLICY, USED, budget_race, ledger_total


async def test_hold_settle_and_release_from_the_loop(budgets, tenant):
    day = Claim("tenant_day:d", "tokens", 1_000, 600)
    held = await budgets.areserve(tenant, [day], ref="call-1")
    assert budgets.reserved(tenant, day.scope_key, "tokens") == 600
    with pytest.raises(BudgetExceeded) as refused:
        await budgets.areserve(tenant, [day], ref="call-2")
    assert refused.value.reserved == 600  # what the running call holds
    await budgets.asettle(held, {"tokens": 550})
    await budgets.asettle(held, {"tokens": 550})  # twice: recorded once
    assert budgets.spent(tenant, day.scope_key, "tokens") == 550
    assert budgets.reserved(tenant, day.scope_key, "tokens") == 0
    unused = await budgets.areserve(tenant, [Claim("tenant_day:d", "tokens", 1_000, 400)], ref="x")
    await budgets.arelease(unused)
    assert budgets.remaining(tenant, day.scope_key, "tokens", 1_000) == 450


async def test_a_settlement_after_the_hold_was_purged_still_counts(budgets, tenant):
    held = await budgets.areserve(tenant, [Claim("run:r", "usd", 1.0, 0.5)], ref="slow")
    assert budgets.purge_stale(tenant) == 0
    budgets._db.execute(  # as if the hold had expired and been purged
        "DELETE FROM podium_budget_ledger WHERE reservation_id = ?", (held.reservation_id,)
    )
    await budgets.asettle(held, {"usd": 0.7})
    assert budgets.spent(tenant, "run:r", "usd") == pytest.approx(0.7)


async def test_concurrent_holds_on_the_loop_never_overspend(budgets, tenant):
    async def spend_until_refused() -> int:
        done = 0
        while True:
            try:
                held = await budgets.areserve(
                    tenant, [Claim("tenant_day:d", "tokens", 100, 7)], ref="c"
                )
            except BudgetExceeded:
                return done
            await asyncio.sleep(0)
            await budgets.asettle(held, {"tokens": 7})
            done += 1

    counts = await asyncio.gather(*(spend_until_refused() for _ in range(8)))
    assert sum(counts) == 100 // 7
    assert ledger_total(budgets._db, tenant, "tenant_day:d") == 7 * (100 // 7)


async def test_parallel_async_workers_on_postgres_never_overspend_the_run_budget(
    postgres_url, tmp_path, tenant
):
    # test_governance's race of four workers on a budget that fits only some, run async.
    graph, _ = budget_race(tmp_path)
    thread = f"{tenant}-race"
    async with podium.open_async_runtime(postgres_url) as rt:
        assert rt.services.budgets.runs_on_loop
        out = await rt.compile(graph).ainvoke(
            {"goal": "g"},
            {"configurable": {"thread_id": thread}},
            context=RunContext(tenant_id=tenant),
        )
        spent = rt.services.budgets.spent(tenant, f"run:{thread}:1", "tokens")
        held = rt.services.budgets.reserved(tenant, f"run:{thread}:1", "tokens")
    statuses = [t["status"] for t in out["tasks"].values()]
    completed = statuses.count("completed")
    assert completed and "failed" in statuses and out["status"] == "partial"
    for task in out["tasks"].values():
        if task["status"] == "failed":
            assert "BudgetExceeded" in task["error"] and f"run:{thread}:1" in task["error"]
    assert spent == USED * completed <= BUDGET
    assert held == 0, "a reservation was left behind"


async def test_a_run_cancelled_mid_call_gives_its_hold_back(postgres_url, tmp_path, tenant):
    # Slower than the wait below can be on a loaded machine: the call is cancelled first.
    slow = ScriptedChatModel(responses=[AIMessage("never")], name="slow", latency=60.0)
    policy = tmp_path / "policy.yaml"
    policy.write_text(BUDGET_POLICY)
    graph = podium.build_workflow(
        [AgentSpec(name="slow", model=slow)],
        name="cancelled",
        supervisor=Plan(tasks=[PlannedTask(id="t1", agent="slow", instruction="work")]),
        policies=policy,
    )
    thread = f"{tenant}-cancelled"
    async with podium.open_async_runtime(postgres_url) as rt:
        budgets = rt.services.budgets
        run = asyncio.ensure_future(
            rt.compile(graph).ainvoke(
                {"goal": "g"},
                {"configurable": {"thread_id": thread}},
                context=RunContext(tenant_id=tenant),
            )
        )
        scope = f"run:{thread}:1"
        deadline = time.monotonic() + 30  # until the model call holds its budget
        while budgets.reserved(tenant, scope, "tokens") == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert budgets.reserved(tenant, scope, "tokens") > 0
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        # Cancelled while its hold's batch was at the database, the hold is taken back
        # when that batch answers (`GroupCommit` undoes it): soon, not after the TTL.
        deadline = time.monotonic() + 5
        while budgets.reserved(tenant, scope, "tokens") and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert budgets.reserved(tenant, scope, "tokens") == 0
        assert budgets.loop_batches().commit_delay() == 0.0  # no open hold left behind
