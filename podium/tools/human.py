"""`ask_human`: lets an agent ask a person a question and wait for the answer (a gate)."""

from __future__ import annotations

from typing import Annotated

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import InjectedToolCallId, tool

from podium.gates.interrupt import await_decision, gate_id
from podium.gates.request import GateRequest
from podium.governance.binding import bound


@tool
def ask_human(
    question: str,
    config: RunnableConfig,
    tool_call_id: Annotated[str, InjectedToolCallId],
) -> str:
    """Ask a person a question when you cannot go on without their answer.

    Args:
        question: One clear question.

    Returns:
        The person's answer.
    """
    scope, services = bound(config).scope, bound(config).services
    thread = scope.thread_id if scope else None
    request = GateRequest(
        gate_id=gate_id(thread, scope.task_id if scope else None, tool_call_id),
        kind="question",
        tenant_id=scope.tenant_id if scope else "default",
        workflow=scope.workflow if scope else "unknown",
        thread_id=thread,
        task_id=scope.task_id if scope else None,
        agent=scope.agent if scope else None,
        tool="ask_human",
        question=question,
        rule="tools.ask_human",
        requested_at=services.clock(),
    )
    decision = await_decision(request, services)
    if decision.decision == "reject":
        return f"The person declined to answer. {decision.comment}".strip()
    return decision.response or ""
