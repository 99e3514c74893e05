"""The tamper-evident audit log: one append-only hash chain of events per tenant.

Each row's hash covers its content and the previous row's hash (see `_audit_chain`), so
editing, deleting, reordering or inserting rows breaks the chain where it happened, and a
head stored elsewhere (`head()`) exposes a truncated tail. With a key the hashes are
HMAC-SHA256: someone who can write the table but lacks the key cannot rewrite history
without `verify` saying so. Tenants have separate chains and locks, so they never contend.

Checking an export outside podium, line by line::

    row = json.loads(line); expected = row.pop("hash")
    message = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    hashlib.sha256(message.encode()).hexdigest() == expected   # or hmac.new(key, ...)
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from podium.errors import AuditError
from podium.storage.database import Database
from podium.stores.audit.buffer import AuditBuffer
from podium.stores.audit.chain import GENESIS, check_chain
from podium.stores.audit.events import (
    ACTOR_TYPES,
    KINDS,
    PROBLEMS,
    Actor,
    AuditEvent,
    ChainReport,
    Head,
    Problem,
    StoredEvent,
    VerifyReport,
)
from podium.stores.audit.write import ChainWriter, Joined, micros

__all__ = [
    "ACTOR_TYPES",
    "GENESIS",
    "KINDS",
    "PROBLEMS",
    "Actor",
    "AuditBuffer",
    "AuditError",
    "AuditEvent",
    "AuditLog",
    "ChainReport",
    "Head",
    "Problem",
    "StoredEvent",
    "VerifyReport",
    "content_hash",
]

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS podium_audit_events (
        tenant_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        at_us BIGINT NOT NULL,
        workflow TEXT,
        thread_id TEXT,
        run_id TEXT,
        task_id TEXT,
        checkpoint_id TEXT,
        actor_type TEXT NOT NULL,
        actor_name TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        mode TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (tenant_id, seq)
    )""",
    "CREATE INDEX IF NOT EXISTS podium_audit_thread "
    "ON podium_audit_events (tenant_id, thread_id, seq)",
    "CREATE INDEX IF NOT EXISTS podium_audit_time ON podium_audit_events (tenant_id, at_us)",
]
_PAGE = 1000


def content_hash(content: str | bytes) -> str:
    """`"sha256:<hex>"` of a model input or output, to record instead of the text."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    return "sha256:" + hashlib.sha256(data).hexdigest()


class AuditLog:
    """Append events to per-tenant hash chains; read, export and verify them.

    Args:
        db: podium's database.
        key: HMAC key. Entry points read it from PODIUM_AUDIT_KEY. Without it rows are
            plain SHA-256 and anyone who can write the table can forge a consistent chain.
        clock: Seconds since the epoch, for events that carry no `at`.
    """

    def __init__(
        self, db: Database, *, key: bytes | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        if key is not None and (not isinstance(key, bytes) or not key):
            raise AuditError(f"audit key {key!r} must be non-empty bytes (or None for SHA-256)")
        self._db, self._key, self._clock = db, key, clock
        self._writer = ChainWriter(db, key)
        db.ensure_schema("audit", SCHEMA)

    @property
    def mode(self) -> str:
        """The hash mode of new rows: "hmac-sha256" with a key, else "sha256"."""
        return "hmac-sha256" if self._key is not None else "sha256"

    # -- writing --------------------------------------------------------------------------

    def append(self, events: Sequence[AuditEvent]) -> list[StoredEvent]:
        """Write a batch in one transaction, each tenant's events under its chain's lock.

        Returns the stored events in the order given. Concurrent writers (threads, or
        processes on PostgreSQL) queue on the per-tenant lock, so chains never fork
        (`podium.stores.audit.write`).
        """
        events = list(events)
        if not events:
            return []
        chains = self._writer.append(events, self._clock())
        written = {tenant: iter([_stored(r) for r in rows]) for tenant, rows in chains.items()}
        return [next(written[event.tenant_id]) for event in events]

    def write(self, events: Sequence[AuditEvent], also: Joined | None = None) -> None:
        """`append` without reading the stored events back (the buffer's flush), with
        `also` (written again if the batch is retried) committed in the same
        transaction."""
        if events:
            self._writer.append(list(events), self._clock(), also)

    # -- reading --------------------------------------------------------------------------

    def tenants(self) -> list[str]:
        """Every tenant with at least one event, sorted."""
        rows = self._db.query(
            "SELECT DISTINCT tenant_id FROM podium_audit_events ORDER BY tenant_id"
        )
        return [row["tenant_id"] for row in rows]

    def head(self, tenant_id: str) -> Head:
        """The tenant's last link (seq 0 and the genesis hash for an empty chain)."""
        rows = self._db.query(
            "SELECT seq, hash FROM podium_audit_events WHERE tenant_id = ? "
            "ORDER BY seq DESC LIMIT 1",
            (tenant_id,),
        )
        return Head(tenant_id, rows[0]["seq"], rows[0]["hash"]) if rows else _empty(tenant_id)

    def events(
        self,
        tenant_id: str,
        *,
        kind: str | None = None,
        thread_id: str | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """The tenant's events in chain order, optionally filtered.

        Args:
            since: Only events at or after this time (seconds since the epoch).
            limit: At most this many, the earliest first.
        """
        where: list[str] = ["tenant_id = ?"]
        params: list[Any] = [tenant_id]
        for clause, value in (
            ("kind = ?", kind),
            ("thread_id = ?", thread_id),
            ("at_us >= ?", None if since is None else micros(since)),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = f"SELECT * FROM podium_audit_events WHERE {' AND '.join(where)} ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [_stored(row) for row in self._db.query(sql, params)]

    def timeline(self, thread_id: str, tenant_id: str) -> list[StoredEvent]:
        """Everything recorded for one thread of the tenant, in order."""
        return self.events(tenant_id, thread_id=thread_id)

    def export(self, tenant_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Stored rows as JSON-ready dicts (payload as an object), tenant by tenant, in order.

        Each dict is exactly what was hashed plus `hash`, so an export can be checked
        without podium (see the module docstring).
        """
        for tenant in [tenant_id] if tenant_id is not None else self.tenants():
            for row in self._rows(tenant):
                yield {**row, "payload": _payload(row["payload"])}

    def _rows(self, tenant_id: str) -> Iterator[dict[str, Any]]:
        """The tenant's rows in (seq, hash) order, a page at a time, duplicates included."""
        seq, hash_ = -(2**62), ""
        while True:
            page = self._db.query(
                "SELECT * FROM podium_audit_events WHERE tenant_id = ? "
                "AND seq >= ? AND (seq > ? OR hash > ?) ORDER BY seq, hash LIMIT ?",
                (tenant_id, seq, seq, hash_, _PAGE),
            )
            yield from page
            if len(page) < _PAGE:
                return
            seq, hash_ = page[-1]["seq"], page[-1]["hash"]

    # -- verifying ------------------------------------------------------------------------

    def verify(
        self, tenant_id: str | None = None, *, head: Head | Iterable[Head] | None = None
    ) -> VerifyReport:
        """Recompute chains: every tenant's (None), or one; a report per tenant.

        Args:
            head: Head(s) stored earlier; a tenant's chain must still reach its head with
                the same hash, which exposes a deleted tail. A tenant named only by a
                head is verified too (its rows may all be gone).
        """
        heads = {h.tenant_id: h for h in ([head] if isinstance(head, Head) else head or [])}
        if tenant_id is not None:
            stray = sorted(set(heads) - {tenant_id})
            if stray:
                raise AuditError(
                    f"head(s) for tenant(s) {stray!r} given to verify tenant {tenant_id!r}; "
                    "pass the head of the tenant you verify"
                )
            tenants = [tenant_id]
        else:
            tenants = sorted(set(self.tenants()) | set(heads))
        return VerifyReport(tuple(self._verify(t, heads.get(t)) for t in tenants))

    def _verify(self, tenant_id: str, head: Head | None) -> ChainReport:
        def seq_of_hash(value: str) -> int | None:
            rows = self._db.query(
                "SELECT seq FROM podium_audit_events WHERE tenant_id = ? AND hash = ? "
                "ORDER BY seq LIMIT 1",
                (tenant_id, value),
            )
            return rows[0]["seq"] if rows else None

        return check_chain(
            tenant_id, self._rows(tenant_id), key=self._key, seq_of_hash=seq_of_hash, head=head
        )


def _stored(row: dict[str, Any]) -> StoredEvent:
    return StoredEvent(
        tenant_id=row["tenant_id"],
        seq=row["seq"],
        at=row["at_us"] / 1_000_000,
        kind=row["kind"],
        actor=_actor(row["actor_type"], row["actor_name"]),
        payload=_payload(row["payload"]),
        workflow=row["workflow"],
        thread_id=row["thread_id"],
        run_id=row["run_id"],
        task_id=row["task_id"],
        checkpoint_id=row["checkpoint_id"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        mode=row["mode"],
    )


def _actor(type_: str, name: str) -> Actor:
    try:
        return Actor(type_, name)
    except AuditError:  # an edited row; verify reports it, readers still see what is there
        actor = object.__new__(Actor)
        object.__setattr__(actor, "type", type_)
        object.__setattr__(actor, "name", name)
        return actor


def _payload(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:  # an edited row; verify reports it, readers still see the text
        return {"unparseable_payload": text}


def _empty(tenant_id: str) -> Head:
    return Head(tenant_id, 0, GENESIS)
