"""The `gate` node that approves plans and final answers (the waiting itself is
`podium.gates.interrupt.await_decision`).

supervisor -> gate -> supervisor   (plan approval, before dispatch)
aggregate  -> gate -> END          (answer approval)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END
from langgraph.types import Command
from pydantic import ValidationError

import podium.names as names
from podium.context import current_context
from podium.errors import PlanError
from podium.gates.interrupt import await_decision, gate_id
from podium.gates.request import Decision, GateKind, GateRequest
from podium.governance.binding import bound
from podium.lifecycle import RunStatus, TaskStatus
from podium.nodes.letters import settle_stopped_replays
from podium.nodes.record import set_thread_status
from podium.plan import Plan, validate_plan
from podium.state import ANSWER_NAME


def make_gate_node(
    workflow: str, agents: list[str], roles: list[str], expires_in: float | None
) -> Any:  # a node LangGraph calls as (state, config); its protocols want a TypedDict
    """The gate node for plan and answer approvals of `workflow`."""

    def gate(state: dict[str, Any], config: RunnableConfig) -> Command[str]:
        services = bound(config).services
        ctx = current_context(config)
        thread = (config.get("configurable") or {}).get("thread_id")

        pending = state.get("status")
        kind: GateKind = "plan" if pending == RunStatus.AWAITING_PLAN_APPROVAL else "answer"
        now = services.clock()
        request = GateRequest(
            gate_id=gate_id(thread, state.get("round", 0), kind),
            kind=kind,
            tenant_id=ctx.tenant_id,
            workflow=workflow,
            thread_id=thread,
            plan=state.get("plan") if kind == "plan" else None,
            answer=state.get("answer") if kind == "answer" else None,
            rule=f"workflows.{workflow}.approve_{kind}",
            roles=roles,
            requested_at=now,
            expires_at=now + expires_in if expires_in else None,
        )
        if kind == "plan":
            decision = await_decision(request, services, _plan_check(agents))
            command = _after_plan(state, decision)
        else:
            decision = await_decision(request, services)
            command = _after_answer(state, decision)
            set_thread_status(config, (command.update or {})["status"])
            settle_stopped_replays(config, ctx.tenant_id, state)
        services.recorder.event(
            "approval",
            f"user:{ctx.user_id}",
            {
                "gate_id": request.gate_id,
                "kind": kind,
                "decision": decision.decision,
                "comment": decision.comment,
                "user": ctx.user_id,
            },
            tenant_id=ctx.tenant_id,
            workflow=workflow,
            thread_id=thread,
            hook="gate",
        )
        services.flush()
        return command

    return gate


def _plan_check(agents: list[str]) -> Callable[[Decision], str | None]:
    def check(decision: Decision) -> str | None:
        if decision.decision != "edit":
            return None
        try:
            validate_plan(Plan.model_validate({"tasks": decision.plan}), agents)
        except (ValidationError, PlanError) as exc:
            return f"edited plan is invalid: {exc}"
        return None

    return check


def _after_plan(state: dict[str, Any], decision: Decision) -> Command[str]:
    who = decision.user or "a reviewer"
    if decision.decision == "reject":
        reason = f"plan rejected by {who}" + (f": {decision.comment}" if decision.comment else "")
        return Command(
            update={"status": RunStatus.FAILED.value, "error": reason}, goto=names.AGGREGATE
        )
    update: dict[str, Any] = {"status": RunStatus.RUNNING.value}
    if decision.decision == "edit":
        plan = Plan.model_validate({"tasks": decision.plan})
        fresh = {
            t.id: {
                "id": t.id,
                "agent": t.agent,
                "instruction": t.instruction,
                "depends_on": list(t.depends_on),
                "status": TaskStatus.QUEUED.value,
                "history": [],
                "attempts": 0,
            }
            for t in plan.tasks
        }
        update.update(plan=[t.model_dump() for t in plan.tasks], tasks={"__reset__": True, **fresh})
    return Command(update=update, goto=names.SUPERVISOR)


def _after_answer(state: dict[str, Any], decision: Decision) -> Command[str]:
    who = decision.user or "a reviewer"
    if decision.decision == "reject":
        reason = f"answer rejected by {who}" + (f": {decision.comment}" if decision.comment else "")
        return Command(
            update={
                "status": RunStatus.FAILED.value,
                "error": reason,
                "messages": [AIMessage(f"The answer was rejected: {reason}", name=ANSWER_NAME)],
            },
            goto=END,
        )
    answer = decision.answer if decision.decision == "edit" else state.get("answer", "")
    return Command(
        update={
            "status": state.get("pending_status") or RunStatus.COMPLETED.value,
            "answer": answer,
            "messages": [AIMessage(answer, name=ANSWER_NAME)],
        },
        goto=END,
    )
