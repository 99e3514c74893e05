"""Helpers of the supervisor: intake, task records, the thread index, the ping-pong guard."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig

import podium.names as names
from podium.context import current_context
from podium.governance.binding import bound
from podium.lifecycle import RunStatus, TaskStatus
from podium.nodes.record import record
from podium.state import ANSWER_NAME, WorkflowState

#: Task statuses after which a task's dependents cannot run.
BLOCKING = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.DEAD_LETTERED})


#: Consecutive router turns alternating between the same two agents that stop a run.
PING_PONG = 6


def _ping_pong(agents: list[str]) -> tuple[str, str] | None:
    """The two agents a router keeps bouncing between, if its last turns only alternate."""
    tail = agents[-PING_PONG:]
    if len(tail) < PING_PONG or len(set(tail)) != 2:
        return None
    if all(tail[i] != tail[i + 1] for i in range(len(tail) - 1)):
        return tail[0], tail[1]
    return None


def _dead_letter_turn(
    config: RunnableConfig, workflow: str, goal: str, choice: Any, reason: str
) -> str:
    """Keep the turn the router wanted next, with the reason, for an operator to look at."""
    configurable = config.get("configurable") or {}
    scope = bound(config).scope
    letter = bound(config).services.dead_letters.add(
        tenant_id=scope.tenant_id if scope else "default",
        workflow=workflow,
        thread_id=str(configurable.get("thread_id", "")),
        task_id="router",
        agent=choice.next,
        inputs={"goal": goal, "next": choice.next, "instruction": choice.instruction},
        attempts=[
            {
                "agent": names.SUPERVISOR,
                "attempt": 1,
                "error_type": "RouterPingPong",
                "error": reason,
                "at": time.time(),
            }
        ],
        last_checkpoint_id=(configurable.get("checkpoint_map") or {}).get(""),
    )
    record(
        config,
        "dead_letter",
        {"dead_letter": letter.id, "error": reason},
        actor="system:podium",
        hook="dead_letter",
    )
    return letter.id


def _queued(task_id: str, agent: str, instruction: str, depends_on: list[str]) -> dict[str, Any]:

    return {
        "id": task_id,
        "agent": agent,
        "instruction": instruction,
        "depends_on": list(depends_on),
        "status": TaskStatus.QUEUED.value,
        "history": [],
        "attempts": 0,
    }


def _failed(update: dict[str, Any], error: str, **extra: Any) -> dict[str, Any]:
    return {**update, **extra, "status": RunStatus.FAILED.value, "error": error}


def _intake(state: WorkflowState) -> tuple[str | None, list[BaseMessage]]:
    """The goal of a new round, and the human message to add to the chat history.

    The goal is the latest human message the workflow has not answered yet, wherever it
    sits: a parent graph may put its own messages after it (`create_supervisor`'s handoff
    tool call and tool result). Without one, the `goal` key is the goal.
    """
    messages = state.get("messages") or []
    for message in reversed(messages):
        if isinstance(message, AIMessage) and message.name == ANSWER_NAME:
            break  # everything before podium's last answer was answered already
        if isinstance(message, HumanMessage) and message.text.strip():
            return message.text, []
    goal = state.get("goal")
    if goal:
        return goal, [HumanMessage(goal)]
    return None, []


def _done_records(tasks: Mapping[str, Any], results: Mapping[str, Any]) -> list[dict[str, Any]]:
    done = []
    for task_id, task in tasks.items():
        if task_id in results:
            done.append(results[task_id])
        elif task["status"] in BLOCKING:
            done.append(
                {
                    "task_id": task_id,
                    "agent": task["agent"],
                    "summary": f"FAILED: {task.get('error') or task['status']}",
                }
            )
    return done


def _index_thread(config: RunnableConfig, workflow: str, title: str, status: str) -> None:
    """Record the thread in the runtime's index as a new round starts (root graph only;
    nested runs share it).

    The new round replaces whatever run the thread had: gates an earlier round left open
    can never be decided now, so they are abandoned and no longer keep the thread
    `waiting` (`podium.gates.interrupt`). Only a thread whose last round did not complete
    can have such gates, so a round after a completed one costs no statement more.
    """
    configurable = config.get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None or "|" in configurable.get("checkpoint_ns", ""):
        return
    ctx = current_context(config)
    services = bound(config).services
    before = services.threads.record(
        str(thread_id), tenant_id=ctx.tenant_id, workflow=workflow, title=title, status=status
    )
    if before not in (None, RunStatus.COMPLETED):
        services.approvals.abandon_open(str(thread_id), ctx.tenant_id)
