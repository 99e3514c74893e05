"""The aggregate node: merges the results of the round into the final answer.

The answer is written to `answer` and as an AI message in `messages`, so chat
front-ends show it like any assistant turn.
"""

from __future__ import annotations

import time
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer

from podium.runtime.governor import runtime_for
from podium.state import WorkflowState


def aggregate(state: WorkflowState, config: RunnableConfig) -> dict[str, Any]:
    """Write the answer and the run's final status."""
    tasks, results = state.get("tasks") or {}, state.get("results") or {}
    if state.get("status") == "failed":
        status, answer = "failed", f"The run failed: {state.get('error')}"
    else:
        status, answer = _compose(tasks, results)
    error = state.get("error") if status == "failed" and state.get("error") else None
    if status == "failed" and error is None:
        error = _failure_summary(tasks) or "no task produced a result"
    get_stream_writer()({"event": "run_finished", "status": status, "at": time.time()})
    _set_thread_status(config, status)
    return {
        "answer": answer,
        "status": status,
        "error": error,
        "messages": [AIMessage(answer, name="podium")],
    }


def _compose(tasks: dict[str, Any], results: dict[str, Any]) -> tuple[str, str]:
    needed = {d for t in tasks.values() for d in t["depends_on"]}
    sinks = [t for t in tasks.values() if t["id"] not in needed]
    delivered = [results[t["id"]] for t in sinks if t["id"] in results]
    if len(delivered) == 1:
        answer = delivered[0]["summary"]
    else:
        answer = "\n\n".join(f"## {r['task_id']} ({r['agent']})\n{r['summary']}" for r in delivered)
    missing = _failure_summary(tasks)
    if missing:
        answer = (answer + "\n\n" if answer else "") + "Not completed:\n" + missing
    if not tasks or not delivered:
        return "failed", answer or "No task produced a result."
    return ("completed" if not missing else "partial"), answer


def _failure_summary(tasks: dict[str, Any]) -> str:
    lines = []
    for task in tasks.values():
        if task["status"] != "completed":
            reason = (
                task.get("error")
                or (task["history"][-1].get("reason") if task["history"] else None)
                or task["status"]
            )
            lines.append(f"- {task['id']} ({task['agent']}): {task['status']}: {reason}")
    return "\n".join(lines)


def _set_thread_status(config: RunnableConfig, status: str) -> None:
    runtime, configurable = runtime_for(config), config.get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if (
        runtime is not None
        and thread_id is not None
        and "|" not in configurable.get("checkpoint_ns", "")
    ):
        runtime.threads.set_status(str(thread_id), status)
