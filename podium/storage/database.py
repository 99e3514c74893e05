"""podium's own tables: one small SQL layer over SQLite (file or in-memory) and PostgreSQL.

SQL is written once with `?` placeholders and portable types (TEXT, BIGINT,
DOUBLE PRECISION); PostgreSQL gets `%s`. Every table name starts with `podium_`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import sys
import threading
import zlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any, Protocol, TypeVar

from podium.errors import DatabaseError
from podium.storage.faults import (
    DEFAULT_RETRY_FOR,
    CommitPending,
    DatabaseUnavailable,
    IdleCheck,
    aretry,
    is_transient,
    retry,
)
from podium.storage.urls import DatabaseURL

T = TypeVar("T")
#: Seconds one request for a pooled connection waits (retried up to `retry_for`).
POOL_WAIT = 5.0
#: Seconds a pool keeps reconnecting in the background (with its backoff: 1 s, doubling)
#: before it leaves the next attempt to the next request. Short, so a database that
#: comes back after a long outage is found at once, not after a backoff of minutes.
POOL_RECONNECT = 2.0


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...


class Database(ABC):
    """A connection (SQLite) or a pool (PostgreSQL) for podium's tables.

    All methods are thread-safe. Use `transact(body)` for several statements that must
    commit together; single `execute`/`query` calls commit on their own.
    """

    dialect: str
    #: Whether the data lives in this process only (`memory://`).
    in_memory: bool = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self.transaction() as cur:
            cur.execute(sql, params)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.transaction() as cur:
            return cur.query(sql, params)

    @abstractmethod
    def transaction(self, *, lock: str | None = None) -> AbstractContextManager[Cursor]:
        """A transaction; `lock` names an exclusive lock held until commit (cross-process
        on PostgreSQL, process-wide on SQLite, where writers are serialised anyway).

        A lost connection inside the `with` block is not retried (the block cannot be run
        again from here): store code uses `transact`, which runs the whole body again.
        """

    def transact(self, body: Callable[[Cursor], T], *, lock: str | None = None) -> T:
        """`body(cur)` in one transaction (holding `lock`, as `transaction`); returns what
        it returns.

        On PostgreSQL a connection lost anywhere in the transaction (taking a connection,
        BEGIN, the body's statements, COMMIT) runs the whole transaction again, with
        backoff, for up to the database's retry window (`podium.storage.faults`). `body`
        may therefore run more than once: it must act only through `cur`. It never runs
        again after a transaction that committed (see `PostgresDatabase.transact`).
        """
        with self.transaction(lock=lock) as cur:
            return body(cur)

    def ensure_schema(self, name: str, statements: Sequence[str]) -> None:
        """Run idempotent DDL once per database, safely against concurrent processes."""

        def create(cur: Cursor) -> None:
            for statement in statements:
                cur.execute(statement)

        self.transact(create, lock=f"schema:{name}")

    def ensure_columns(self, table: str, columns: Mapping[str, str]) -> None:
        """Add `columns` (name -> type and default) to `table` where it lacks them: a table
        made by an older podium gains what newer code writes, its rows the default."""
        sql = (
            "SELECT column_name AS name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?"
            if self.dialect == "postgres"
            else "SELECT name FROM pragma_table_info(?)"
        )
        if set(columns) <= {row["name"] for row in self.query(sql, (table,))}:
            return
        with self.transaction(lock=f"schema:{table}") as cur:
            present = {row["name"] for row in cur.query(sql, (table,))}
            for name, kind in columns.items():
                if name not in present:
                    cur.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    @abstractmethod
    def close(self) -> None:
        """Release the connection or pool."""


class _SqliteCursor:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(sql, tuple(params))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self._conn.execute(sql, tuple(params))
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, target: str) -> None:
        try:
            self._conn = sqlite3.connect(
                target, check_same_thread=False, isolation_level=None, timeout=30
            )
            if target != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise DatabaseError(
                f"cannot open SQLite database {target!r}: {exc}; check the path is writable"
            ) from exc
        self._lock = threading.RLock()
        self.in_memory = target == ":memory:"
        #: The database file (":memory:" for an in-memory database).
        self.target = target

    # A single read needs no write lock: no BEGIN IMMEDIATE / COMMIT around it (writes keep
    # theirs: an autocommit write that starts from a stale WAL snapshot fails at once).
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        if sql.lstrip()[:6].upper() != "SELECT":
            return super().query(sql, params)
        with self._lock:
            return _SqliteCursor(self._conn).query(sql, params)

    @contextmanager
    def transaction(self, *, lock: str | None = None) -> Iterator[Cursor]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteCursor(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _PgCursor:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(_pg(sql), tuple(params))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return list(self._conn.execute(_pg(sql), tuple(params)).fetchall())


@functools.lru_cache(maxsize=512)  # podium's statements are a few hundred fixed texts
def _pg(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresDatabase(Database):
    dialect = "postgres"

    def __init__(
        self, url: DatabaseURL, *, max_size: int = 16, retry_for: float = DEFAULT_RETRY_FOR
    ) -> None:
        import psycopg
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        check_postgres(url)
        self.url, self.retry_for = url, retry_for
        self._outage: DatabaseUnavailable | None = None
        idle = IdleCheck()
        self._pool = ConnectionPool(
            url.conninfo,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": 5},
            open=True,
            name="podium",
            # A connection that died while idle (server restart, terminated backend) is
            # replaced before it is handed out, instead of failing the next statement.
            check=idle.check,
            timeout=min(POOL_WAIT, max(0.5, retry_for)),
            reconnect_timeout=POOL_RECONNECT,
        )
        self._psycopg = psycopg
        self.async_pool: Any = None  # set by an async runtime (`use_async_pool`)

    def retrying(self, fn: Callable[[], T]) -> T:
        """`fn()`, retried through lost connections for `retry_for` seconds
        (`podium.storage.faults`); `fn` must be safe to run twice.

        Once the database was found unavailable, later calls try once until one succeeds,
        and a failure raises the same `DatabaseUnavailable` again: the clean-up after a
        stopped run (flushing buffers, closing) and the reads that report it must not wait
        the whole window again for every statement.
        """
        outage = self._outage
        if outage is not None:
            try:
                result = fn()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                raise outage.again() from exc
        else:
            try:
                result = retry(fn, url=self.url.masked, retry_for=self.retry_for)
            except DatabaseUnavailable as exc:
                self._outage = self._explained(exc)
                raise self._outage.again() from exc.__cause__
        self._outage = None
        return result

    async def aretrying(self, fn: Callable[[], Awaitable[T]]) -> T:
        """`retrying` for coroutines."""
        outage = self._outage
        if outage is not None:
            try:
                result = await fn()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                raise outage.again() from exc
        else:
            try:
                result = await aretry(fn, url=self.url.masked, retry_for=self.retry_for)
            except DatabaseUnavailable as exc:
                self._outage = await asyncio.to_thread(self._explained, exc)
                raise self._outage.again() from exc.__cause__
        self._outage = None
        return result

    def _explained(self, outage: DatabaseUnavailable) -> DatabaseUnavailable:
        """`outage`, with the server's own reason when all it says is that the pool had no
        connection to give: one direct connection attempt says why (refused, shutting
        down, a password...), or that the server answers and the pool was only busy."""
        from psycopg_pool import PoolTimeout

        if not isinstance(outage.__cause__, PoolTimeout):
            return outage
        try:
            self._psycopg.connect(self.url.conninfo, connect_timeout=2).close()
        except self._psycopg.Error as exc:
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        else:
            reason = f"{outage.reason}, while the server itself answers: the pool was busy"
        explained = DatabaseUnavailable(outage.url, outage.seconds, reason)
        explained.__cause__ = outage.__cause__
        return explained

    def _wait(self) -> float:
        """Seconds to wait for a pooled connection: short once the database is known down."""
        return 0.5 if self._outage is not None else min(POOL_WAIT, max(0.5, self.retry_for))

    def use_async_pool(self, pool: Any) -> None:
        """Let async code run single statements on `pool` (a psycopg AsyncConnectionPool
        in autocommit with dict rows) instead of a worker thread (`aexecute`, `aquery`)."""
        self.async_pool = pool

    async def aexecute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """`execute` on the event loop (needs `use_async_pool`)."""

        async def once() -> None:
            async with self.async_pool.connection(timeout=self._wait()) as conn:
                await conn.execute(_pg(sql), tuple(params))

        await self.aretrying(once)

    async def aquery(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """`query` on the event loop (needs `use_async_pool`)."""

        async def once() -> list[dict[str, Any]]:
            async with self.async_pool.connection(timeout=self._wait()) as conn:
                cur = await conn.execute(_pg(sql), tuple(params))
                return list(await cur.fetchall())

        return await self.aretrying(once)

    # A single statement runs in autocommit: atomic on its own, and one round trip
    # instead of three (BEGIN, the statement, COMMIT). A lost connection aborts it
    # uncommitted, so it is retried (`retrying`).
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        def once() -> None:
            with self._pool.connection(timeout=self._wait()) as conn:
                conn.execute(_pg(sql), tuple(params))

        self.retrying(once)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        def once() -> list[dict[str, Any]]:
            with self._pool.connection(timeout=self._wait()) as conn:
                return list(conn.execute(_pg(sql), tuple(params)).fetchall())

        return self.retrying(once)

    def transact(self, body: Callable[[Cursor], T], *, lock: str | None = None) -> T:
        """`Database.transact`: the whole transaction is retried through lost connections.

        A transaction whose connection was lost before COMMIT did not commit (PostgreSQL
        aborts the transaction of a lost session), so it runs again from BEGIN. A COMMIT
        whose answer was lost may have committed or not: the transaction's id, read at
        BEGIN, is looked up (`txid_status`) on a new connection, and the transaction runs
        again only if it aborted; if it committed, the body's result is returned. So each
        transaction takes effect once, and BEGIN, the lock and the id cost one round trip.
        """
        unresolved: list[tuple[int, Any]] = []  # (xid, result) of a COMMIT with no answer

        def once() -> T:
            if unresolved:
                xid, result = unresolved[-1]
                if self._committed(xid):
                    return result  # type: ignore[no-any-return]
                unresolved.clear()  # it aborted: run the transaction again
            with self._pool.connection(timeout=self._wait()) as conn:
                return self._attempt(conn, body, lock, unresolved)

        return self.retrying(once)

    @staticmethod
    def _attempt(
        conn: Any, body: Callable[[Cursor], T], lock: str | None, unresolved: list[Any]
    ) -> T:
        begin = "BEGIN; SELECT txid_current() AS xid"
        if lock is not None:  # an int from lock_key: nothing to escape
            begin += f", pg_advisory_xact_lock({lock_key(lock)}) IS NULL AS locked"
        try:
            cur = conn.execute(begin)
            cur.nextset()
            xid = int(cur.fetchone()["xid"])
            result = body(_PgCursor(conn))
        except BaseException:
            _rollback(conn)
            raise
        try:
            conn.execute("COMMIT")
        except Exception as exc:
            if is_transient(exc):
                unresolved.append((xid, result))  # committed or not: `transact` looks it up
            raise
        return result

    def _committed(self, xid: int) -> bool:
        """Whether transaction `xid` committed; raises a transient fault while it is
        still in progress (its session has not ended yet), so `retrying` asks again."""
        with self._pool.connection(timeout=self._wait()) as conn:
            row: Any = conn.execute("SELECT txid_status(%s) AS status", (xid,)).fetchone()
        status = row["status"] if row else None
        if status == "in progress":
            raise CommitPending(f"transaction {xid} is still committing")
        return bool(status == "committed")

    @contextmanager
    def transaction(self, *, lock: str | None = None) -> Iterator[Cursor]:
        # Getting a connection, BEGIN and the lock are retried through lost connections;
        # the body cannot be run again from here, so a fault inside it propagates (the
        # transaction did not commit). Store code uses `transact` instead.
        def begin() -> tuple[Any, ExitStack]:
            stack = ExitStack()
            try:
                conn = stack.enter_context(self._pool.connection(timeout=self._wait()))
                stack.enter_context(conn.transaction())
                if lock is not None:
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(lock),))
            except BaseException:
                stack.__exit__(*sys.exc_info())
                raise
            return conn, stack

        conn, stack = self.retrying(begin)
        with stack:
            yield _PgCursor(conn)

    @contextmanager
    def session_lock(self, name: str) -> Iterator[None]:
        """A cross-process lock held outside any transaction.

        LangGraph's migrations run `CREATE INDEX CONCURRENTLY`, which waits for every open
        transaction, so they must not run under a transaction-scoped lock.
        """
        with self._pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (lock_key(name),))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(name),))

    @property
    def pool(self) -> Any:
        return self._pool

    def close(self) -> None:
        self._pool.close()


def _rollback(conn: Any) -> None:
    """Roll back an open transaction after its body failed (nothing to do on a connection
    that was lost: the server aborted the transaction, and the pool discards it)."""
    if conn.closed or conn.info.transaction_status == 0:  # IDLE: no transaction open
        return
    with contextlib.suppress(Exception):  # a broken connection: the server aborts it anyway
        conn.execute("ROLLBACK")


def lock_key(name: str) -> int:
    """A stable 32-bit key for an advisory lock name."""
    return zlib.crc32(f"podium:{name}".encode())


def check_postgres(url: DatabaseURL) -> None:
    """Connect once to give a clear error (masked URL, server's reason) before pooling."""
    import psycopg

    try:
        psycopg.connect(url.conninfo, connect_timeout=5).close()
    except UnicodeError:  # the host is no valid name (e.g. "..."): it cannot even be looked up
        raise DatabaseError(
            f"cannot connect to {url.masked}: the host in the URL is not a valid host name; "
            "write it as postgresql://user:password@host:5432/dbname"
        ) from None
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DatabaseError(
            f"cannot connect to {url.masked}: {reason}. Check that PostgreSQL is running, "
            "that host, port, user and database in the URL are right, and that the user may log in"
        ) from None


def open_database(url: DatabaseURL, *, retry_for: float = DEFAULT_RETRY_FOR) -> Database:
    """Open podium's tables for a parsed URL (memory:// uses an in-memory SQLite).

    Args:
        url: The parsed URL.
        retry_for: Seconds a PostgreSQL operation retries a lost connection.
    """
    if url.kind == "memory":
        return SqliteDatabase(":memory:")
    if url.kind == "sqlite":
        assert url.path is not None
        try:
            url.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(
                f"cannot create the directory for {url.raw!r}: {exc}; pick a writable path"
            ) from exc
        return SqliteDatabase(str(url.path))
    return PostgresDatabase(url, retry_for=retry_for)
