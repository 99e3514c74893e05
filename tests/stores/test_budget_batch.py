"""Group commit of budget holds and settlements on the event loop.

`GroupCommit` on its own (batching, results, errors, cancelled callers, the commit
delay), the in-order decision of a batch of holds as a table of cases, and the batches
`Budgets` sends to PostgreSQL under an async runtime.
"""

from __future__ import annotations

import asyncio

import pytest

from podium.stores.budgets.batch import (
    COMMIT_DELAY,
    COMMIT_SIBLINGS,
    MAX_COMMIT_DELAY,
    GroupCommit,
    decide_in_order,
)
from podium.stores.budgets.store import BudgetExceeded, Claim, Reservation
from tests.helpers import ledger_total

# -- GroupCommit ----------------------------------------------------------------------


class Recorder:
    """A batch runner that records each batch and answers item * 10 (or raises)."""

    def __init__(self, fail_on: int | None = None, raise_all: Exception | None = None):
        self.batches: list[list[int]] = []
        self.fail_on, self.raise_all = fail_on, raise_all
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, items: list[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        await self.release.wait()
        if self.raise_all is not None:
            raise self.raise_all
        return [ValueError(f"bad {i}") if i == self.fail_on else i * 10 for i in items]


async def test_items_submitted_together_go_in_one_batch_and_get_their_own_results():
    run = Recorder()
    group = GroupCommit(run)
    results = await asyncio.gather(*(group.submit(i) for i in range(5)))
    assert results == [0, 10, 20, 30, 40]
    assert run.batches == [[0, 1, 2, 3, 4]]
    assert group.batches == 1


async def test_items_arriving_while_a_batch_runs_form_the_next_batch():
    run = Recorder()
    run.release.clear()
    group = GroupCommit(run)
    first = asyncio.ensure_future(group.submit(1))
    await asyncio.sleep(0.01)  # batch [1] is at the "database"
    later = [asyncio.ensure_future(group.submit(i)) for i in (2, 3)]
    await asyncio.sleep(0.01)
    assert run.batches == [[1]]
    run.release.set()
    assert await first == 10 and [await f for f in later] == [20, 30]
    assert run.batches == [[1], [2, 3]]


async def test_an_item_error_reaches_its_caller_only_and_a_batch_error_reaches_all():
    group = GroupCommit(Recorder(fail_on=2))
    outcomes = await asyncio.gather(*(group.submit(i) for i in (1, 2, 3)), return_exceptions=True)
    assert outcomes[0] == 10 and outcomes[2] == 30
    assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "bad 2"

    broken = GroupCommit(Recorder(raise_all=ConnectionError("database gone")))
    outcomes = await asyncio.gather(*(broken.submit(i) for i in (1, 2)), return_exceptions=True)
    assert [type(o) for o in outcomes] == [ConnectionError, ConnectionError]
    # The group still works after a failed batch.
    healthy = GroupCommit(Recorder())
    assert await healthy.submit(4) == 40


async def test_a_cancelled_caller_hands_its_result_to_the_abandoned_callback():
    run = Recorder()
    run.release.clear()
    undone: list[tuple[int, int]] = []

    async def abandoned(pairs):
        undone.extend(pairs)

    group = GroupCommit(run, abandoned)
    keep, drop = asyncio.ensure_future(group.submit(1)), asyncio.ensure_future(group.submit(2))
    await asyncio.sleep(0.01)
    drop.cancel()
    run.release.set()
    assert await keep == 10
    await asyncio.sleep(0.01)
    assert undone == [(2, 20)]


async def test_a_caller_cancelled_after_its_answer_still_has_its_result_undone():
    answered = asyncio.Event()

    async def run(items):
        answered.set()  # wakes the test before the caller, which resumes after the answer
        return [i * 10 for i in items]

    undone: list[tuple[int, int]] = []

    async def abandoned(pairs):
        undone.extend(pairs)

    group = GroupCommit(run, abandoned)
    caller = asyncio.ensure_future(group.submit(3))
    await answered.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await asyncio.sleep(0)
    assert undone == [(3, 30)]


async def test_the_commit_delay_lets_later_items_join_the_batch():
    run = Recorder()
    group = GroupCommit(run, delay=lambda: 0.05)
    first = asyncio.ensure_future(group.submit(1))
    await asyncio.sleep(0.01)  # within the delay: joins the first batch
    assert await asyncio.gather(first, group.submit(2)) == [10, 20]
    assert run.batches == [[1, 2]]


# -- deciding a batch of holds in order -----------------------------------------------


def hold(rid: str, amount: float, limit: float = 100, scope: str = "run:r") -> Reservation:
    return Reservation(rid, "t", "ref", (Claim(scope, "tokens", limit, amount),), 0.0)


@pytest.mark.parametrize(
    ("amounts", "spent", "others", "accepted"),
    [
        ([30, 30, 30], 0, 0, [True, True, True]),  # all fit
        ([60, 30, 30], 0, 0, [True, True, False]),  # the third no longer fits
        ([60, 50, 40], 0, 0, [True, False, True]),  # a refused hold does not count
        ([30, 30], 50, 0, [True, False]),  # spend counts
        ([30, 30], 0, 50, [True, False]),  # other calls' holds count
        ([101], 0, 0, [False]),  # larger than the limit
    ],
)
def test_a_batch_of_holds_is_decided_as_if_one_after_another(amounts, spent, others, accepted):
    holds = [hold(f"h{i}", a) for i, a in enumerate(amounts)]
    # As read after the batch was held: every hold of the batch is in `held`.
    sums = {("run:r", "tokens"): (float(spent), float(others + sum(amounts)))}
    decisions = decide_in_order(holds, sums)
    assert [d is None for d in decisions] == accepted
    for index, decision in enumerate(decisions):
        if decision is not None:
            before = sum(a for a, ok in zip(amounts[:index], accepted, strict=False) if ok)
            assert isinstance(decision, BudgetExceeded)
            assert decision.reserved == pytest.approx(others + before)
            assert decision.spent == spent


def test_a_hold_on_several_levels_is_refused_by_the_first_full_one():
    run_level = Claim("run:r", "tokens", 100, 40)
    day_level = Claim("tenant_day:d", "tokens", 50, 40)
    first = Reservation("a", "t", "ref", (run_level, day_level), 0.0)
    second = Reservation("b", "t", "ref", (run_level, day_level), 0.0)
    sums = {("run:r", "tokens"): (0.0, 80.0), ("tenant_day:d", "tokens"): (0.0, 80.0)}
    decisions = decide_in_order([first, second], sums)
    assert decisions[0] is None
    assert decisions[1] is not None and decisions[1].scope == "tenant_day:d"


# -- batches on PostgreSQL ------------------------------------------------------------


async def test_holds_made_together_go_in_one_batch_and_only_what_fits_is_held(budgets, tenant):
    claim = Claim("run:batch", "tokens", 100, 15)
    outcomes = await asyncio.gather(
        *(budgets.areserve(tenant, [claim], ref=f"c{i}") for i in range(10)),
        return_exceptions=True,
    )
    held = [o for o in outcomes if isinstance(o, Reservation)]
    refused = [o for o in outcomes if isinstance(o, BudgetExceeded)]
    assert len(held) == 6 and len(refused) == 4  # 6 * 15 = 90 <= 100
    assert all(r.reserved == pytest.approx(90) for r in refused)
    assert budgets.reserved(tenant, "run:batch", "tokens") == 90
    assert budgets.loop_batches().holds.largest == 10, "the ten holds did not go together"
    await asyncio.gather(*(budgets.asettle(r, {"tokens": 10}) for r in held))
    assert budgets.spent(tenant, "run:batch", "tokens") == 60
    assert budgets.reserved(tenant, "run:batch", "tokens") == 0


async def test_settlements_made_together_settle_each_reservation_once(budgets, tenant):
    claims = [Claim("run:s", "tokens", 1_000, 100), Claim("run:s", "usd", 10.0, 0.5)]
    holds = [await budgets.areserve(tenant, claims, ref=f"c{i}") for i in range(4)]
    gone = holds[3]
    budgets._db.execute(  # as if this hold had expired and been purged
        "DELETE FROM podium_budget_ledger WHERE reservation_id = ?", (gone.reservation_id,)
    )
    spends = [{"tokens": 70, "usd": 0.25}, {"tokens": 80}, {"tokens": 90, "usd": 0.5}]
    settles = [budgets.asettle(h, s) for h, s in zip(holds[:3], spends, strict=True)]
    settles.append(budgets.asettle(holds[0], spends[0]))  # the same one twice in a batch
    settles.append(budgets.asettle(gone, {"tokens": 5, "usd": 0.125}))
    await asyncio.gather(*settles)
    assert budgets.spent(tenant, "run:s", "tokens") == 70 + 80 + 90 + 5
    assert budgets.spent(tenant, "run:s", "usd") == pytest.approx(0.25 + 0.5 + 0.125)
    assert ledger_total(budgets._db, tenant, "run:s") == 245
    assert budgets.reserved(tenant, "run:s", "tokens") == 0


async def test_a_hold_whose_caller_was_cancelled_is_released(budgets, tenant):
    claim = Claim("run:c", "tokens", 100, 40)
    batches = budgets.loop_batches()
    first = asyncio.ensure_future(budgets.areserve(tenant, [claim], ref="kept"))
    dropped = asyncio.ensure_future(budgets.areserve(tenant, [claim], ref="dropped"))
    await asyncio.sleep(0)  # both are queued; the batch has not run
    dropped.cancel()
    kept = await first
    for _ in range(100):  # the release runs after the batch, on the drainer
        if budgets.reserved(tenant, "run:c", "tokens") == 40:
            break
        await asyncio.sleep(0.01)
    assert budgets.reserved(tenant, "run:c", "tokens") == 40
    assert batches.holds.batches == 1
    await budgets.asettle(kept, {"tokens": 40})


async def test_batches_wait_for_company_only_while_enough_holds_are_open(budgets, tenant):
    batches = budgets.loop_batches()
    claim = Claim("run:d", "tokens", 10_000, 1)
    assert batches.commit_delay() == 0.0
    open_holds = [
        await budgets.areserve(tenant, [claim], ref=f"c{i}") for i in range(COMMIT_SIBLINGS)
    ]
    assert batches.commit_delay() == pytest.approx(COMMIT_DELAY * COMMIT_SIBLINGS)
    more = [await budgets.areserve(tenant, [claim], ref=f"m{i}") for i in range(60)]
    assert batches.commit_delay() == MAX_COMMIT_DELAY  # the wait grows with the load, capped
    for held in more:
        await budgets.asettle(held, {"tokens": 1})
    await budgets.asettle(open_holds[0], {"tokens": 1})
    await budgets.arelease(open_holds[1])
    assert batches.commit_delay() == 0.0
    for held in open_holds[2:]:
        await budgets.asettle(held, {"tokens": 1})


async def test_a_batch_that_fails_after_holding_takes_its_holds_back(budgets, tenant, monkeypatch):
    claim = Claim("run:f", "tokens", 100, 30)

    async def sums_fail(sql, params=()):
        raise ConnectionError("server closed the connection unexpectedly")

    monkeypatch.setattr(budgets._db, "aquery", sums_fail)  # the holds are in, the read fails
    outcomes = await asyncio.gather(
        *(budgets.areserve(tenant, [claim], ref=f"c{i}") for i in range(3)),
        return_exceptions=True,
    )
    assert [type(o) for o in outcomes] == [ConnectionError] * 3
    monkeypatch.undo()
    assert budgets.reserved(tenant, "run:f", "tokens") == 0
    assert await budgets.areserve(tenant, [claim], ref="after")  # the store still works


async def test_a_hold_refused_for_others_holds_is_retried_until_they_let_go(budgets, tenant):
    claim = Claim("run:retry", "tokens", 100, 60)
    first = await budgets.areserve(tenant, [claim], ref="first")

    async def let_go_soon():
        await asyncio.sleep(0.003)
        await budgets.arelease(first)

    letting_go = asyncio.ensure_future(let_go_soon())
    second = await budgets.areserve(tenant, [claim], ref="second")  # refused, then fits
    await letting_go
    assert budgets.reserved(tenant, "run:retry", "tokens") == 60
    await budgets.asettle(second, {"tokens": 60})


async def test_holds_are_taken_back_when_deleting_the_refused_ones_fails(
    budgets, tenant, monkeypatch
):
    claim = Claim("run:r2", "tokens", 100, 60)
    real = budgets._db.aexecute

    async def refused_delete_fails(sql, params=()):
        if sql.startswith("DELETE") and "state = 'reserved'" in sql and len(params) == 2:
            raise ConnectionError("server closed the connection unexpectedly")
        await real(sql, params)

    monkeypatch.setattr(budgets._db, "aexecute", refused_delete_fails)
    outcomes = await asyncio.gather(
        *(budgets.areserve(tenant, [claim], ref=f"c{i}") for i in range(2)),
        return_exceptions=True,
    )
    monkeypatch.undo()
    assert [type(o) for o in outcomes] == [ConnectionError] * 2
    assert budgets.reserved(tenant, "run:r2", "tokens") == 0  # the accepted one too


async def test_a_bad_settlement_fails_its_caller_only(budgets, tenant, monkeypatch):
    claim = Claim("run:s2", "tokens", 1_000, 100)
    holds = [await budgets.areserve(tenant, [claim], ref=f"c{i}") for i in range(3)]
    real = budgets._db.aquery
    poisoned = holds[1].reservation_id

    async def one_row_breaks_the_batch(sql, params=()):
        values = [v for p in params for v in (p if isinstance(p, list) else [p])]
        if poisoned in values and sql.startswith("WITH"):  # columns come as arrays
            raise RuntimeError("deadlock detected")  # the batch, or this one alone
        return await real(sql, params)

    monkeypatch.setattr(budgets._db, "aquery", one_row_breaks_the_batch)
    outcomes = await asyncio.gather(
        *(budgets.asettle(h, {"tokens": 40}) for h in holds), return_exceptions=True
    )
    monkeypatch.undo()
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], RuntimeError)
    assert budgets.spent(tenant, "run:s2", "tokens") == 80
    with pytest.raises(TypeError):  # a malformed amount is refused before any batch
        await budgets.asettle(holds[1], {"tokens": None})
