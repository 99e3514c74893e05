"""Which LangGraph runs become Langfuse spans, and what their inputs show.

Inputs: the supervisor, aggregate and gate nodes receive the whole workflow state and a
worker's nodes its whole message list; their spans show a digest (`span_input`), since
the generation spans below show exactly what each model was sent.

Runs: a task's worker graph is folded into the task.

A task of a built-in worker nests three runs: the task node ("task t1 (researcher)"), the
worker subgraph it invokes (named after the agent) and the worker's "agent" / "tools"
nodes, and only then the model's generation and the tool calls. The middle two repeat
the task (same input, same output) and cost a span each per model call; they are not
sent. Their children (generations, tool spans) hang directly under the task span.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import podium.names as names

#: Nodes of podium's built-in worker graph, folded into their task's span.
WORKER_NODES = frozenset({names.WORKER_AGENT, names.WORKER_TOOLS})
#: Callback methods that name a parent run, besides chain start/end/error.
PARENTED = (
    "on_chat_model_start",
    "on_llm_start",
    "on_llm_new_token",
    "on_llm_end",
    "on_llm_error",
    "on_tool_start",
    "on_tool_end",
    "on_tool_error",
    "on_retriever_start",
    "on_retriever_end",
    "on_retriever_error",
    "on_agent_action",
    "on_agent_finish",
    "on_text",
    "on_retry",
    "on_custom_event",
)


@dataclass(frozen=True, slots=True)
class Link:
    """A span to continue under: the root span of a run that stopped at a gate."""

    trace_id: str
    span_id: str | None


class FoldedRuns:
    """Bookkeeping of folded runs: each maps to its parent, and parents are looked up
    through them, so what is sent sees only the runs it shows."""

    def _init_folding(self) -> None:
        self._tasks: set[UUID] = set()
        self._folded: dict[UUID, UUID | None] = {}

    def _folds(self, parent_run_id: UUID | None, metadata: Mapping[str, Any] | None) -> bool:
        """Whether a chain run starting under `parent_run_id` is folded into its task."""
        if parent_run_id is None:
            return False
        if parent_run_id in self._tasks:
            return True  # the worker graph the task node invoked
        node = (metadata or {}).get("langgraph_node")
        return parent_run_id in self._folded and node in WORKER_NODES

    def _shown(self, run_id: UUID | None) -> UUID | None:
        """The nearest run that is shown: `run_id` itself, or what it was folded into."""
        while run_id is not None and run_id in self._folded:
            run_id = self._folded[run_id]
        return run_id


def reparent(cls: type) -> type:
    """Make `cls`'s parented callbacks (see `PARENTED`) name the nearest shown parent."""
    for name in PARENTED:
        base = getattr(cls, name, None)
        if base is None:
            continue

        def method(self: Any, *args: Any, __base: Any = base, **kwargs: Any) -> Any:
            if "parent_run_id" in kwargs:
                kwargs["parent_run_id"] = self._shown(kwargs["parent_run_id"])
            return __base(self, *args, **kwargs)

        method.__name__ = name
        setattr(cls, name, method)
    return cls


_STATE_KEYS = frozenset({"goal", "tasks", "results", "round"})


def span_input(inputs: Any) -> Any:
    """What a node span shows of its input: a digest of a workflow or worker state (the
    generation spans below show exactly what each model was sent), anything else as is."""
    if not isinstance(inputs, Mapping):
        return inputs
    if inputs.keys() >= _STATE_KEYS:
        return state_digest(inputs)
    if "task_id" in inputs and "messages" in inputs and "goal" not in inputs:
        # A built-in worker's state: its messages are the prompt of the generation below.
        return {
            "task_id": inputs.get("task_id"),
            "messages": len(inputs.get("messages") or ()),
            "steps": inputs.get("steps", 0),
        }
    return inputs


def state_digest(state: Mapping[str, Any]) -> dict[str, Any]:
    """What a node span shows of the workflow state it was handed.

    The supervisor, aggregate and gate nodes receive the whole state: every message and
    every result so far. Copied onto each node span, it made a trace grow with the square
    of the delegations and its export cost the runs time; the checkpoint keeps the state
    itself, and the model's generation span below shows exactly what the model was sent.
    A span shows the goal, the round, each task's agent and status, and how many messages
    and results there are.
    """
    tasks = state.get("tasks") or {}
    return {
        "goal": state.get("goal"),
        "round": state.get("round"),
        "status": state.get("status"),
        "tasks": {
            str(tid): f"{t.get('agent')}: {t.get('status')}"
            for tid, t in tasks.items()
            if isinstance(t, Mapping)
        },
        "results": len(state.get("results") or {}),
        "messages": len(state.get("messages") or ()),
    }


def task_of(inputs: Any, metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The podium task a node run works on (the `Send` payload of a task node)."""
    if not isinstance(inputs, Mapping) or not isinstance(inputs.get("task"), Mapping):
        return None
    task = inputs["task"]
    node = (metadata or {}).get("langgraph_node")
    if "id" in task and "agent" in task and node == task["agent"]:
        return dict(task)
    return None
