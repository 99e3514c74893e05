"""Node names of podium's graphs, used by the graph factories, the nodes that route between
them, the server and replay. Pure vocabulary, so the nodes can name their targets.

workflow: START -> supervisor -> (worker* -> supervisor)* -> aggregate -> [gate] -> END
worker:   START -> agent -> (tools -> agent)* -> END
"""

from __future__ import annotations

from typing import Final

from langgraph.graph import END, START

SUPERVISOR: Final = "supervisor"
AGGREGATE: Final = "aggregate"
GATE: Final = "gate"

#: Nodes of the built-in worker subgraph.
WORKER_AGENT: Final = "agent"
WORKER_TOOLS: Final = "tools"

#: Nodes of a workflow graph that are not agents.
WORKFLOW_NODES: Final = frozenset({SUPERVISOR, AGGREGATE, GATE})

#: Names an agent cannot take: the workflow's own nodes and LangGraph's START and END.
RESERVED: Final = frozenset({*WORKFLOW_NODES, START, END})
