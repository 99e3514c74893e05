"""Transient database faults: which errors they are, and retrying through them in bounded time.

A PostgreSQL connection can drop under a running workflow: a restart, a failover, an
administrator's `pg_terminate_backend`, a network blip. The pools check a connection that
sat idle before handing it out (`IdleCheck`, their `check=` and `reset=`), so a connection
that died while idle is replaced unnoticed. What fails in flight is retried here with
backoff until `retry_for` seconds have passed; only then does the caller get
`DatabaseUnavailable`, which says which database (masked) and how to continue.

Only what is safe to run twice goes through `retry`/`aretry`: whole transactions of
podium's stores (`Database.transact`, which looks up a COMMIT whose answer was lost
instead of running it again), LangGraph's checkpoint writes (upserts), and single
autocommit statements. A statement whose connection died before the server got it did not
commit (PostgreSQL aborts the transaction of a terminated backend); one whose answer was
lost after it committed runs again, so podium's single statements change nothing the
second time: upserts, updates to a state, and inserts of rows keyed by ids made before the
first try that keep the row already there (`ON CONFLICT DO NOTHING`).
"""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from podium.errors import ConfigurationError, DatabaseError

T = TypeVar("T")

#: Seconds a database operation keeps retrying a lost connection before it gives up.
DEFAULT_RETRY_FOR = 30.0
#: The longest retry window a setting may ask for (an hour: past that, stop and resume).
MAX_RETRY_FOR = 3600.0
#: The environment variable entry points read the retry window from.
RETRY_FOR_ENV = "PODIUM_DB_RETRY_FOR"
_FIRST_DELAY, _MAX_DELAY = 0.05, 2.0
_SHUTDOWN = frozenset({"57P01", "57P02", "57P03"})


class DatabaseUnavailable(DatabaseError):
    """The database stayed unreachable for longer than the retry window.

    Attributes:
        url: The masked URL of the database.
        seconds: How long podium kept trying.
        reason: The last fault, in one line.
        thread_id: The thread whose run stopped, when it was a run that stopped.
    """

    def __init__(
        self, url: str, seconds: float, reason: str, *, thread_id: str | None = None
    ) -> None:
        self.url, self.seconds, self.reason, self.thread_id = url, seconds, reason, thread_id
        waited = f" for {seconds:.0f}s" if seconds >= 0.5 else ""
        text = (
            f"the database {url} was unreachable{waited} ({reason}); check that the server "
            "is running and reachable from here"
        )
        if thread_id is not None:
            text += (
                ". The run stopped at its last checkpoint: once the database is back, "
                f"continue it with `podium resume {thread_id}` (or invoke the thread again "
                "with input None)"
            )
        super().__init__(text)

    def again(self) -> DatabaseUnavailable:
        """The same fault, raised anew (an outage already reported, met again)."""
        return DatabaseUnavailable(self.url, self.seconds, self.reason, thread_id=self.thread_id)

    def for_thread(self, thread_id: str) -> DatabaseUnavailable:
        """The same fault, as the outcome of a run of `thread_id` (naming how to resume)."""
        named = DatabaseUnavailable(self.url, self.seconds, self.reason, thread_id=thread_id)
        named.__cause__ = self.__cause__
        return named


class CommitPending(Exception):
    """A transaction whose COMMIT got no answer is still in progress on the server: ask
    again shortly (a transient fault, see `Database.transact`)."""


class IdleCheck:
    """A pool's connection check that pings only connections not handed out for `after`
    seconds.

    A connection handed out a moment ago was alive a moment ago; pinging it again before
    every use would cost a round trip per statement (dozens per run). One that sat idle may
    have died with a restart or a terminated backend, so it is pinged before it is handed
    out. Whatever dies in between fails its statement, which `retry`/`aretry` take over.
    Pass the instance's `check`/`acheck` as the pool's `check=`. It counts from when the
    connection was last handed out, not returned (never later, so it pings at least as
    often), which needs no `reset=` callback: with one the pool hands every returned
    connection to a worker, a thread or task switch per statement.
    """

    def __init__(self, after: float = 1.0) -> None:
        self.after = after
        self._handed_at: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def _fresh(self, conn: Any) -> bool:
        now = time.monotonic()
        at = self._handed_at.get(conn)
        self._handed_at[conn] = now
        return at is not None and now - at < self.after

    def check(self, conn: Any) -> None:
        if not self._fresh(conn):
            from psycopg_pool import ConnectionPool

            ConnectionPool.check_connection(conn)

    async def acheck(self, conn: Any) -> None:
        if not self._fresh(conn):
            from psycopg_pool import AsyncConnectionPool

            await AsyncConnectionPool.check_connection(conn)


def retry_window(text: str | None) -> float:
    """The retry window a setting asks for (`PODIUM_DB_RETRY_FOR`): seconds, 0 to
    `MAX_RETRY_FOR`; unset or empty means `DEFAULT_RETRY_FOR`.

    Raises:
        ConfigurationError: for anything else, quoting it.
    """
    if text is None or not text.strip():
        return DEFAULT_RETRY_FOR
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= MAX_RETRY_FOR:  # also refuses NaN
        raise ConfigurationError(
            f"{RETRY_FOR_ENV}={text!r} is not a number of seconds from 0 to "
            f"{MAX_RETRY_FOR:.0f}; it is how long a lost database connection is retried "
            f"(default {DEFAULT_RETRY_FOR:.0f})"
        )
    return seconds


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` is a lost or refused connection (worth retrying), not a bad statement."""
    try:
        import psycopg
        from psycopg_pool import PoolTimeout
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    if isinstance(exc, PoolTimeout | CommitPending):
        return True
    if isinstance(exc, psycopg.OperationalError):
        # A lost connection fails on the client (no SQLSTATE) or says so: class 08
        # (connection exception), 57P01-57P03 (administrator or crash shutdown, cannot
        # connect now). Other operational errors (a cancelled statement, a lock timeout)
        # are answers, not faults, and retrying them would repeat what was stopped.
        state = getattr(exc, "sqlstate", None)
        return state is None or state.startswith("08") or state in _SHUTDOWN
    # A statement on a connection the server closed raises InterfaceError in some paths.
    return isinstance(exc, psycopg.InterfaceError) and "closed" in str(exc)


def is_database_fault(exc: BaseException) -> bool:
    """Whether `exc` means the database, not the task, failed (the run must stop, not
    dead-letter the task)."""
    return isinstance(exc, DatabaseUnavailable) or is_transient(exc)


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _delay(attempt: int) -> float:
    return min(_MAX_DELAY, _FIRST_DELAY * 2.0**attempt) * (0.5 + random.random() / 2)


def retry(
    fn: Callable[[], T],
    *,
    url: str,
    retry_for: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn`, retrying transient faults with backoff for up to `retry_for` seconds.

    Raises:
        DatabaseUnavailable: when the faults last longer than `retry_for`.
    """
    deadline = clock() + retry_for
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            wait = _delay(attempt)
            if clock() + wait > deadline:
                raise DatabaseUnavailable(url, retry_for, _reason(exc)) from exc
            attempt += 1
            sleep(wait)


async def aretry(
    fn: Callable[[], Awaitable[T]],
    *,
    url: str,
    retry_for: float,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """`retry` for coroutines."""
    deadline = clock() + retry_for
    attempt = 0
    while True:
        try:
            return await fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            wait = _delay(attempt)
            if clock() + wait > deadline:
                raise DatabaseUnavailable(url, retry_for, _reason(exc)) from exc
            attempt += 1
            await asyncio.sleep(wait)
