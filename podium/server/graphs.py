"""Graph entry points of the LangGraph server (`langgraph.json` -> `graphs`).

    START -> supervisor -> (worker* -> supervisor)* -> aggregate -> END   (each workflow)

The server supplies the checkpointer (in memory under `langgraph dev`, PostgreSQL on the
platform) and swaps it into every graph it runs, so the graphs here are compiled without
one, with podium's stores bound (`podium.server._runtime.server_runtime`).

Environment (read here, as an entry point):
    PODIUM_MODEL: model of the served workflows (`demo` by default).
    PODIUM_WORKFLOWS: extra `name=module:function` workflows for `compile_workflow`.
"""

from __future__ import annotations

import os
from typing import Any

from podium.graphs.catalog import get_workflow
from podium.server._runtime import server_runtime


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
