"""Recorded model replies on every back end: a reply and its bill are written together,
the first reply at a step stands, and writing the same record twice (a retry after a lost
connection) bills once. Each run of a task counts its attempt as it begins."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from podium.storage.database import Database, open_database
from podium.storage.urls import parse_url
from podium.stores.budgets.sql import Claim, Reservation
from podium.stores.budgets.store import Budgets
from podium.stores.ledger import UsageEntry, UsageLedger
from podium.stores.replies import MemoryReplies, ModelReplies, TaskKey, TaskStart


def open_replies(db: Any, ledger: UsageLedger) -> ModelReplies:
    """The replies store a runtime on `db` gets (`memory://` keeps them in a dictionary)."""
    return (MemoryReplies if db.in_memory else ModelReplies)(db, ledger)


@pytest.fixture
def task() -> TaskKey:
    """A task of a tenant of its own (the PostgreSQL tables outlive a test)."""
    return TaskKey(f"tenant-{uuid.uuid4().hex[:8]}", "t1", 0, "t1-1", "researcher")


def bill(task: TaskKey, tokens: int) -> UsageEntry:
    return UsageEntry(
        tenant_id=task.tenant_id,
        workflow="research_brief",
        thread_id="t1",
        task_id="t1-1",
        agent="researcher",
        model="gpt-small",
        input_tokens=tokens,
        output_tokens=10,
        cached_tokens=0,
        cost_usd=0.01,
    )


def reply(text: str) -> AIMessage:
    call = {"name": "search_corpus", "args": {"query": text}, "id": f"call-{text}"}
    return AIMessage(content=text, tool_calls=[call])


def spent(ledger: UsageLedger, task: TaskKey) -> tuple[int, int]:
    (row,) = ledger.totals(by="tenant", tenant_id=task.tenant_id)
    return row.calls, row.input_tokens


def test_a_reply_and_its_bill_are_recorded_together(db: Database, task: TaskKey) -> None:
    ledger = UsageLedger(db)
    replies = open_replies(db, ledger)
    assert replies.load(task) == {}
    kept = replies.record(task, "0.0", reply("heat pumps"), [bill(task, 100)])
    assert kept.tool_calls[0]["id"] == "call-heat pumps"
    loaded = replies.load(task)
    assert list(loaded) == ["0.0"]
    assert loaded["0.0"].tool_calls == kept.tool_calls
    assert spent(ledger, task) == (1, 100)
    db.close()


def test_the_first_reply_at_a_step_stands_and_each_call_is_billed(
    db: Database, task: TaskKey
) -> None:
    ledger = UsageLedger(db)
    replies = open_replies(db, ledger)
    replies.record(task, "0.0", reply("first"), [bill(task, 100)])
    kept = replies.record(task, "0.0", reply("second"), [bill(task, 50)])
    assert kept.content == "first"
    assert replies.load(task)["0.0"].content == "first"
    assert spent(ledger, task) == (2, 150)  # both calls were paid for


class Twice:
    """A database whose every statement runs twice, as a retry after a connection lost
    between the commit and its answer runs it."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.dialect = db.dialect

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        first = self._db.query(sql, params)
        second = self._db.query(sql, params)
        return first if "INSERT" in sql else second

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def test_a_record_written_twice_bills_once(postgres_url: str, task: TaskKey) -> None:
    # PostgreSQL writes a reply and its bill in one statement, which a lost connection
    # makes the retry run again; the embedded back ends write them in one transaction.
    db = open_database(parse_url(postgres_url))
    ledger = UsageLedger(db)
    replies = open_replies(Twice(db), ledger)  # type: ignore[arg-type]
    kept = replies.record(task, "0.0", reply("heat pumps"), [bill(task, 100)])
    assert kept.content == "heat pumps"
    assert spent(ledger, task) == (1, 100)
    db.close()


def test_a_run_that_follows_an_unfinished_run_is_the_next_attempt(
    db: Database, task: TaskKey
) -> None:
    replies = open_replies(db, UsageLedger(db))
    first = replies.begin(task)
    assert (first.attempt, first.replies) == (1, {})
    replies.record(task, "1.0", reply("heat pumps"), [bill(task, 100)])
    # The first run never finished (its process died): the next one is attempt 2, and
    # finds what the first recorded.
    second = replies.begin(task)
    assert second.attempt == 2
    assert [(step, r.content) for step, r in second.replies.items()] == [("1.0", "heat pumps")]
    assert replies.begin(task).attempt == 3
    # Another task of the same thread counts its own runs.
    other = TaskKey(task.tenant_id, task.thread_id, task.round, "t1-2", task.agent)
    assert replies.begin(other) == TaskStart(1, {})


def test_a_run_that_continues_after_a_gate_keeps_its_attempt(db: Database, task: TaskKey) -> None:
    replies = open_replies(db, UsageLedger(db))
    assert replies.begin(task).attempt == 1
    replies.pause(task)  # stopped at a gate
    assert replies.begin(task).attempt == 1  # the decision continues it: no retry
    assert replies.begin(task).attempt == 2  # ... but that run died: the next one is
    replies.pause(task)
    assert replies.begin(task).attempt == 2


def test_a_begin_written_twice_counts_the_run_once(postgres_url: str, task: TaskKey) -> None:
    # A lost connection between the commit and its answer makes the retry run the
    # statement again: still one run of the task.
    db = open_database(parse_url(postgres_url))
    replies = open_replies(Twice(db), UsageLedger(db))  # type: ignore[arg-type]
    assert replies.begin(task).attempt == 1
    assert replies.begin(task).attempt == 2
    db.close()


def _hold(db: Database, task: TaskKey) -> tuple[Budgets, Reservation, str]:
    budgets, scope = Budgets(db), f"run:{task.thread_id}:0"
    return (
        budgets,
        budgets.reserve(task.tenant_id, [Claim(scope, "tokens", 10_000, 500)], ref="r"),
        scope,
    )


def test_a_replys_budget_settlement_commits_with_it(db: Database, task: TaskKey) -> None:
    ledger = UsageLedger(db)
    replies = open_replies(db, ledger)
    budgets, hold, scope = _hold(db, task)
    assert budgets.reserved(task.tenant_id, scope, "tokens") == 500
    settlement = budgets.settlement(hold, {"tokens": 110})
    replies.record(task, "0.0", reply("heat pumps"), [bill(task, 100)], settlement)
    assert budgets.spent(task.tenant_id, scope, "tokens") == 110
    assert budgets.reserved(task.tenant_id, scope, "tokens") == 0
    assert spent(ledger, task) == (1, 100)
    db.close()


def test_a_settlement_whose_hold_is_gone_counts_its_spend_once(db: Database, task: TaskKey) -> None:
    # The hold was purged (its call outlived the TTL) or lost: the spend happened and
    # counts, once, however often the record is written.
    replies = open_replies(db, UsageLedger(db))
    budgets, hold, scope = _hold(db, task)
    budgets.release(hold)
    for _ in range(2):
        settlement = budgets.settlement(hold, {"tokens": 110})
        replies.record(task, "0.0", reply("heat pumps"), [bill(task, 100)], settlement)
    assert budgets.spent(task.tenant_id, scope, "tokens") == 110
    assert budgets.reserved(task.tenant_id, scope, "tokens") == 0
    db.close()


def test_a_settled_record_written_twice_settles_once(db: Database, task: TaskKey) -> None:
    replies = open_replies(Twice(db), UsageLedger(db))  # type: ignore[arg-type]
    budgets, hold, scope = _hold(db, task)
    settlement = budgets.settlement(hold, {"tokens": 110})
    replies.record(task, "0.0", reply("heat pumps"), [bill(task, 100)], settlement)
    assert budgets.spent(task.tenant_id, scope, "tokens") == 110
    assert budgets.reserved(task.tenant_id, scope, "tokens") == 0
    db.close()
