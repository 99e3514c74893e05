"""The usage and cost ledger: one row per model call, summed per tenant, workflow, agent...

Rows live in `podium_usage`. `cached_tokens` is the part of `input_tokens` served from
the provider's prompt cache, so `total_tokens` is `input_tokens + output_tokens`.
`step_attempt` and `run_attempt` say whether the call was made by a retried step: a task
run again after its process died (`podium.stores.replies`), or a LangGraph server run the
engine ran again; both are 1 for work done the first time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from podium.errors import ConfigurationError
from podium.storage.database import Cursor, Database

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS podium_usage (
        entry_id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        workflow TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        task_id TEXT,
        agent TEXT NOT NULL,
        model TEXT NOT NULL,
        input_tokens BIGINT NOT NULL,
        output_tokens BIGINT NOT NULL,
        cached_tokens BIGINT NOT NULL,
        cost_usd DOUBLE PRECISION NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        step_attempt INTEGER NOT NULL DEFAULT 1,
        run_attempt INTEGER NOT NULL DEFAULT 1
    )""",
    "CREATE INDEX IF NOT EXISTS podium_usage_tenant_at ON podium_usage (tenant_id, at)",
    "CREATE INDEX IF NOT EXISTS podium_usage_thread ON podium_usage (thread_id, tenant_id)",
]

#: Columns a table made by an older podium lacks (`Database.ensure_columns`).
ADDED_COLUMNS = {
    "step_attempt": "INTEGER NOT NULL DEFAULT 1",
    "run_attempt": "INTEGER NOT NULL DEFAULT 1",
}

GroupBy = Literal["tenant", "workflow", "agent", "model", "thread", "attempt"]
#: Most usage rows in one INSERT (14 parameters each; SQLite allows 32,766 per statement).
MAX_ROWS_PER_INSERT = 2000
#: Grouping name -> column. Only these fixed names ever reach the SQL text.
_COLUMNS: dict[str, str] = {
    "tenant": "tenant_id",
    "workflow": "workflow",
    "agent": "agent",
    "model": "model",
    "thread": "thread_id",
    "attempt": "step_attempt",
}
GROUPINGS: tuple[str, ...] = get_args(GroupBy)
#: The columns of a row as `_rows` makes it, named: an older table gained the newer ones
#: by `ALTER TABLE`, so the order of its columns is not this module's to assume.
_INSERTED = (
    "entry_id, tenant_id, workflow, thread_id, task_id, agent, model, input_tokens, "
    "output_tokens, cached_tokens, cost_usd, at, step_attempt, run_attempt"
)


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """One model call's usage and cost. `at` defaults to the time it is recorded;
    `step_attempt` and `run_attempt` are above 1 for a call made by a retried step."""

    tenant_id: str
    workflow: str
    thread_id: str
    task_id: str | None
    agent: str
    model: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: float
    at: float | None = None
    step_attempt: int = 1
    run_attempt: int = 1


@dataclass(frozen=True, slots=True)
class CostRow:
    """Sums over the calls that share `key` (a tenant, workflow, agent, model, thread or
    step attempt)."""

    key: str
    calls: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    total_tokens: int
    cost_usd: float


class UsageLedger:
    """Records model calls and reports their totals.

    Args:
        db: podium's database; the table is created if missing.
        clock: Seconds since the epoch; injected by tests.
    """

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        db.ensure_schema("usage", SCHEMA)
        db.ensure_columns("podium_usage", ADDED_COLUMNS)

    def record(self, entries: Sequence[UsageEntry]) -> None:
        """Insert every entry in one transaction (all or none).

        Raises:
            ConfigurationError: an entry with negative counts or cost, or no tenant.
        """
        rows = self._rows(entries)
        if not rows:
            return
        if len(rows) <= MAX_ROWS_PER_INSERT:  # the usual case: one statement, atomic on its own
            self._db.execute(*_insert(rows))
            return

        def insert(cur: Cursor) -> None:
            for start in range(0, len(rows), MAX_ROWS_PER_INSERT):
                cur.execute(*_insert(rows[start : start + MAX_ROWS_PER_INSERT]))

        self._db.transact(insert)

    def insert(self, entries: Sequence[UsageEntry]) -> tuple[str, list[Any]] | None:
        """One INSERT of `entries` (SQL with `?` marks, and parameters) that does nothing
        for a row already written, for a caller that runs it inside its own statement;
        None when there is nothing to insert.

        Raises:
            ConfigurationError: an entry with negative counts or cost, or no tenant.
        """
        rows = self._rows(entries)
        if not rows:
            return None
        return _insert(rows)

    def write(self, cur: Cursor, entries: Sequence[UsageEntry]) -> None:
        """Insert entries inside the caller's transaction (a reply and its bill commit
        together; see `podium.stores.replies`)."""
        rows = self._rows(entries)
        if rows:
            cur.execute(*_insert(rows))

    def _rows(self, entries: Sequence[UsageEntry]) -> list[tuple[Any, ...]]:
        for entry in entries:
            _validate(entry)
        now = self._clock()
        return [
            (
                uuid.uuid4().hex,
                e.tenant_id,
                e.workflow,
                e.thread_id,
                e.task_id,
                e.agent,
                e.model,
                e.input_tokens,
                e.output_tokens,
                e.cached_tokens,
                float(e.cost_usd),
                now if e.at is None else e.at,
                e.step_attempt,
                e.run_attempt,
            )
            for e in entries
        ]

    def totals(
        self,
        tenant_id: str | None = None,
        *,
        by: GroupBy,
        since: float | None = None,
        thread_id: str | None = None,
    ) -> list[CostRow]:
        """Sums grouped `by` one column, most expensive first (then most tokens).

        Args:
            tenant_id: The tenant whose calls count. `None` sums every tenant: only for
                an operator's all-tenants report, never on a tenant's behalf.
            by: "tenant", "workflow", "agent", "model", "thread" or "attempt" (the step
                attempt: 1 for first runs, 2 for calls of retried steps, ...).
            since: Only calls at or after this time (seconds since the epoch).
            thread_id: Only this thread's calls.

        Raises:
            ConfigurationError: an unknown grouping.
        """
        if by not in _COLUMNS:
            raise ConfigurationError(
                f"cannot group costs by {by!r}; group by one of: {', '.join(GROUPINGS)}"
            )
        where, params = _filters(tenant_id, since, thread_id)
        column = _COLUMNS[by]
        rows = self._db.query(
            f"SELECT {column} AS key, COUNT(*) AS calls, SUM(input_tokens) AS input_tokens, "
            "SUM(output_tokens) AS output_tokens, SUM(cached_tokens) AS cached_tokens, "
            f"SUM(cost_usd) AS cost_usd FROM podium_usage{where} GROUP BY {column}",
            params,
        )
        result = [_row(row) for row in rows]
        return sorted(result, key=lambda r: (-r.cost_usd, -r.total_tokens, r.key))

    def for_thread(self, thread_id: str, tenant_id: str) -> list[CostRow]:
        """A thread's totals per agent (the UI's cost panel)."""
        return self.totals(tenant_id, by="agent", thread_id=thread_id)

    def for_tasks(
        self, thread_id: str, tenant_id: str, *, since: float | None = None
    ) -> dict[str, CostRow]:
        """A thread's totals per task id, every call counted as it was made (so a task
        still running or waiting at a gate shows what it spent); supervisor calls, which
        belong to no task, are left out. Task ids repeat in each round of a thread: pass
        `since`, the time the round's tasks were planned, for one round's."""
        where, params = _filters(tenant_id, since, thread_id)
        rows = self._db.query(
            "SELECT task_id AS key, COUNT(*) AS calls, SUM(input_tokens) AS input_tokens, "
            "SUM(output_tokens) AS output_tokens, SUM(cached_tokens) AS cached_tokens, "
            f"SUM(cost_usd) AS cost_usd FROM podium_usage{where} AND task_id IS NOT NULL "
            "GROUP BY task_id",
            params,
        )
        return {str(row["key"]): _row(row) for row in rows}


def _filters(
    tenant_id: str | None, since: float | None, thread_id: str | None
) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for clause, value in (
        ("tenant_id = ?", tenant_id),
        ("at >= ?", since),
        ("thread_id = ?", thread_id),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _insert(rows: Sequence[tuple[Any, ...]]) -> tuple[str, list[Any]]:
    """One multi-row INSERT of usage rows (SQL and parameters); a row already there (the
    same insert run again after its answer was lost) is left as it is."""
    marks = ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" for _ in rows)
    sql = f"INSERT INTO podium_usage ({_INSERTED}) VALUES {marks} ON CONFLICT (entry_id) DO NOTHING"
    return sql, [v for row in rows for v in row]


def _row(row: dict[str, Any]) -> CostRow:
    # PostgreSQL sums BIGINT columns into NUMERIC (Decimal); normalise to int and float.
    tokens_in, tokens_out = int(row["input_tokens"]), int(row["output_tokens"])
    return CostRow(
        key=str(row["key"]),
        calls=int(row["calls"]),
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cached_tokens=int(row["cached_tokens"]),
        total_tokens=tokens_in + tokens_out,
        cost_usd=float(row["cost_usd"]),
    )


def _validate(entry: UsageEntry) -> None:
    if not entry.tenant_id:
        raise ConfigurationError(
            f"usage entry for thread {entry.thread_id!r} has no tenant; set tenant_id"
        )
    counts = {
        "input_tokens": entry.input_tokens,
        "output_tokens": entry.output_tokens,
        "cached_tokens": entry.cached_tokens,
        "cost_usd": entry.cost_usd,
    }
    for name, value in counts.items():
        if value < 0:
            raise ConfigurationError(
                f"usage entry for agent {entry.agent!r} has {name}={value!r}; "
                "counts and costs must be 0 or more"
            )
