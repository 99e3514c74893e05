"""What a task needs to run again: its recorded model replies, and which run of it this is.

Recorded model replies: each model reply of a task, kept before its tool calls run.

A task that runs again (its process was killed mid-task, and `worker_durability="exit"`
re-runs unfinished tasks from their start) replays these replies instead of calling the
model: the same tool calls with the same ids, so side effects keyed by call id run once
whatever ids a provider makes up, and no reply is paid for twice. A reply is keyed by
tenant, thread, round, task, agent and step (the step counts the model replies the
task's conversation already holds, so it is the same on every run of the task).

A reply, its usage row and its call's budget settlement are written in one transaction
(one statement on PostgreSQL): the bill exists exactly when the reply does.

Attempts: each run of a task starts by counting itself (`begin`, in the same round trip
that reads the recorded replies). A run that starts while the task's previous run neither
finished nor stopped at a gate is a retry: its process died, or a database outage
stopped the run. It is the task's attempt 2 (3, ...), and what it writes says so. A run
that continues the task after a gate, or after it moved to `waiting` for an effect in
doubt (`pause` marked either), keeps the attempt.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, message_to_dict, messages_from_dict

from podium.storage.database import Cursor, Database

if TYPE_CHECKING:
    from podium.stores.budgets.store import Settlement
    from podium.stores.ledger import UsageEntry, UsageLedger

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS podium_model_replies (
        tenant_id TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        round INTEGER NOT NULL,
        task_id TEXT NOT NULL,
        agent TEXT NOT NULL,
        step TEXT NOT NULL,
        message TEXT NOT NULL,
        recorded_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (tenant_id, thread_id, round, task_id, agent, step)
    )""",
    """CREATE TABLE IF NOT EXISTS podium_task_runs (
        tenant_id TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        round INTEGER NOT NULL,
        task_id TEXT NOT NULL,
        agent TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        paused INTEGER NOT NULL,
        run_id TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (tenant_id, thread_id, round, task_id, agent)
    )""",
]

#: Count a run of a task: the first is attempt 1; a run after one that neither finished
#: nor paused at a gate is the next attempt; a run after a pause keeps the attempt. The
#: same run counted twice (its statement retried after a lost connection) counts once.
_BEGIN = (
    "INSERT INTO podium_task_runs VALUES (?, ?, ?, ?, ?, 1, 0, ?, ?) "
    "ON CONFLICT (tenant_id, thread_id, round, task_id, agent) DO UPDATE SET "
    "attempt = CASE WHEN podium_task_runs.run_id = excluded.run_id "
    "THEN podium_task_runs.attempt "
    "ELSE podium_task_runs.attempt + 1 - podium_task_runs.paused END, "
    "paused = 0, run_id = excluded.run_id, started_at = excluded.started_at RETURNING attempt"
)

_WHERE_TASK = "WHERE tenant_id = ? AND thread_id = ? AND round = ? AND task_id = ? AND agent = ?"


@dataclass(frozen=True, slots=True)
class TaskStart:
    """A run of a task, begun: which attempt it is, and the replies earlier runs recorded."""

    attempt: int
    replies: dict[str, AIMessage]


@dataclass(frozen=True, slots=True)
class TaskKey:
    """One task of one round of a thread, as run by one agent."""

    tenant_id: str
    thread_id: str
    round: int
    task_id: str
    agent: str

    def params(self) -> tuple[str, str, int, str, str]:
        return (self.tenant_id, self.thread_id, self.round, self.task_id, self.agent)


class ModelReplies:
    """The `podium_model_replies` table."""

    def __init__(
        self,
        db: Database,
        ledger: UsageLedger,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._ledger = ledger
        self._clock = clock
        db.ensure_schema("model_replies", SCHEMA)

    def begin(self, task: TaskKey) -> TaskStart:
        """Count a run of `task` and read its recorded replies, in one round trip on
        PostgreSQL (one transaction on SQLite).

        On PostgreSQL the count commits without waiting for its WAL flush (as a read
        would cost, instead of a flush per task): it outlives the death of this process,
        the case it is kept for; a crash of the database server itself may lose the last
        fraction of a second of counts, and a retry then counts as the attempt before.
        """
        params = (*task.params(), uuid.uuid4().hex, self._clock())
        if self._db.dialect == "postgres":
            rows = self._db.query(
                "WITH quick AS (SELECT set_config('synchronous_commit', 'off', true)), "
                f"run AS ({_BEGIN}) SELECT run.attempt, r.step, r.message FROM quick, run "
                "LEFT JOIN podium_model_replies r ON r.tenant_id = ? AND r.thread_id = ? "
                "AND r.round = ? AND r.task_id = ? AND r.agent = ?",
                (*params, *task.params()),
            )
            replies = {row["step"]: _message(row["message"]) for row in rows if row["step"]}
            return TaskStart(int(rows[0]["attempt"]), replies)
        with self._db.transaction() as cur:
            [counted] = cur.query(_BEGIN, params)
            rows = cur.query(
                f"SELECT step, message FROM podium_model_replies {_WHERE_TASK}", task.params()
            )
        return TaskStart(
            int(counted["attempt"]), {row["step"]: _message(row["message"]) for row in rows}
        )

    def pause(self, task: TaskKey) -> None:
        """Mark the current run of `task` as stopped at a gate (or sent to wait for one):
        the run that continues it is the same attempt, not a retry."""
        self._db.execute(f"UPDATE podium_task_runs SET paused = 1 {_WHERE_TASK}", task.params())

    def load(self, task: TaskKey) -> dict[str, AIMessage]:
        """Every recorded reply of `task`, by step."""
        rows = self._db.query(
            f"SELECT step, message FROM podium_model_replies {_WHERE_TASK}", task.params()
        )
        return {row["step"]: _message(row["message"]) for row in rows}

    def record(
        self,
        task: TaskKey,
        step: str,
        reply: AIMessage,
        usage: Sequence[UsageEntry] = (),
        settlement: Settlement | None = None,
    ) -> AIMessage:
        """Keep `reply` as the task's reply at `step`, with its usage rows and, when
        given, its call's budget settlement: all committed together.

        When a reply is already recorded at `step` (two runs of one task raced), the
        first one stands and is returned; this call's usage and spend are still
        recorded (the provider billed it).
        """
        text = json.dumps(message_to_dict(reply))
        if self._db.dialect == "postgres":
            kept, turned = self._record_in_one_statement(task, step, text, usage, settlement)
        else:
            now = self._clock()

            def keep(cur: Cursor) -> tuple[str | None, bool]:
                kept = cur.query(
                    "INSERT INTO podium_model_replies VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING RETURNING step",
                    (*task.params(), step, text, now),
                )
                self._ledger.write(cur, usage)
                turned = settlement.turn(cur) if settlement is not None else True
                if kept:
                    return None, turned
                rows = cur.query(
                    f"SELECT message FROM podium_model_replies {_WHERE_TASK} AND step = ?",
                    (*task.params(), step),
                )
                return str(rows[0]["message"]), turned

            kept, turned = self._db.transact(keep)
        if settlement is not None:
            settlement.finish(turned)
        return reply if kept is None else _message(kept)

    def _record_in_one_statement(
        self,
        task: TaskKey,
        step: str,
        text: str,
        usage: Sequence[UsageEntry],
        settlement: Settlement | None,
    ) -> tuple[str | None, bool]:
        """`record` on PostgreSQL: the reply, its bill and its settlement in one statement
        (atomic, one round trip instead of a transaction's four). Running it twice (a
        retry after a lost connection) writes each row once: the bill's rows carry their
        ids, and a settled hold is no longer there to turn. Returns the reply already
        recorded (None: this one was kept) and whether the hold was turned."""
        sql = (
            "WITH kept AS (INSERT INTO podium_model_replies VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING RETURNING step)"
        )
        params: list[Any] = [*task.params(), step, text, self._clock()]
        if (bill := self._ledger.insert(usage)) is not None:
            sql += f", bill AS ({bill[0]})"
            params += bill[1]
        turned = "true"
        if settlement is not None:
            ctes, more = settlement.ctes()
            sql += f", {ctes}"
            params += more
            turned = "EXISTS (SELECT 1 FROM settled)"
        [row] = self._db.query(
            f"{sql} SELECT EXISTS (SELECT 1 FROM kept) AS kept, {turned} AS turned", params
        )
        if row["kept"]:
            return None, bool(row["turned"])
        rows = self._db.query(
            f"SELECT message FROM podium_model_replies {_WHERE_TASK} AND step = ?",
            (*task.params(), step),
        )
        return str(rows[0]["message"]), bool(row["turned"])


def _message(text: str) -> AIMessage:
    [message] = messages_from_dict([json.loads(text)])
    assert isinstance(message, AIMessage)
    return message


class MemoryReplies(ModelReplies):
    """`ModelReplies` for an in-memory runtime (`memory://`, whose database lives and dies
    with this process): the same answers, kept in a dictionary instead of SQL rows. A task
    re-run in this process (its thread resumed after its run raised) still replays its
    recorded replies and counts its attempts; the bills go to the usage ledger."""

    def __init__(
        self,
        db: Database,
        ledger: UsageLedger,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db, self._ledger, self._clock = db, ledger, clock
        self._replies: dict[tuple[str, str, int, str, str], dict[str, AIMessage]] = {}
        self._runs: dict[tuple[str, str, int, str, str], tuple[int, bool]] = {}
        self._lock = threading.Lock()

    def begin(self, task: TaskKey) -> TaskStart:
        key = task.params()
        with self._lock:
            attempt, paused = self._runs.get(key, (0, False))
            attempt = attempt if paused else attempt + 1
            self._runs[key] = (attempt, False)
            replies = dict(self._replies.get(key, {}))
        return TaskStart(attempt, {step: m.model_copy() for step, m in replies.items()})

    def pause(self, task: TaskKey) -> None:
        key = task.params()
        with self._lock:
            if key in self._runs:
                self._runs[key] = (self._runs[key][0], True)

    def load(self, task: TaskKey) -> dict[str, AIMessage]:
        with self._lock:
            replies = dict(self._replies.get(task.params(), {}))
        return {step: m.model_copy() for step, m in replies.items()}

    def record(
        self,
        task: TaskKey,
        step: str,
        reply: AIMessage,
        usage: Sequence[UsageEntry] = (),
        settlement: Settlement | None = None,
    ) -> AIMessage:
        self._ledger.record(usage)  # first: a reply is kept only with its bill
        if settlement is not None:
            settlement.finish(self._db.transact(settlement.turn))
        with self._lock:
            kept = self._replies.setdefault(task.params(), {})
            first = kept.get(step)
            if first is None:
                kept[step] = reply.model_copy()
                return reply
        return first.model_copy()  # two runs of one task raced: the first reply stands
