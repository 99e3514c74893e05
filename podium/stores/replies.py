"""Recorded model replies: each model reply of a task, kept before its tool calls run.

A task that runs again (its process was killed mid-task, and `worker_durability="exit"`
re-runs unfinished tasks from their start) replays these replies instead of calling the
model: the same tool calls with the same ids, so side effects keyed by call id run once
whatever ids a provider makes up, and no reply is paid for twice. A reply is keyed by
tenant, thread, round, task, agent and step (the step counts the model replies the
task's conversation already holds, so it is the same on every run of the task).

A reply and its usage row are written in one transaction: the bill exists exactly when
the reply does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, message_to_dict, messages_from_dict

from podium.storage.database import Cursor, Database

if TYPE_CHECKING:
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
]

_WHERE_TASK = "WHERE tenant_id = ? AND thread_id = ? AND round = ? AND task_id = ? AND agent = ?"


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

    def load(self, task: TaskKey) -> dict[str, AIMessage]:
        """Every recorded reply of `task`, by step."""
        rows = self._db.query(
            f"SELECT step, message FROM podium_model_replies {_WHERE_TASK}", task.params()
        )
        return {row["step"]: _message(row["message"]) for row in rows}

    def record(
        self, task: TaskKey, step: str, reply: AIMessage, usage: Sequence[UsageEntry] = ()
    ) -> AIMessage:
        """Keep `reply` as the task's reply at `step`, with its usage rows.

        When a reply is already recorded at `step` (two runs of one task raced), the
        first one stands and is returned; this call's usage is still recorded (the
        provider billed it).
        """
        text = json.dumps(message_to_dict(reply))
        if self._db.dialect == "postgres":
            return self._record_in_one_statement(task, step, reply, text, usage)
        now = self._clock()

        def keep(cur: Cursor) -> str | None:
            kept = cur.query(
                "INSERT INTO podium_model_replies VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING RETURNING step",
                (*task.params(), step, text, now),
            )
            self._ledger.write(cur, usage)
            if kept:
                return None
            rows = cur.query(
                f"SELECT message FROM podium_model_replies {_WHERE_TASK} AND step = ?",
                (*task.params(), step),
            )
            return str(rows[0]["message"])

        first = self._db.transact(keep)
        return reply if first is None else _message(first)

    def _record_in_one_statement(
        self, task: TaskKey, step: str, reply: AIMessage, text: str, usage: Sequence[UsageEntry]
    ) -> AIMessage:
        """`record` on PostgreSQL: the reply and its bill in one statement (atomic, one
        round trip instead of a transaction's four). Running it twice (a retry after a
        lost connection) writes each row once: the bill's rows carry their ids."""
        sql = (
            "WITH kept AS (INSERT INTO podium_model_replies VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING RETURNING step)"
        )
        params: list[Any] = [*task.params(), step, text, self._clock()]
        if (bill := self._ledger.insert(usage)) is not None:
            sql += f", bill AS ({bill[0]})"
            params += bill[1]
        if self._db.query(f"{sql} SELECT step FROM kept", params):
            return reply
        rows = self._db.query(
            f"SELECT message FROM podium_model_replies {_WHERE_TASK} AND step = ?",
            (*task.params(), step),
        )
        return _message(rows[0]["message"])


def _message(text: str) -> AIMessage:
    [message] = messages_from_dict([json.loads(text)])
    assert isinstance(message, AIMessage)
    return message
