"""The server's process-lifetime podium runtime: podium's stores, no checkpointer.

podium's own tables (threads, approvals, audit, usage ledger, tool effects, dead letters,
budgets, breakers, webhook signatures) live in the database named by
`PODIUM_DATABASE_URL`, opened once per server process and shared by every run; the
LangGraph server keeps checkpoints in its own database.

Environment (read here, as an entry point):
    PODIUM_DATABASE_URL: default `sqlite:///.podium/server.db`, relative to the server's
        working directory. Use PostgreSQL when several server processes share work.
    PODIUM_AUDIT_KEY: HMAC key of the audit chains. Unset, the chains are plain SHA-256,
        which anyone with write access to the database can recompute after a rewrite: the
        server says so in a warning when it opens its runtime.
    PODIUM_DB_RETRY_FOR: seconds a lost PostgreSQL connection is retried (default 30).

A database that cannot be reached when the runtime is first needed is not remembered:
each request tries again (`podium.server.auth` answers 503 meanwhile).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading

from podium.runtime import PodiumRuntime
from podium.storage.database import open_database
from podium.storage.faults import RETRY_FOR_ENV, retry_window
from podium.storage.urls import parse_url

#: podium's tables on a server when PODIUM_DATABASE_URL is unset (relative to its cwd).
SERVER_DEFAULT_URL = "sqlite:///.podium/server.db"

#: The warning the server logs at start when PODIUM_AUDIT_KEY is unset.
UNKEYED_WARNING = (
    "PODIUM_AUDIT_KEY is not set: the audit chains are plain SHA-256, so anyone with write "
    "access to podium's database can rewrite events and recompute the chain undetected; set "
    "PODIUM_AUDIT_KEY (a long random secret) for a tamper-evident audit log"
)

log = logging.getLogger("podium.server")

_runtime: PodiumRuntime | None = None
_lock = threading.Lock()


def database_url() -> str:
    """The database URL of podium's tables on this server."""
    return os.environ.get("PODIUM_DATABASE_URL") or SERVER_DEFAULT_URL


def server_runtime() -> PodiumRuntime:
    """The runtime of this server process, opened on first use.

    It is closed when the process exits, after buffered audit events and usage rows are
    written.

    Raises:
        DatabaseError: for a malformed or unreachable `PODIUM_DATABASE_URL`.
    """
    global _runtime
    with _lock:
        if _runtime is None:
            url = parse_url(database_url())
            key = os.environ.get("PODIUM_AUDIT_KEY")
            if not key:
                log.warning(UNKEYED_WARNING)
            window = retry_window(os.environ.get(RETRY_FOR_ENV))
            runtime = PodiumRuntime(
                url,
                None,
                open_database(url, retry_for=window),
                audit_key=key.encode() if key else None,
                offload=True,  # the server's event loop serves every run: never block it
            )
            atexit.register(_close, runtime)
            _runtime = runtime
        return _runtime


def _close(runtime: PodiumRuntime) -> None:
    try:
        runtime.services.flush()
    finally:
        runtime.db.close()
