"""Budgets with reservations: nesting, settling, expiry and races on every back end.

Each test takes the store a runtime on that back end uses (`open_budgets`): the tables
on SQLite and PostgreSQL, process memory for `memory://` (`MemoryBudgets`); the tests of
the tables themselves use `Budgets` on every back end.
"""

from __future__ import annotations

import inspect
import textwrap
import threading

import pytest

from podium import errors
from podium.errors import ConfigurationError, RunError
from podium.storage.database import open_database
from podium.storage.urls import parse_url
from podium.stores.budgets import open_budgets
from podium.stores.budgets.memory import MemoryBudgets
from podium.stores.budgets.store import BudgetExceeded, Budgets, Claim
from tests.helpers import Clock, ledger_total, race


def test_reserve_holds_room_until_settled(db, tenant):
    budgets = open_budgets(db)
    day = Claim("tenant_day:2026-11-21", "tokens", 1_000, 600)
    held = budgets.reserve(tenant, [day], ref="call-1")
    assert (held.tenant_id, held.ref, held.claims) == (tenant, "call-1", (day,))
    assert budgets.reserved(tenant, day.scope_key, "tokens") == 600
    assert budgets.remaining(tenant, day.scope_key, "tokens", 1_000) == 400
    with pytest.raises(BudgetExceeded):
        budgets.reserve(tenant, [day], ref="call-2")
    budgets.settle(held, {"tokens": 550})
    assert budgets.spent(tenant, day.scope_key, "tokens") == 550
    assert budgets.reserved(tenant, day.scope_key, "tokens") == 0
    assert budgets.remaining(tenant, day.scope_key, "tokens", 1_000) == 450


@pytest.mark.parametrize(("actual", "remaining"), [(120.0, 880.0), (300.0, 700.0), (0.0, 1000.0)])
def test_settle_records_the_actual_spend_lower_or_higher(db, tenant, actual, remaining):
    budgets = open_budgets(db)
    claims = [Claim("run:t:0", "tokens", 1_000, 200), Claim("run:t:0", "usd", 1.0, 0.05)]
    held = budgets.reserve(tenant, claims, ref="call")
    budgets.settle(held, {"tokens": actual, "usd": 0.07, "calls": 1})
    assert budgets.spent(tenant, "run:t:0", "tokens") == actual
    assert budgets.spent(tenant, "run:t:0", "usd") == pytest.approx(0.07)
    assert budgets.remaining(tenant, "run:t:0", "tokens", 1_000) == remaining
    if not db.in_memory:  # the ledger table agrees
        assert ledger_total(db, tenant, "run:t:0") == actual


def test_each_level_holds_its_own_amount(db, tenant):
    budgets = open_budgets(db)
    claims = [Claim("day", "tokens", 1_000, 300), Claim("run", "tokens", 1_000, 100)]
    held = budgets.reserve(tenant, claims, ref="call")
    assert budgets.reserved(tenant, "day", "tokens") == 300
    assert budgets.reserved(tenant, "run", "tokens") == 100
    budgets.settle(held, {"tokens": 50})
    assert (budgets.spent(tenant, "day", "tokens"), budgets.spent(tenant, "run", "tokens")) == (
        50,
        50,
    )


def test_a_higher_spend_is_recorded_even_past_the_limit(db, tenant):
    budgets = open_budgets(db)
    held = budgets.reserve(tenant, [Claim("run:t:0", "tokens", 100, 90)], ref="call")
    budgets.settle(held, {"tokens": 130})
    assert budgets.spent(tenant, "run:t:0", "tokens") == 130
    assert budgets.remaining(tenant, "run:t:0", "tokens", 100) == 0
    with pytest.raises(BudgetExceeded) as info:
        budgets.reserve(tenant, [Claim("run:t:0", "tokens", 100, 1)], ref="next")
    assert (info.value.spent, info.value.reserved, info.value.requested) == (130, 0, 1)


def test_the_refusal_counts_what_running_calls_hold(db, tenant):
    budgets = open_budgets(db)
    budgets.reserve(tenant, [Claim("run:t:0", "tokens", 100, 60)], ref="running")
    with pytest.raises(BudgetExceeded) as info:
        budgets.reserve(tenant, [Claim("run:t:0", "tokens", 100, 50)], ref="next")
    assert (info.value.spent, info.value.reserved, info.value.requested) == (0, 60, 50)


def test_settling_twice_records_once_and_release_after_settle_keeps_it(db, tenant):
    budgets = open_budgets(db)
    held = budgets.reserve(tenant, [Claim("run:t:0", "tokens", 100, 50)], ref="call")
    budgets.settle(held, {"tokens": 40})
    budgets.settle(held, {"tokens": 40})
    budgets.release(held)
    assert budgets.spent(tenant, "run:t:0", "tokens") == 40


def test_release_drops_an_unused_reservation(db, tenant):
    budgets = open_budgets(db)
    held = budgets.reserve(tenant, [Claim("run:t:0", "tokens", 100, 100)], ref="call")
    budgets.release(held)
    assert budgets.remaining(tenant, "run:t:0", "tokens", 100) == 100
    assert budgets.spent(tenant, "run:t:0", "tokens") == 0
    assert budgets.reserve(tenant, [Claim("run:t:0", "tokens", 100, 100)], ref="again")


def test_a_child_cannot_spend_more_than_its_parent_has_left(db, tenant):
    budgets = open_budgets(db)
    day, run, agent = "tenant_day:2026-11-21", "run:t1:0", "agent:t1:0:researcher"
    earlier = budgets.reserve(tenant, [Claim(day, "tokens", 1_000, 900)], ref="other run")
    budgets.settle(earlier, {"tokens": 900})
    # The run and the agent would have room for 300, but the day has only 100 left.
    levels = [Claim(day, "tokens", 1_000, 300), Claim(run, "tokens", 500, 300)]
    with pytest.raises(BudgetExceeded) as info:
        budgets.reserve(tenant, [*levels, Claim(agent, "tokens", 400, 300)], ref="call")
    error = info.value
    assert (error.scope, error.unit, error.limit, error.spent, error.requested) == (
        day,
        "tokens",
        1_000,
        900,
        300,
    )
    assert isinstance(error, RunError) and isinstance(error, errors.BudgetExceeded)
    assert (error.tenant_id, error.reserved) == (tenant, 0)
    assert day in str(error) and "1000 tokens" in str(error) and "900 already spent" in str(error)
    assert "raise the limit" in str(error)
    # Nothing was held on any level by the refused reservation.
    for scope in (run, agent):
        assert budgets.reserved(tenant, scope, "tokens") == 0
    fits = [Claim(day, "tokens", 1_000, 100), Claim(run, "tokens", 500, 100)]
    assert budgets.reserve(tenant, [*fits, Claim(agent, "tokens", 400, 100)], ref="call")


def test_stale_reservations_are_ignored_and_cleaned(db, tenant):
    clock = Clock()
    budgets = open_budgets(db, clock=clock, reservation_ttl=60.0)
    claim = Claim("run:t:0", "tokens", 100, 80)
    crashed = budgets.reserve(tenant, [claim], ref="crashed worker")
    clock.now += 59.0
    assert budgets.remaining(tenant, "run:t:0", "tokens", 100) == 20
    clock.now += 2.0
    assert budgets.remaining(tenant, "run:t:0", "tokens", 100) == 100
    budgets.reserve(tenant, [claim], ref="next worker")  # cleans the crashed one up
    assert budgets.purge_stale(tenant) == 0
    # A late settle of the expired reservation still records the spend: it happened.
    budgets.settle(crashed, {"tokens": 70})
    assert budgets.spent(tenant, "run:t:0", "tokens") == 70


def test_a_settlement_repeated_long_after_still_records_once(db, tenant):
    clock = Clock()
    budgets = open_budgets(db, clock=clock, reservation_ttl=60.0)
    held = budgets.reserve(tenant, [Claim("run:t:0", "tokens", 100, 50)], ref="call")
    budgets.settle(held, {"tokens": 50})
    clock.now += 3600.0
    budgets.purge_stale(tenant)
    budgets.settle(held, {"tokens": 50})
    assert budgets.spent(tenant, "run:t:0", "tokens") == 50


def test_purge_stale_removes_only_expired_reservations(db, tenant):
    clock = Clock()
    budgets = open_budgets(db, clock=clock, reservation_ttl=60.0)
    budgets.reserve(tenant, [Claim("a", "tokens", 100, 1), Claim("b", "usd", 1, 0.1)], ref="x")
    clock.now += 30.0
    budgets.reserve(tenant, [Claim("a", "tokens", 100, 1)], ref="fresh")
    clock.now += 31.0  # "x" is 61 s old (expired), "fresh" 31 s (live)
    assert budgets.purge_stale(f"{tenant}-other") == 0

    assert budgets.purge_stale(tenant) == 1
    assert budgets.reserved(tenant, "a", "tokens") == 1


def test_tenants_have_separate_budgets(db, tenant):
    budgets = open_budgets(db)
    held = budgets.reserve(tenant, [Claim("run:t:0", "tokens", 100, 100)], ref="call")
    budgets.settle(held, {"tokens": 100})
    other = f"{tenant}-other"
    assert budgets.spent(other, "run:t:0", "tokens") == 0
    assert budgets.reserve(other, [Claim("run:t:0", "tokens", 100, 100)], ref="call")


def test_float_usd_amounts_fill_a_limit_exactly(db, tenant):
    budgets = open_budgets(db)
    for _ in range(3):
        held = budgets.reserve(tenant, [Claim("day", "usd", 0.3, 0.1)], ref="call")
        budgets.settle(held, {"usd": 0.1})
    with pytest.raises(BudgetExceeded, match=r"no room for 0\.1 usd"):
        budgets.reserve(tenant, [Claim("day", "usd", 0.3, 0.1)], ref="call")


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ([Claim("run", "token", 10, 1)], "unknown budget unit 'token'"),
        ([Claim("run", "tokens", 10, -1)], "must be 0 or more"),
        ([Claim("run", "tokens", 10, 1), Claim("run", "tokens", 20, 1)], "claimed twice"),
        ([Claim("run", "tokens", 10, float("nan"))], "must be 0 or more"),
        ([Claim("run", "usd", float("nan"), 1)], "must be 0 or more"),
    ],
)
def test_malformed_claims_are_configuration_errors(claims, message, tenant):
    database = open_database(parse_url("memory://"))
    with pytest.raises(ConfigurationError, match=message):
        open_budgets(database).reserve(tenant, claims, ref="x")
    database.close()


# -- races ----------------------------------------------------------------------------------


def spend_until_refused(budgets: Budgets, tenant: str, amount: float) -> int:
    """Reserve and settle `amount` on two levels until the 100-token day budget refuses."""
    claims = [Claim("tenant_day:d", "tokens", 100, amount), Claim("run:r:0", "tokens", 1e6, amount)]
    done = 0
    while True:
        try:
            held = budgets.reserve(tenant, claims, ref="race")
        except BudgetExceeded:
            return done
        budgets.settle(held, {"tokens": amount})
        done += 1


def test_parallel_threads_never_overspend(db, tenant):
    budgets = open_budgets(db)
    counts: list[int] = []
    workers = [
        threading.Thread(target=lambda: counts.append(spend_until_refused(budgets, tenant, 7)))
        for _ in range(6)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sum(counts) == 100 // 7
    assert budgets.spent(tenant, "tenant_day:d", "tokens") == 7 * (100 // 7)
    if not db.in_memory:  # the ledger table agrees
        assert ledger_total(db, tenant, "tenant_day:d") == 7 * (100 // 7)


# The worker runs the very loop the thread test runs, copied in as source.
WORKER = (
    textwrap.dedent(
        """
        from __future__ import annotations
        import sys
        from podium.stores.budgets.store import BudgetExceeded, Budgets, Claim
        from podium.storage.database import open_database
        from podium.storage.urls import parse_url
        """
    )
    + inspect.getsource(spend_until_refused)
    + textwrap.dedent(
        """
        db = open_database(parse_url(sys.argv[1]))
        budgets = Budgets(db)
        print("ready", flush=True)
        sys.stdin.readline()  # start together with the other worker
        print(spend_until_refused(budgets, sys.argv[2], float(sys.argv[3])), flush=True)
        db.close()
        """
    )
)


def test_two_processes_never_overspend_on_postgres(postgres_url, tenant):
    db = open_database(parse_url(postgres_url))
    Budgets(db)  # create the table before the race
    counts = race(WORKER, postgres_url, tenant, "3")
    assert sum(counts) == 100 // 3
    assert ledger_total(db, tenant, "tenant_day:d") == 3 * (100 // 3)
    db.close()


def test_settled_spend_is_kept_as_a_running_total_per_level(db, tenant):
    budgets = Budgets(db)  # the tables themselves, on every back end
    day, run = Claim("tenant_day:d", "tokens", 10_000, 100), Claim("run:r", "tokens", 500, 100)
    for actual in (70, 30, 45):
        budgets.settle(budgets.reserve(tenant, [day, run], ref="call"), {"tokens": actual})
    totals = {
        row["scope_key"]: row["amount"]
        for row in db.query(
            "SELECT scope_key, amount FROM podium_budget_spent WHERE tenant_id = ?", (tenant,)
        )
    }
    assert totals == {"tenant_day:d": 145, "run:r": 145}
    assert totals["run:r"] == ledger_total(db, tenant, "run:r")  # the ledger agrees
    assert budgets.remaining(tenant, "run:r", "tokens", 500) == 355


def test_a_database_from_before_the_totals_keeps_its_spend(db, tenant):
    budgets = Budgets(db)  # the tables themselves, on every back end
    day = Claim("tenant_day:d", "tokens", 1_000, 100)
    budgets.settle(budgets.reserve(tenant, [day], ref="old"), {"tokens": 640})
    with db.transaction() as cur:  # as an older podium left it: a ledger, no totals
        cur.execute("DROP TABLE podium_budget_spent")
    reopened = Budgets(db)
    assert reopened.spent(tenant, day.scope_key, "tokens") == 640
    with pytest.raises(BudgetExceeded):
        reopened.reserve(tenant, [Claim("tenant_day:d", "tokens", 1_000, 400)], ref="new")


def test_each_runtime_keeps_budgets_where_its_data_lives(db):
    budgets = open_budgets(db)
    if db.in_memory:  # memory://: nothing outlives the process, no other process shares it
        assert isinstance(budgets, MemoryBudgets) and not budgets.runs_on_loop
    else:
        assert type(budgets) is Budgets


async def test_the_memory_store_serves_async_callers(tenant):
    budgets = MemoryBudgets()
    claim = Claim("run:a", "tokens", 100, 60)
    held = await budgets.areserve(tenant, [claim], ref="call")
    with pytest.raises(BudgetExceeded):
        await budgets.areserve(tenant, [claim], ref="second")
    await budgets.asettle(held, {"tokens": 30})
    unused = await budgets.areserve(tenant, [claim], ref="third")
    await budgets.arelease(unused)
    assert (
        budgets.spent(tenant, "run:a", "tokens"),
        budgets.reserved(tenant, "run:a", "tokens"),
    ) == (30, 0)
