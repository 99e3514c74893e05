"""The aggregate node: merges the results of the round into the final answer.

The answer passes the policy's output filters, may wait for a human's approval (the
`gate` node), and is written to `answer` and as an AI message in `messages`, so chat
front-ends show it like any assistant turn.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.graph import END
from langgraph.runtime import get_runtime

import podium.names as names
import podium.policies as P
from podium.governance.binding import bound, with_scope
from podium.governance.scope import make_scope
from podium.lifecycle import RunStatus, TaskStatus
from podium.nodes.letters import settle_stopped_replays
from podium.nodes.record import record, set_thread_status
from podium.state import ANSWER_NAME, WorkflowState


class AggregateNode(Protocol):
    """The aggregate node's signature, as LangGraph's `add_node` reads it (by name)."""

    def __call__(self, state: WorkflowState, config: RunnableConfig) -> dict[str, Any]: ...


def make_aggregate(
    workflow: str, policies: Any = None, approve_answer: bool = False
) -> AggregateNode:
    """The aggregate node of `workflow`."""

    def aggregate(state: WorkflowState, config: RunnableConfig) -> dict[str, Any]:
        scope = make_scope(
            config,
            get_runtime().context,
            workflow=workflow,
            agent=names.SUPERVISOR,
            policies=policies,
            round=state.get("round", 0),
        )
        cfg = with_scope(config, scope)
        tasks, results = state.get("tasks") or {}, state.get("results") or {}
        if state.get("status") == RunStatus.FAILED:
            status, answer = RunStatus.FAILED.value, f"The run failed: {state.get('error')}"
        else:
            status, answer = _compose(tasks, results)
        error = state.get("error") if status == RunStatus.FAILED and state.get("error") else None
        if status == RunStatus.FAILED and error is None:
            error = _failure_summary(tasks) or "no task produced a result"
        answer = _filtered(answer, cfg, policies, scope)
        try:
            if status != RunStatus.FAILED and _needs_approval(approve_answer, policies, scope):
                return {
                    "answer": answer,
                    "status": RunStatus.AWAITING_ANSWER_APPROVAL.value,
                    "pending_status": status,
                    "error": error,
                }
            get_stream_writer()({"event": "run_finished", "status": status, "at": time.time()})
            record(cfg, "plan", {"finished": status, "error": error}, actor="system:podium")
            set_thread_status(config, status)
            settle_stopped_replays(config, scope.tenant_id, state)
            return {
                "answer": answer,
                "status": status,
                "error": error,
                "messages": [AIMessage(answer, name=ANSWER_NAME)],
            }
        finally:
            bound(config).services.flush()

    return aggregate


def after_aggregate(state: WorkflowState) -> str:
    return names.GATE if state.get("status") == RunStatus.AWAITING_ANSWER_APPROVAL else END


def _needs_approval(flag: bool, policies: Any, scope: Any) -> bool:
    if flag:
        return True
    if policies is None:
        return False
    from podium.governance.scope import call_scope

    return not P.approval_for(policies, call_scope(scope), "answer").allowed


def _filtered(answer: str, cfg: RunnableConfig, policies: Any, scope: Any) -> str:
    if policies is None:
        return answer
    from podium.governance.scope import call_scope

    result = P.filter_output(policies, call_scope(scope), answer)
    for decision in result.decisions:
        record(
            cfg,
            "policy_decision",
            {
                "what": "answer",
                "rule": decision.rule,
                "reason": decision.reason,
                "details": dict(decision.details),
            },
        )
    return result.text


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
        return RunStatus.FAILED.value, answer or "No task produced a result."
    return (RunStatus.PARTIAL if missing else RunStatus.COMPLETED).value, answer


def _failure_summary(tasks: dict[str, Any]) -> str:
    lines = []
    for task in tasks.values():
        if task["status"] != TaskStatus.COMPLETED:
            reason = (
                task.get("error")
                or (task["history"][-1].get("reason") if task["history"] else None)
                or task["status"]
            )
            lines.append(f"- {task['id']} ({task['agent']}): {task['status']}: {reason}")
    return "\n".join(lines)
