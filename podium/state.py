"""Workflow state schema and its reducers.

Parallel workers write `tasks`, `results` and `usage` in the same step, so each
of those keys declares a reducer that merges instead of overwriting.
"""

from __future__ import annotations

from typing import Annotated, Any, NotRequired

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

# typing_extensions' TypedDict: pydantic builds the graph's JSON schemas from it, and before
# Python 3.12 it refuses `typing.TypedDict` (LangGraph's clients then get no schema).
from typing_extensions import TypedDict

#: Put this key in a `tasks` update to replace the whole task table (a new round).
RESET = "__reset__"
#: The `name` of the AI message that carries a round's answer in `messages`.
ANSWER_NAME = "podium"


class Usage(TypedDict):
    """Token usage and cost of one agent (or of the supervisor)."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    calls: int
    cost_usd: float


class TaskRecord(TypedDict):
    """One task of a plan, as it moves through the lifecycle."""

    id: str
    agent: str
    instruction: str
    depends_on: list[str]
    status: str
    history: list[dict[str, Any]]
    attempts: NotRequired[int]
    error: NotRequired[str | None]
    started_at: NotRequired[float | None]
    finished_at: NotRequired[float | None]
    #: Model switches ({"from", "to"}) when a fallback model answered for the agent.
    model_fallbacks: NotRequired[list[dict[str, str]]]
    #: While the task waits (an effect in doubt): the checkpoint namespace of the run whose
    #: recorded model replies its next run replays (`podium.nodes.task`); None after.
    replay_ns: NotRequired[str | None]


class TaskResult(TypedDict):
    """What a worker returns for a task."""

    task_id: str
    agent: str
    summary: str
    artifacts: dict[str, Any]
    usage: Usage


def merge_tasks(
    left: dict[str, TaskRecord] | None, right: dict[str, Any] | None
) -> dict[str, TaskRecord]:
    """Merge task records by id; a `RESET` key replaces the table."""
    if not right:
        return dict(left or {})
    if right.get(RESET):
        return {k: v for k, v in right.items() if k != RESET}
    merged = dict(left or {})
    for task_id, record in right.items():
        merged[task_id] = {**merged.get(task_id, {}), **record}  # type: ignore[typeddict-item]
    return merged


def merge_results(
    left: dict[str, TaskResult] | None, right: dict[str, Any] | None
) -> dict[str, TaskResult]:
    """Merge results by task id; a `RESET` key replaces the table."""
    if not right:
        return dict(left or {})
    if right.get(RESET):
        return {k: v for k, v in right.items() if k != RESET}
    return {**(left or {}), **right}


def empty_usage() -> Usage:
    return Usage(input_tokens=0, output_tokens=0, total_tokens=0, calls=0, cost_usd=0.0)


def add_usage(a: Usage | dict[str, Any], b: Usage | dict[str, Any]) -> Usage:
    """Sum two usage records field by field."""
    return Usage(
        input_tokens=a.get("input_tokens", 0) + b.get("input_tokens", 0),
        output_tokens=a.get("output_tokens", 0) + b.get("output_tokens", 0),
        total_tokens=a.get("total_tokens", 0) + b.get("total_tokens", 0),
        calls=a.get("calls", 0) + b.get("calls", 0),
        cost_usd=round(a.get("cost_usd", 0.0) + b.get("cost_usd", 0.0), 8),
    )


def sum_usage(left: dict[str, Usage] | None, right: dict[str, Usage] | None) -> dict[str, Usage]:
    """Add per-agent usage records together (usage accumulates across rounds)."""
    merged = dict(left or {})
    for agent, usage in (right or {}).items():
        merged[agent] = add_usage(merged.get(agent, empty_usage()), usage)
    return merged


class WorkflowState(TypedDict, total=False):
    """State of a podium workflow graph.

    Input is `{"goal": ...}` or `{"messages": [...]}`; output adds `answer`.
    """

    goal: str
    messages: Annotated[list[AnyMessage], add_messages]
    plan: list[dict[str, Any]]
    tasks: Annotated[dict[str, TaskRecord], merge_tasks]
    results: Annotated[dict[str, TaskResult], merge_results]
    usage: Annotated[dict[str, Usage], sum_usage]
    round: int
    turns: int
    status: str
    answer: str
    pending_status: str
    error: str | None
    #: Set at the entry when the input held text no database can store (`podium.graphs.intake`).
    input_problem: str | None


class WorkflowInput(TypedDict, total=False):
    goal: str
    messages: Annotated[list[AnyMessage], add_messages]
    input_problem: str | None


class WorkerInput(TypedDict):
    """What `Send` hands to a worker: its task and the results of its dependencies only."""

    task: TaskRecord
    goal: str
    inputs: list[dict[str, str]]
    round: NotRequired[int]
