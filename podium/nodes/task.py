"""The task node: runs one task on its agent's worker subgraph and reports the result.

It receives a `WorkerInput` from `Send` (the task and its dependencies' results only),
moves the task through the lifecycle and returns only the keys it writes.
"""

from __future__ import annotations

import time
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.config import get_stream_writer

from podium import lifecycle
from podium.errors import RunError, TaskFailed
from podium.nodes.prompts import WORKER_SYSTEM, task_message
from podium.registry import AgentSpec
from podium.state import TaskResult, Usage, WorkerInput, add_usage, empty_usage


def make_task_node(spec: AgentSpec, worker: Any, workflow: str) -> RunnableLambda:
    """A node running tasks of agent `spec` on `worker` (a compiled graph)."""
    custom = spec.graph is not None

    def prepare(payload: WorkerInput) -> tuple[dict, dict]:
        task = lifecycle.transition(payload["task"], "running", at=time.time())
        task = {**task, "started_at": time.time(), "attempts": task.get("attempts", 0) + 1}
        _emit("task_started", task)
        text = task_message(task, payload["goal"], payload["inputs"])
        if custom:
            return task, {"goal": text, "messages": [HumanMessage(text)]}
        system = WORKER_SYSTEM.format(
            agent=spec.name, workflow=workflow, description=spec.description
        )
        return task, {
            "task_id": task["id"],
            "messages": [SystemMessage(system), HumanMessage(text)],
        }

    def finish(task: dict, output: dict | None, error: RunError | None) -> dict[str, Any]:
        now = time.time()
        if error is not None:
            done = lifecycle.transition(task, "failed", at=now, reason=str(error))
            done = {**done, "error": str(error), "finished_at": now}
            _emit("task_finished", done)
            return {"tasks": {task["id"]: done}}
        summary, usage = _read_output(output or {}, spec.name)
        done = {**lifecycle.transition(task, "completed", at=now), "finished_at": now}
        result = TaskResult(
            task_id=task["id"], agent=spec.name, summary=summary, artifacts={}, usage=usage
        )
        _emit("task_finished", done, summary=summary)
        return {
            "tasks": {task["id"]: done},
            "results": {task["id"]: result},
            "usage": {spec.name: usage},
        }

    def run(payload: WorkerInput, config: RunnableConfig) -> dict[str, Any]:
        task, inputs = prepare(payload)
        try:
            output = _checked(worker.invoke(inputs, config), task)
        except RunError as exc:
            return finish(task, None, exc)
        return finish(task, output, None)

    async def arun(payload: WorkerInput, config: RunnableConfig) -> dict[str, Any]:
        task, inputs = prepare(payload)
        try:
            output = _checked(await worker.ainvoke(inputs, config), task)
        except RunError as exc:
            return finish(task, None, exc)
        return finish(task, output, None)

    return RunnableLambda(run, afunc=arun, name=spec.name)


def _checked(output: Any, task: dict[str, Any]) -> dict[str, Any]:
    """A nested podium workflow that ended `failed` fails this task too."""
    if not isinstance(output, dict):
        raise TaskFailed(task["id"], task["agent"], f"worker returned {type(output).__name__}")
    if output.get("status") == "failed":
        raise TaskFailed(
            task["id"], task["agent"], str(output.get("error") or "sub-workflow failed")
        )
    return output


def _read_output(output: dict[str, Any], agent: str) -> tuple[str, Usage]:
    """Summary and usage from a worker's final state (built-in, podium or any graph)."""
    usage = empty_usage()
    for part in (output.get("usage") or {}).values():
        usage = add_usage(usage, part)
    if output.get("answer"):
        return str(output["answer"]), usage
    for message in reversed(output.get("messages") or []):
        if isinstance(message, AIMessage) and not message.tool_calls:
            return message.text, usage
    return "", usage


def _emit(event: str, task: dict[str, Any], **extra: Any) -> None:
    """A custom stream event for progress displays (`stream_mode="custom"`)."""
    get_stream_writer()(
        {
            "event": event,
            "task_id": task["id"],
            "agent": task["agent"],
            "status": task["status"],
            "at": time.time(),
            **extra,
        }
    )
