"""Graph factories; each returns an uncompiled `StateGraph`."""

from podium.graphs.catalog import catalog, get_workflow, register_workflow
from podium.graphs.research_brief import build_research_brief
from podium.graphs.worker import build_worker
from podium.graphs.workflow import WorkflowGraph, build_workflow

__all__ = [
    "WorkflowGraph",
    "build_research_brief",
    "build_worker",
    "build_workflow",
    "catalog",
    "get_workflow",
    "register_workflow",
]
