"""Graph entry points of the LangGraph server (`langgraph.json` -> `graphs`).

    START -> supervisor -> (worker* -> supervisor)* -> aggregate -> END   (each workflow)

Each entry is a graph factory the server calls with a run's config. The workflow is
built when the module loads and compiled once, at its first run, without a checkpointer
(the server supplies its own to every run: in memory under `langgraph dev`, PostgreSQL on
the platform) and with podium's stores bound (`podium.server._runtime.server_runtime`), so
the server starts even while podium's database is unreachable. When `LANGFUSE_*` is set,
the factory adds the run's Langfuse callbacks (thread as session, tenant/user as user) to
the config.

Environment (read here, as an entry point):
    PODIUM_MODEL: model of the served workflows (`demo` by default).
    PODIUM_WORKFLOWS: extra `name=module:function` workflows for `serve`.
    LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY, LANGFUSE_HOST: Langfuse tracing (off unset).
"""

from __future__ import annotations

import atexit
import functools
import os
import threading
from collections.abc import Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import START

import podium.names as names
from podium.context import DEFAULT_TENANT, RunContext, resolve_context
from podium.graphs.catalog import get_workflow
from podium.server._runtime import server_runtime
from podium.server.admission import register_policy

_NOT_AGENTS = (START, *sorted(names.WORKFLOW_NODES))


def build_workflow_graph(name: str, *, model: Any = None) -> Any:
    """Build workflow `name` for the server (uncompiled) and register its policy.

    Args:
        name: A workflow of the catalog (`research_brief`, entry points,
            `PODIUM_WORKFLOWS`, `register_workflow`).
        model: Model of the workflow; None means `PODIUM_MODEL`, else the demo model.

    Raises:
        UnknownWorkflowError: listing the known workflows.
    """
    factory = get_workflow(name, os.environ.get("PODIUM_WORKFLOWS"))
    graph = factory(model=model or os.environ.get("PODIUM_MODEL") or None)
    # The server admits runs itself (429 past a tenant's max_runs: podium.server.admission).
    register_policy(name, getattr(graph, "policies", None))
    return graph


def compile_workflow(name: str, *, model: Any = None) -> Any:
    """Compile workflow `name` for the server: podium's stores bound, no checkpointer.

    Raises:
        UnknownWorkflowError: listing the known workflows.
        DatabaseError: podium's database cannot be opened.
    """
    return _compiled(build_workflow_graph(name, model=model), name)


def _compiled(graph: Any, name: str) -> Any:
    # checkpointer=None on purpose: the server injects its own into every run.
    return server_runtime().compile(graph, checkpointer=None, name=name, admit_runs=False)


def serve(name: str, *, model: Any = None) -> Callable[[RunnableConfig], Any]:
    """The server's graph factory for workflow `name`.

    The workflow is built (and checked) here; it is compiled with podium's stores on the
    first run, so a server whose database is unreachable still starts, and answers each
    request with what is wrong (503) until the database is back (`podium.server.auth`).

    Serve a workflow of your own with `my_flow = serve("my_flow")` in a module of yours and
    `"my_flow": "my.module:my_flow"` under `graphs` in `langgraph.json`.
    """
    built = build_workflow_graph(name, model=model)
    agents = [n for n in built.nodes if n not in _NOT_AGENTS]
    compiled: list[Any] = []
    lock = threading.Lock()

    def graph(config: RunnableConfig) -> Any:
        with lock:
            if not compiled:
                compiled.append(_compiled(built, name))
        return _traced(compiled[0], config, agents)

    graph.__name__ = graph.__qualname__ = name
    graph.__doc__ = f"Workflow {name!r} for the LangGraph server."
    return graph


def _traced(compiled: Any, config: RunnableConfig, agents: list[str]) -> Any:
    tracer = _tracer()
    configurable = config.get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if tracer is None or thread_id is None:
        return compiled
    from podium.tracing.tracer import tracing_config

    # A run started with `context` has it copied into `configurable` by the server; an
    # authenticated user overrides it, as in the run itself.
    sent = RunContext(
        tenant_id=str(configurable.get("tenant_id") or DEFAULT_TENANT),
        user_id=str(configurable.get("user_id") or "anonymous"),
    )
    ctx = resolve_context(config, sent)
    fragment = tracing_config(
        tracer,
        thread_id=str(thread_id),
        tenant_id=ctx.tenant_id,
        user_id=ctx.user_id,
        workflow=compiled.name,
        agents=agents,
    )
    return compiled.with_config(**fragment)


@functools.cache
def _tracer() -> Any:
    """The process's Langfuse tracer, or None when LANGFUSE_* is unset."""
    from podium.tracing.tracer import Tracer, settings_from_env

    settings = settings_from_env(os.environ)
    if settings is None:
        return None
    tracer = Tracer(settings)
    atexit.register(tracer.shutdown)
    return tracer


# Fail at start-up, not on the first run, when LANGFUSE_* is half set.
_tracer()

research_brief = serve("research_brief")
