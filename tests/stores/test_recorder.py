"""The recorder writes a step's audit events and usage rows in one transaction."""

from __future__ import annotations

import pytest

from podium.storage.database import open_database
from podium.storage.urls import parse_url
from podium.stores.audit.log import AuditLog
from podium.stores.ledger import UsageEntry, UsageLedger
from podium.stores.recorder import Recorder


def _entry(tenant: str, n: int) -> UsageEntry:
    return UsageEntry(
        tenant_id=tenant,
        workflow="w",
        thread_id="t",
        task_id=f"task-{n}",
        agent="researcher",
        model="m",
        input_tokens=10 + n,
        output_tokens=5,
        cached_tokens=0,
        cost_usd=0.5,
    )


def _step(recorder: Recorder, tenant: str, n: int) -> None:
    recorder.event("model_call", "agent:researcher", {"n": n}, tenant_id=tenant)
    recorder.usage(_entry(tenant, n))


def _calls(ledger: UsageLedger, tenant: str) -> int:
    return sum(row.calls for row in ledger.totals(tenant, by="tenant"))


def test_writers_on_stale_heads_bill_each_step_once_and_keep_one_chain(durable_url, tenant):
    # Two processes' recorders on one tenant: each links its batch to the head it last
    # wrote, so one of every pair collides and takes the locked path with its bill.
    first, second = (open_database(parse_url(durable_url)) for _ in range(2))
    logs = [AuditLog(first), AuditLog(second)]
    ledgers = [UsageLedger(first), UsageLedger(second)]
    recorders = [Recorder(log, ledger) for log, ledger in zip(logs, ledgers, strict=True)]
    for n in range(8):
        for r, recorder in enumerate(recorders):
            _step(recorder, tenant, 2 * n + r)
            recorder.flush()
    assert _calls(ledgers[0], tenant) == 16
    assert [e.seq for e in logs[0].events(tenant)] == list(range(1, 17))
    assert logs[0].verify(tenant)[tenant].ok
    first.close()
    second.close()


def test_a_step_whose_events_cannot_be_written_writes_no_usage_and_keeps_both(durable_url, tenant):
    db = open_database(parse_url(durable_url))
    log, ledger = AuditLog(db), UsageLedger(db)
    recorder = Recorder(log, ledger)
    _step(recorder, tenant, 0)
    recorder.flush()  # a known head: the next batch takes the one-statement path
    if db.dialect == "postgres":
        db.execute(
            "CREATE OR REPLACE FUNCTION podium_test_refuse() RETURNS trigger AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by test'; END $$ LANGUAGE plpgsql"
        )
        db.execute(
            "CREATE TRIGGER podium_test_refuse BEFORE INSERT ON podium_audit_events "
            "FOR EACH ROW WHEN (NEW.tenant_id = '" + tenant + "') "
            "EXECUTE FUNCTION podium_test_refuse()"
        )
    else:
        db.execute(
            "CREATE TRIGGER podium_test_refuse BEFORE INSERT ON podium_audit_events "
            "BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
        )
    _step(recorder, tenant, 1)
    _step(recorder, tenant, 2)
    try:
        with pytest.raises(Exception, match="refused by test"):
            recorder.flush()
        assert _calls(ledger, tenant) == 1  # the failed step's bill was not written
    finally:
        db.execute(
            "DROP TRIGGER podium_test_refuse"
            + (" ON podium_audit_events" if db.dialect == "postgres" else "")
        )
    recorder.flush()  # both kept, written once
    assert _calls(ledger, tenant) == 3
    assert [e.payload["n"] for e in log.events(tenant)] == [0, 1, 2]
    assert log.verify(tenant)[tenant].ok
    db.close()


def test_usage_with_no_events_waiting_is_still_written(durable_url, tenant):
    db = open_database(parse_url(durable_url))
    ledger = UsageLedger(db)
    recorder = Recorder(AuditLog(db), ledger)
    recorder.usage(_entry(tenant, 0))
    recorder.flush()
    assert _calls(ledger, tenant) == 1
    db.close()


def test_a_flush_of_events_alone_writes_them(durable_url, tenant):
    db = open_database(parse_url(durable_url))
    log = AuditLog(db)
    recorder = Recorder(log, UsageLedger(db))
    recorder.event("plan", "system:podium", {"tasks": 1}, tenant_id=tenant)
    recorder.flush()
    assert [e.kind for e in log.events(tenant)] == ["plan"]
    db.close()


def test_settlements_of_several_calls_on_one_running_total_flush_together(durable_url, tenant):
    # Several runs of one tenant settle into the same running totals (the tenant's day)
    # in one flush: each counts once, and the flush does not fail on the shared rows.
    from podium.stores.budgets.sql import Claim
    from podium.stores.budgets.store import Budgets

    db = open_database(parse_url(durable_url))
    budgets = Budgets(db)
    recorder = Recorder(AuditLog(db), UsageLedger(db))
    recorder.event("plan", "system:podium", {"tasks": 3}, tenant_id=tenant)
    recorder.flush()  # a known head: the next batch takes the one-statement path
    day = "tenant_day:2026-12-06"
    for n in range(3):
        claims = [Claim(day, "tokens", 10_000, 500), Claim(f"run:r{n}:1", "tokens", 10_000, 500)]
        hold = budgets.reserve(tenant, claims, ref=f"r{n}")
        settlement = budgets.settlement(hold, {"tokens": 100 + n})
        assert settlement is not None
        recorder.settle(settlement)
        _step(recorder, tenant, n)
    recorder.flush()
    assert not recorder.settling
    assert budgets.spent(tenant, day, "tokens") == 303
    assert budgets.reserved(tenant, day, "tokens") == 0
    assert [budgets.spent(tenant, f"run:r{n}:1", "tokens") for n in range(3)] == [100, 101, 102]
    db.close()
