"""Writer locks: one run at a time writes a thread, across every process on one database.

A run (or resume) takes its thread's writer lock before LangGraph reads the thread's last
checkpoint, and gives it back when it ends, however it ends: completed, failed, paused at
a gate, cancelled, or its process killed. A second run of a busy thread is refused at once
with `ThreadBusy` instead of writing a second branch of the checkpoint history. Locks are
keyed by tenant and thread. Each back end uses a lock that dies with its holder, so a
crashed process never blocks a thread:

- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`), in a session the
  runtime keeps for its runs' locks. The server drops it at release, or when the session
  ends: when the holder's process dies (its kernel closes the socket, and the server
  notices at once), or when the holder's machine vanishes, once TCP keepalives give up
  on it (`KEEPALIVES`: about 25 seconds).
- SQLite: an exclusive `flock` on one lock file per thread, in a folder next to the
  database file (`podium.db-writers/`). The kernel drops it the moment its holder exits,
  however it exits. A lease row in the database would have to be renewed while the run
  runs, and would keep a killed holder's thread blocked until the lease ran out. flock is
  local to one machine, as SQLite's own locking is.
- memory://: a set in this process, where that database and its checkpoints live.

A PostgreSQL lock can also be lost while its run goes on: the server ends the lock
session (a terminated backend, a restart) and the process lives. Another process may
take the thread then. The holder finds out at the run's next step (`HeldThread.lost`,
which `podium.governance.writers.one_writer` asks between steps): it opens a new session
and takes the lock again, and when another run holds it by then, the run stops there
with `WriterLockLost` instead of writing a second branch. A step that was running when
the session ended may still have written its checkpoint.
"""

from __future__ import annotations

import functools
import hashlib
import os
import select
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from podium.errors import DatabaseError, ThreadBusy, WriterLockLost
from podium.storage.database import Database, PostgresDatabase, SqliteDatabase

#: Server-side TCP keepalives of a PostgreSQL lock session: a holder whose machine is gone
#: (no socket close ever arrives) loses its lock after idle + interval * count seconds.
KEEPALIVES = {"tcp_keepalives_idle": 10, "tcp_keepalives_interval": 5, "tcp_keepalives_count": 3}
#: Files a lock file may be replaced by under a taker before it gives up (never in practice).
_REOPENS = 50


def _digest(tenant_id: str, thread_id: str, size: int) -> bytes:
    text = f"podium-writer\0{tenant_id}\0{thread_id}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(text, digest_size=size).digest()


def lock_key(tenant_id: str, thread_id: str) -> int:
    """The signed 64-bit advisory-lock key of a tenant's thread."""
    return int.from_bytes(_digest(tenant_id, thread_id, 8), "big", signed=True)


class HeldThread:
    """A thread's writer lock, held until `release` (which may be called more than once,
    from any thread)."""

    def __init__(
        self,
        tenant_id: str,
        thread_id: str,
        release: Callable[[], None],
        *,
        suspect: Callable[[], bool] | None = None,
        lost: Callable[[], str | None] | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.thread_id = thread_id
        self._release = release
        self._suspect = suspect
        self._lost = lost
        self._guard = threading.Lock()
        self._held = True

    def suspect(self) -> bool:
        """Whether the lock may have been lost (no I/O: cheap enough for every step)."""
        return self._suspect is not None and self._held and self._suspect()

    def check(self) -> None:
        """Make sure the lock is still held, taking it again on a new session if its
        session ended (may do I/O: call it when `suspect()`).

        Raises:
            WriterLockLost: another run holds the thread now.
        """
        holder = self._lost() if self._lost is not None and self._held else None
        if holder is not None:
            raise WriterLockLost(self.thread_id, self.tenant_id, holder)

    @property
    def held(self) -> bool:
        return self._held

    @property
    def key(self) -> tuple[str, str]:
        """(tenant, thread) of the lock."""
        return (self.tenant_id, self.thread_id)

    def release(self) -> None:
        with self._guard:
            if not self._held:
                return
            self._held = False
        self._release()

    def __repr__(self) -> str:
        state = "held" if self._held else "released"
        return f"HeldThread({self.tenant_id!r}, {self.thread_id!r}, {state})"


class ThreadWriters(ABC):
    """The writer locks of one runtime database."""

    @abstractmethod
    def acquire(self, tenant_id: str, thread_id: str) -> HeldThread:
        """Take the thread's writer lock without waiting.

        Raises:
            ThreadBusy: when another run (in any process) holds it.
        """

    def close(self) -> None:  # noqa: B027 - most back ends hold nothing to close
        """Let go of what the locks live on (the runtime is closing: no run is running)."""


class MemoryWriters(ThreadWriters):
    """Writer locks of a memory:// runtime: a set in this process."""

    def __init__(self) -> None:
        self._held: set[tuple[str, str]] = set()
        self._guard = threading.Lock()

    def acquire(self, tenant_id: str, thread_id: str) -> HeldThread:
        key = (tenant_id, thread_id)
        with self._guard:
            if key in self._held:
                raise ThreadBusy(thread_id, tenant_id, f"another run in pid {os.getpid()}")
            self._held.add(key)

        def release() -> None:
            with self._guard:
                self._held.discard(key)

        return HeldThread(tenant_id, thread_id, release)


class FileWriters(ThreadWriters):
    """Writer locks of a SQLite database: `flock` on one file per thread in `folder`.

    flock locks belong to an open file, not to a process, so two runs in one process
    exclude each other as two processes do. A lock file is removed by its holder on
    release (while still locked); a taker that locked a file which was removed meanwhile
    sees that its file is no longer the one at the path and opens it again.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def acquire(self, tenant_id: str, thread_id: str) -> HeldThread:
        import fcntl

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(
                f"cannot create the writer-lock folder {str(self.folder)!r}: {exc}; the "
                "folder of the SQLite database must be writable"
            ) from exc
        path = self.folder / f"{_digest(tenant_id, thread_id, 16).hex()}.lock"
        for _ in range(_REOPENS):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
                os.close(fd)
                raise ThreadBusy(thread_id, tenant_id, holder) from None
            except BaseException:
                os.close(fd)
                raise
            if _is_at(fd, path):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
                return HeldThread(
                    tenant_id, thread_id, functools.partial(_unlink_and_close, fd, path)
                )
            os.close(fd)  # its holder removed it as we opened it: open the new one
        raise DatabaseError(f"the writer-lock file {str(path)!r} keeps being replaced")


def _is_at(fd: int, path: Path) -> bool:
    try:
        at = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (at.st_dev, at.st_ino) == (mine.st_dev, mine.st_ino)


def _unlink_and_close(fd: int, path: Path) -> None:
    # Removed while still locked, so no one takes this file after us (see FileWriters).
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


class PostgresWriters(ThreadWriters):
    """Writer locks of a PostgreSQL database: session advisory locks on one connection.

    The locks of all of this runtime's runs live in one session of their own, opened on
    first use: not a pooled connection (it is held as long as any run runs, which would
    starve the pool), and not one per run (a busy process would need a connection per
    running run). A session lock taken twice in one session is granted twice, so runs of
    this process are kept apart here, before PostgreSQL is asked. When the session is
    found lost (a restart, a terminated backend), the next use opens a new one and takes
    the locks still held here again.
    """

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db
        self._guard = threading.Lock()
        self._conn: Any = None
        self._held: set[int] = set()
        #: Locks of runs still running that a new session could not take again, with who
        #: holds them now.
        self._lost: dict[int, str] = {}

    def acquire(self, tenant_id: str, thread_id: str) -> HeldThread:
        key = lock_key(tenant_id, thread_id)
        with self._guard:
            if key in self._held:
                raise ThreadBusy(thread_id, tenant_id, f"another run in pid {os.getpid()}")
            # Retried through a lost connection: a session that died after it took the
            # lock took the lock with it, so trying again is safe.
            holder = self._db.retrying(lambda: self._try(key))
            if holder is not None:
                raise ThreadBusy(thread_id, tenant_id, holder)
            self._held.add(key)
        return HeldThread(
            tenant_id,
            thread_id,
            functools.partial(self._release, key),
            suspect=self._suspect,
            lost=functools.partial(self._lost_to, key),
        )

    def _suspect(self) -> bool:
        """Whether the lock session may have ended: it is closed, a lock was not taken
        again, or the server sent something on it (an idle session hears nothing until
        the server ends it)."""
        conn = self._conn
        if self._lost or conn is None or conn.closed:
            return True
        try:
            return bool(select.select([conn.pgconn.socket], [], [], 0)[0])
        except Exception:  # OSError, or psycopg's: the connection is broken
            return True

    def _lost_to(self, key: int) -> str | None:
        """Who holds `key` now, when this runtime lost it; None while it holds it (its
        session is checked and, when it ended, opened again with the locks taken again)."""
        import psycopg

        with self._guard:
            if key not in self._lost and self._suspect():
                try:
                    if self._conn is not None and not self._conn.closed:
                        self._conn.execute("SELECT 1")  # raises when the server ended it
                    self._session()
                except psycopg.Error:
                    self._drop()
                    try:
                        self._session()
                    except psycopg.Error:
                        return None  # the database is down: the run meets that itself
            return self._lost.get(key)

    def close(self) -> None:
        with self._guard:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _try(self, key: int) -> str | None:
        """None when `key` was taken, else who holds it (maybe "")."""
        import psycopg

        try:
            conn = self._session()
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if row is not None and row[0]:
                return None
            return _holder(conn, key)
        except psycopg.Error:
            self._drop()
            raise

    def _session(self) -> Any:
        import psycopg

        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = psycopg.connect(
            self._db.url.conninfo,
            autocommit=True,
            connect_timeout=5,
            application_name="podium-writers",
        )
        try:
            settings = ", ".join(f"set_config('{name}', %s, false)" for name in KEEPALIVES)
            conn.execute(f"SELECT {settings}", [str(v) for v in KEEPALIVES.values()])
            # The old session's locks died with it: take those of runs still running again
            # (a run whose lock another session took meanwhile stops at its next step).
            for key in sorted(self._held.difference(self._lost)):
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                if not (row is not None and row[0]):
                    self._lost[key] = _holder(conn, key) or "another PostgreSQL session"
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _release(self, key: int) -> None:
        import psycopg

        with self._guard:
            self._held.discard(key)
            if self._lost.pop(key, None) is not None:
                return  # another session holds it
            if self._conn is None or self._conn.closed:
                return  # the session is gone, and its lock with it
            try:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            except psycopg.Error:
                self._drop()


def _holder(conn: Any, key: int) -> str:
    """Which PostgreSQL session holds `key` (as an operator would look it up), or ""."""
    # pg_locks shows a bigint key as two oids: its high and low 32 bits.
    high, low = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    row = conn.execute(
        "SELECT a.pid, a.client_addr::text FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.classid::bigint = %s AND l.objid::bigint = %s",
        (high, low),
    ).fetchone()
    if row is None:
        return ""
    where = f" from {row[1]}" if row[1] else ""
    return f"PostgreSQL session pid {row[0]}{where}"


def open_writers(db: Database) -> ThreadWriters:
    """The writer locks for podium's database `db`."""
    if isinstance(db, PostgresDatabase):
        return PostgresWriters(db)
    if isinstance(db, SqliteDatabase) and not db.in_memory:
        try:
            import fcntl  # noqa: F401
        except ImportError:  # pragma: no cover - not a POSIX system
            return MemoryWriters()
        path = Path(db.target)
        return FileWriters(path.with_name(path.name + "-writers"))
    return MemoryWriters()
