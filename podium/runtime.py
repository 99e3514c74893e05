"""The composition root: one database URL for LangGraph's checkpointer and podium's tables.

`open_runtime` / `open_async_runtime` open the database, the checkpointer and every
store (`Services`), make the governor, and bind them to each graph `rt.compile` compiles
(`podium.governance.binding`). Nothing below looks anything up by itself.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph

from podium.governance.admission import Admitted, needs_admission
from podium.governance.binding import BINDING_KEY, Binding
from podium.governance.governor import Governor
from podium.governance.writers import WRITER_KEY
from podium.storage.database import Database, PostgresDatabase, open_database
from podium.storage.faults import DEFAULT_RETRY_FOR, is_database_fault
from podium.storage.urls import DEFAULT_URL, DatabaseURL, parse_url
from podium.stores.services import Services

log = logging.getLogger("podium")


class PodiumRuntime:
    """A checkpointer plus podium's stores, bound to compiled graphs by `compile`.

    Attributes:
        url: The parsed database URL (`url.masked` is safe to print).
        checkpointer: LangGraph's checkpointer for this database.
        db: podium's own tables.
        threads: The thread index.
        governor: The choke point of every model and tool call.
    """

    def __init__(
        self,
        url: DatabaseURL,
        checkpointer: BaseCheckpointSaver[Any] | None,
        db: Database,
        **services: Any,
    ) -> None:
        self.url = url
        self.checkpointer = checkpointer
        self.db = db
        self.services = Services.open(db, **services)
        self.binding = Binding.of(self.services)
        self.threads = self.services.threads
        self.governor: Governor = self.binding.governor

    def compile(
        self, graph: StateGraph[Any, Any, Any, Any], *, admit_runs: bool = True, **kwargs: Any
    ) -> CompiledStateGraph[Any, Any, Any, Any] | Admitted:
        """Compile `graph` with this runtime's checkpointer and stores bound.

        Keyword arguments go to `StateGraph.compile` (e.g. `interrupt_before`, `name`).
        A workflow compiled with a checkpointer (the runtime's, unless given) runs one run
        per thread at a time: a second raises `ThreadBusy` (`podium.governance.writers`).
        When the graph's policy sets `max_runs` (and `admit_runs`, false on a LangGraph
        server, which admits runs itself), the result is `Admitted`: each run first takes
        one of its tenant's run slots (see `podium.governance.admission`).
        """
        kwargs.setdefault("checkpointer", self.checkpointer)
        configurable: dict[str, Any] = {BINDING_KEY: self.binding}
        if kwargs["checkpointer"] is not None:
            # Its runs write the checkpointer's threads: one run per thread at a time. A
            # LangGraph server compiles without one (it fences runs itself).
            configurable[WRITER_KEY] = True
        compiled = graph.compile(**kwargs).with_config(configurable=configurable)
        policy = getattr(graph, "policies", None)
        if admit_runs and policy is not None and needs_admission(policy):
            # The policy caps a tenant's runs in flight: each run takes a slot first.
            return Admitted(compiled, policy, self.services)
        return compiled

    def __repr__(self) -> str:
        return f"PodiumRuntime({self.url.masked!r})"


@contextmanager
def open_runtime(url: str | None = None, **services: Any) -> Iterator[PodiumRuntime]:
    """Open a runtime for synchronous use (`invoke`, `stream`).

    Args:
        url: `memory://`, `sqlite:///path` or `postgresql://...`; None means the
            embedded default `sqlite:///.podium/podium.db`.
        **services: Overrides for `podium.stores.services.Services`: `clock`, `sleep`,
            `asleep` (tests inject these so retries never really wait), `audit_key`; and
            `db_retry_for`, the seconds a PostgreSQL operation keeps retrying a lost
            connection before the run stops with `DatabaseUnavailable` (default 30).

    Raises:
        DatabaseError: for a malformed URL or an unreachable database, naming the
            masked URL and what to check.
    """
    parsed = parse_url(url or DEFAULT_URL)
    retry_for = services.pop("db_retry_for", DEFAULT_RETRY_FOR)
    with ExitStack() as stack:
        db = open_database(parsed, retry_for=retry_for)
        stack.callback(db.close)
        saver = _sync_saver(parsed, db, stack)
        runtime = PodiumRuntime(parsed, saver, db, **services)
        stack.callback(_flush_at_close, runtime.services)
        stack.callback(runtime.services.writers.close)
        yield runtime


@asynccontextmanager
async def open_async_runtime(
    url: str | None = None, **services: Any
) -> AsyncIterator[PodiumRuntime]:
    """Open a runtime for asynchronous use (`ainvoke`, `astream`). See `open_runtime`."""
    parsed = parse_url(url or DEFAULT_URL)
    retry_for = services.pop("db_retry_for", DEFAULT_RETRY_FOR)
    async with AsyncExitStack() as stack:
        db = open_database(parsed, retry_for=retry_for)
        stack.callback(db.close)
        saver = await _async_saver(parsed, db, stack)
        runtime = PodiumRuntime(parsed, saver, db, **services)
        stack.callback(_flush_at_close, runtime.services)
        stack.callback(runtime.services.writers.close)
        yield runtime


def _flush_at_close(services: Services) -> None:
    """Write the audit events and usage rows still buffered. With the database unreachable
    they cannot be: that is logged, not raised, since raising here would replace what the
    caller is told about how its run ended (a run that stopped on the outage said so)."""
    try:
        services.flush()
    except Exception as exc:
        if not is_database_fault(exc):
            raise
        log.warning("audit events and usage rows still buffered were not written: %s", exc)


def _sync_saver(url: DatabaseURL, db: Database, stack: ExitStack) -> BaseCheckpointSaver[Any]:
    if url.kind == "memory":
        return InMemorySaver()
    if url.kind == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(str(url.path), check_same_thread=False, timeout=30)
        stack.callback(conn.close)
        sqlite_saver = SqliteSaver(conn)
        sqlite_saver.setup()
        return sqlite_saver
    from podium.storage.postgres_savers import RetryingPostgresSaver

    assert isinstance(db, PostgresDatabase)
    saver = RetryingPostgresSaver(db.pool, db=db)
    # LangGraph's migrations are not safe against two processes running them at once.
    with db.session_lock("schema:checkpoints"):
        saver.setup()
    return saver


async def _async_saver(
    url: DatabaseURL, db: Database, stack: AsyncExitStack
) -> BaseCheckpointSaver[Any]:
    if url.kind == "memory":
        return InMemorySaver()
    if url.kind == "sqlite":
        from podium.storage.sqlite_async import InlineAsyncSqliteSaver

        conn = sqlite3.connect(str(url.path), check_same_thread=False, timeout=30)
        stack.callback(conn.close)
        inline_saver = InlineAsyncSqliteSaver(conn)
        inline_saver.setup()
        return inline_saver
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    from podium.storage.database import POOL_RECONNECT, POOL_WAIT
    from podium.storage.faults import IdleCheck
    from podium.storage.postgres_savers import RetryingAsyncPostgresSaver

    assert isinstance(db, PostgresDatabase)
    idle = IdleCheck()
    pool = AsyncConnectionPool(
        url.conninfo,
        min_size=1,
        max_size=16,
        kwargs={
            "autocommit": True,
            "row_factory": dict_row,
            "prepare_threshold": 0,
            "connect_timeout": 5,
        },
        open=False,
        name="podium-checkpoints",
        check=idle.acheck,  # replace connections that died idle
        timeout=min(POOL_WAIT, max(0.5, db.retry_for)),
        reconnect_timeout=POOL_RECONNECT,
    )
    await pool.open()
    stack.push_async_callback(pool.close)
    db.use_async_pool(pool)  # budget holds and settlements run on the loop, not a thread
    saver = RetryingAsyncPostgresSaver(pool, db=db)
    with db.session_lock("schema:checkpoints"):
        await saver.setup()
    return saver
