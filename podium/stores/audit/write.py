"""Writing audit chains: link each batch to its tenant's head and insert it, never forking.

The locked path reads the head under the chain's lock (a PostgreSQL advisory lock; SQLite
serialises writers) and inserts the sealed rows in the same transaction. A process also
remembers the last link it wrote per tenant and, for a one-tenant batch, inserts after it
without reading the head again: on PostgreSQL in one statement that takes the chain's lock
first (so it queues with locked writers instead of starving them), on SQLite in one
transaction. The primary key (tenant, seq) refuses a batch linked to a stale head (another
process appended since); that batch takes the locked path, which is retried when a writer
took the next sequence number first. A head is remembered only after its commit.

A batch may carry one more statement (`also`, the step's usage rows) that commits with it,
in the same statement on the fast path: a step's records cost one round trip.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from podium.storage.database import Cursor, Database, lock_key
from podium.stores.audit.chain import COLUMNS, GENESIS, seal
from podium.stores.audit.events import AuditEvent

#: One more statement (SQL with `?` marks, and its parameters) written with a batch.
Statement = tuple[str, list[Any]]


class Joinable(Protocol):
    """A write that commits with an audit batch and says whether it took effect (a
    budget settlement: `podium.stores.budgets.store.Settlement`)."""

    def ctes(self, name: str) -> Statement:
        """Common table expressions for a PostgreSQL `WITH`; the one called `name` has a
        row when the write took effect."""
        ...

    def turn(self, cur: Cursor) -> bool:
        """The write, inside `cur`'s transaction; whether it took effect."""
        ...


@dataclass
class Joined:
    """What commits with an audit batch: one statement (`also`) and writes that report
    whether they took effect (`joinables`; `took` holds their answers once written)."""

    also: Statement | None = None
    joinables: Sequence[Joinable] = ()
    took: list[bool] = field(default_factory=list)

    def run(self, cur: Cursor) -> None:
        """Write everything within `cur`'s transaction."""
        if self.also is not None:
            cur.execute(*self.also)
        self.took = [j.turn(cur) for j in self.joinables]


_INSERT = f"INSERT INTO podium_audit_events ({', '.join(COLUMNS)}) VALUES "
_ROW_PLACEHOLDERS = "(" + ", ".join("?" for _ in COLUMNS) + ")"
_PG_INSERT = (
    f"INSERT INTO podium_audit_events ({', '.join(COLUMNS)}) SELECT * FROM unnest("
    + ", ".join("?::bigint[]" if name in ("seq", "at_us") else "?::text[]" for name in COLUMNS)
    + ")"
)
_PG_LOCKED_INSERT = (
    "WITH chain_lock AS (SELECT pg_advisory_xact_lock(?) AS held) "
    f"INSERT INTO podium_audit_events ({', '.join(COLUMNS)}) SELECT rows.* FROM chain_lock, "
    "unnest("
    + ", ".join("?::bigint[]" if name in ("seq", "at_us") else "?::text[]" for name in COLUMNS)
    + f") AS rows ({', '.join(COLUMNS)})"
)
_ROWS_PER_INSERT = 50  # 750 parameters: under SQLite's oldest limit of 999
#: Tries of the locked path when fast-path writers keep taking the next sequence number.
_LOCKED_ATTEMPTS = 20


def _is_duplicate(exc: BaseException) -> bool:
    """A (tenant, seq) already taken: another writer linked to the same head first."""
    if isinstance(exc, sqlite3.IntegrityError):
        return "UNIQUE" in str(exc)
    try:
        from psycopg.errors import UniqueViolation
    except ImportError:  # pragma: no cover - SQLite-only installs
        return False
    return isinstance(exc, UniqueViolation)


class ChainWriter:
    """Appends batches to per-tenant chains (see the module docstring)."""

    def __init__(self, db: Database, key: bytes | None) -> None:
        self._db, self._key = db, key
        self._heads: dict[str, tuple[int, str]] = {}  # tenant -> (seq, hash) last written
        self._heads_lock = threading.Lock()

    def append(
        self, events: list[AuditEvent], now: float, also: Joined | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """Seal and insert `events`, and write `also` in the same transaction; the stored
        rows per tenant, in order. `also` must be safe to write again after a rollback
        (the batch is retried when another writer linked to the same head first)."""
        groups: dict[str, list[AuditEvent]] = defaultdict(list)
        for event in events:
            groups[event.tenant_id].append(event)
        # Locks in ascending key order: two multi-tenant batches cannot deadlock.
        tenants = sorted(groups, key=lambda t: lock_key(f"audit:{t}"))
        if len(tenants) == 1:
            rows = self._append_after_known_head(tenants[0], events, now, also)
            if rows is not None:
                return {tenants[0]: rows}
        chains = self._append_locked(tenants, groups, now, also)
        with self._heads_lock:  # committed: these are the heads now
            for tenant, written in chains.items():
                self._heads[tenant] = (written[-1]["seq"], written[-1]["hash"])
        return chains

    def _append_locked(
        self,
        tenants: list[str],
        groups: dict[str, list[AuditEvent]],
        now: float,
        also: Joined | None,
    ) -> dict[str, list[dict[str, Any]]]:
        """Read each chain's head under its lock and link the batch to it (retried if
        the primary key says another writer took the next sequence number first)."""

        def link(cur: Cursor) -> dict[str, list[dict[str, Any]]]:
            self._lock_more(cur, tenants)
            if also is not None:
                also.run(cur)
            return {tenant: self._write(cur, tenant, groups[tenant], now) for tenant in tenants}

        for attempt in range(1, _LOCKED_ATTEMPTS + 1):
            try:
                return self._db.transact(link, lock=f"audit:{tenants[0]}")
            except Exception as exc:
                if not _is_duplicate(exc) or attempt == _LOCKED_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _append_after_known_head(
        self, tenant: str, events: list[AuditEvent], now: float, also: Joined | None
    ) -> list[dict[str, Any]] | None:
        """Insert the batch after the head this process last wrote; None when there is
        none, or when it was stale (the primary key refused the batch)."""
        with self._heads_lock:
            known = self._heads.get(tenant)
            if known is None:
                return None
            rows = self._chain(events, *known, now)
            try:
                if self._db.dialect == "postgres":
                    # One statement (atomic, one round trip) that takes the chain's lock
                    # first, so it queues with locked writers instead of starving them.
                    arrays = [[row[name] for row in rows] for name in COLUMNS]
                    lock = lock_key(f"audit:{tenant}")
                    if also is None:
                        self._db.execute(_PG_LOCKED_INSERT, [lock, *arrays])
                    else:
                        self._insert_joined(lock, arrays, also)
                else:  # SQLite serialises writers: the head need not be read again

                    def insert(cur: Cursor) -> None:
                        if also is not None:
                            also.run(cur)
                        self._insert(cur, rows)

                    self._db.transact(insert)
            except Exception as exc:
                if not _is_duplicate(exc):
                    raise
                if not self._written(tenant, rows[-1]):
                    del self._heads[tenant]
                    return None
            self._heads[tenant] = (rows[-1]["seq"], rows[-1]["hash"])
        return rows

    def _insert_joined(self, lock: int, arrays: list[list[Any]], also: Joined) -> None:
        """The batch after its known head with `also` in the same statement: its common
        table expressions run after the chain's lock is taken, and the statement answers
        which joined writes took effect."""
        ctes, params = ["chain_lock AS (SELECT pg_advisory_xact_lock(?) AS held)"], [lock]
        if also.also is not None:
            ctes.append(f"also_written AS ({also.also[0]})")
            params += also.also[1]
        names = [f"joined_{n}" for n in range(len(also.joinables))]
        for name, joinable in zip(names, also.joinables, strict=True):
            sql, more = joinable.ctes(name)
            ctes.append(sql)
            params += more
        ctes.append(f"audit_rows AS ({_PG_LOCKED_INSERT.split(' AS held) ', 1)[1]})")
        took = ", ".join(f"EXISTS (SELECT 1 FROM {name}) AS {name}" for name in names)
        [row] = self._db.query(
            f"WITH {', '.join(ctes)} SELECT {took or 'true AS written'}", [*params, *arrays]
        )
        also.took = [bool(row[name]) for name in names]

    def _written(self, tenant: str, last: dict[str, Any]) -> bool:
        """Whether the batch ending in `last` is in the chain: the statement was retried
        after its answer was lost, so the primary key refused the batch's own rows (not a
        stale head's); the hash links to everything before it, so it is no one else's."""
        found = self._db.query(
            "SELECT hash FROM podium_audit_events WHERE tenant_id = ? AND seq = ?",
            (tenant, last["seq"]),
        )
        return bool(found) and found[0]["hash"] == last["hash"]

    def _chain(
        self, events: list[AuditEvent], seq: int, prev: str, now: float
    ) -> list[dict[str, Any]]:
        rows = []
        for event in events:
            seq += 1
            row = seal(_new_row(event, seq, prev, now), self._key)
            rows.append(row)
            prev = row["hash"]
        return rows

    def _lock_more(self, cur: Cursor, tenants: list[str]) -> None:
        if self._db.dialect != "postgres":
            return  # SQLite's BEGIN IMMEDIATE already serialises every writer
        taken = {lock_key(f"audit:{tenants[0]}")}
        for tenant in tenants[1:]:
            key = lock_key(f"audit:{tenant}")
            if key not in taken:
                cur.execute("SELECT pg_advisory_xact_lock(?)", (key,))
                taken.add(key)

    def _write(
        self, cur: Cursor, tenant: str, events: list[AuditEvent], now: float
    ) -> list[dict[str, Any]]:
        last = cur.query(
            "SELECT seq, hash FROM podium_audit_events WHERE tenant_id = ? "
            "ORDER BY seq DESC LIMIT 1",
            (tenant,),
        )
        seq, prev = (last[0]["seq"], last[0]["hash"]) if last else (0, GENESIS)
        rows = self._chain(events, seq, prev, now)
        self._insert(cur, rows)
        return rows

    def _insert(self, cur: Cursor, rows: list[dict[str, Any]]) -> None:
        if self._db.dialect == "postgres":
            # One array per column: a short statement whatever the batch size, which psycopg
            # parses once and caches (a 750-parameter VALUES list is re-parsed every time).
            cur.execute(_PG_INSERT, [[row[name] for row in rows] for name in COLUMNS])
            return
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start : start + _ROWS_PER_INSERT]
            cur.execute(
                _INSERT + ", ".join([_ROW_PLACEHOLDERS] * len(chunk)),
                [row[name] for row in chunk for name in COLUMNS],
            )


def _new_row(event: AuditEvent, seq: int, prev: str, now: float) -> dict[str, Any]:
    return {
        "tenant_id": event.tenant_id,
        "seq": seq,
        "at_us": micros(now if event.at is None else event.at),
        "workflow": event.workflow,
        "thread_id": event.thread_id,
        "run_id": event.run_id,
        "task_id": event.task_id,
        "checkpoint_id": event.checkpoint_id,
        "actor_type": event.actor.type,
        "actor_name": event.actor.name,
        "kind": event.kind,
        "payload": event.payload_json,
        "prev_hash": prev,
    }


def micros(seconds: float) -> int:
    return round(seconds * 1_000_000)
