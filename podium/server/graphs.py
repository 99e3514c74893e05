"""Graph entry points of the LangGraph server (`langgraph.json` -> `graphs`).

The server supplies the checkpointer (in memory under `langgraph dev`, PostgreSQL on the
platform) and swaps it into every graph it runs, so the graphs here are compiled without
one. podium's own tables (threads, approvals, audit, usage ledger, tool effects, dead
letters, budgets, breakers) live in the database named by `PODIUM_DATABASE_URL`, opened
once per server process and shared by every run.

Environment (read here, as an entry point):
    PODIUM_DATABASE_URL: podium's tables; default `sqlite:///.podium/server.db`, relative
        to the server's working directory. Use PostgreSQL when several server processes
        share work.
    PODIUM_MODEL: model of the served workflows (`demo` by default).
    PODIUM_WORKFLOWS: extra `name=module:function` workflows for `compile_workflow`.
    PODIUM_AUDIT_KEY: HMAC key of the audit chains (plain SHA-256 when unset).
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

from podium.graphs.catalog import get_workflow
from podium.runtime.core import PodiumRuntime
from podium.runtime.db import open_database
from podium.runtime.urls import parse_url

#: podium's tables on a server when PODIUM_DATABASE_URL is unset (relative to its cwd).
SERVER_DEFAULT_URL = "sqlite:///.podium/server.db"

_runtime: PodiumRuntime | None = None
_lock = threading.Lock()


def database_url() -> str:
    """The database URL of podium's tables on this server."""
    return os.environ.get("PODIUM_DATABASE_URL") or SERVER_DEFAULT_URL


def server_runtime() -> PodiumRuntime:
    """The process-lifetime runtime of the server: podium's stores, no checkpointer.

    Opened on first use and closed when the process exits (buffered audit events and
    usage rows are flushed first).

    Raises:
        DatabaseError: for a malformed or unreachable `PODIUM_DATABASE_URL`.
    """
    global _runtime
    with _lock:
        if _runtime is None:
            url = parse_url(database_url())
            db = open_database(url)
            key = os.environ.get("PODIUM_AUDIT_KEY")
            runtime = PodiumRuntime(url, None, db, audit_key=key.encode() if key else None)
            atexit.register(_close, runtime)
            _runtime = runtime
        return _runtime


def _close(runtime: PodiumRuntime) -> None:
    try:
        runtime.services.flush()
    finally:
        runtime.db.close()


def compile_workflow(name: str, *, model: Any = None) -> Any:
    """Compile workflow `name` for the server: podium's stores bound, no checkpointer.

    Use it to serve a workflow of your own: put `graph = compile_workflow("my_flow")` in a
    module and name `my.module:graph` under `graphs` in `langgraph.json`.

    Args:
        name: A workflow of the catalog (`research_brief`, entry points,
            `PODIUM_WORKFLOWS`, `register_workflow`).
        model: Model of the workflow; None means `PODIUM_MODEL`, else the demo model.

    Raises:
        UnknownWorkflowError: listing the known workflows.
    """
    factory = get_workflow(name, os.environ.get("PODIUM_WORKFLOWS"))
    graph = factory(model=model or os.environ.get("PODIUM_MODEL") or None)
    # checkpointer=None on purpose: the server injects its own into every run.
    return server_runtime().compile(graph, checkpointer=None, name=name)


research_brief = compile_workflow("research_brief")
