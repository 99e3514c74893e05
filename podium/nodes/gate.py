"""Human gates inside the graph: `await_decision` (used by the governed tool) and the
`gate` node that approves plans and final answers.

supervisor -> gate -> supervisor   (plan approval, before dispatch)
aggregate  -> gate -> END          (answer approval)
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.types import Command, interrupt
from pydantic import ValidationError

from podium.errors import PlanError
from podium.gates import Decision, GateKind, GateRequest, fits, may_decide
from podium.nodes.record import set_thread_status
from podium.plan import Plan, validate_plan
from podium.runtime.scope import current_context
from podium.runtime.services import Services, services_for

PLAN_PENDING = "awaiting_plan_approval"
ANSWER_PENDING = "awaiting_answer_approval"


def gate_id(*parts: Any) -> str:
    """A stable gate id from what identifies the gate (thread, task, tool call id...)."""
    return "g-" + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12]


def await_decision(request: GateRequest, services: Services, validate=None) -> Decision:
    """Raise the gate and return the first acceptable decision.

    A decision of the wrong shape, by a user without a required role, or failing
    `validate` (returns a problem or None) does not pass: the gate is raised again with
    the problem noted, so it stays open. Code before this call re-runs on resume.
    """
    services.approvals.open(request)
    _emit_gate(request)
    note: str | None = None
    while True:
        raw = interrupt({**request.model_dump(), "note": note} if note else request.model_dump())
        try:
            decision = Decision.model_validate(
                raw if not isinstance(raw, str) else {"decision": raw}
            )
        except ValidationError as exc:
            note = f"invalid decision: {exc.errors()[0]['msg']}"
            services.approvals.unclaim(request.gate_id)
            continue
        ctx = current_context()
        note = fits(decision, request)
        if note is None and not may_decide(request, ctx.roles):
            note = (
                f"user {ctx.user_id!r} may not decide this gate; it needs one of the roles "
                f"{', '.join(request.roles)}"
            )
        if note is None and validate is not None:
            note = validate(decision)
        if note is None:
            services.approvals.record(request.gate_id, decision, decision.user or ctx.user_id)
            return decision
        # The decision did not pass: the gate is raised again, so it is open again.
        services.approvals.unclaim(request.gate_id)


def _emit_gate(request: GateRequest) -> None:
    get_stream_writer()(
        {
            "event": "gate_raised",
            "gate_id": request.gate_id,
            "kind": request.kind,
            "task_id": request.task_id,
            "agent": request.agent,
            "tool": request.tool,
            "at": time.time(),
        }
    )


def make_gate_node(workflow: str, agents: list[str], roles: list[str], expires_in: float | None):
    """The gate node for plan and answer approvals of `workflow`."""

    def gate(state: dict[str, Any], config: RunnableConfig) -> Command:
        services = services_for(config)
        ctx = current_context(config)
        thread = (config.get("configurable") or {}).get("thread_id")

        kind: GateKind = "plan" if state.get("status") == PLAN_PENDING else "answer"
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
        services.recorder.event(
            "approval",
            f"user:{decision.user or ctx.user_id}",
            {
                "gate_id": request.gate_id,
                "kind": kind,
                "decision": decision.decision,
                "comment": decision.comment,
                "user": decision.user or ctx.user_id,
            },
            tenant_id=ctx.tenant_id,
            workflow=workflow,
            thread_id=thread,
            hook="gate",
        )
        services.flush()
        return command

    return gate


def _plan_check(agents: list[str]):
    def check(decision: Decision) -> str | None:
        if decision.decision != "edit":
            return None
        try:
            validate_plan(Plan.model_validate({"tasks": decision.plan}), agents)
        except (ValidationError, PlanError) as exc:
            return f"edited plan is invalid: {exc}"
        return None

    return check


def _after_plan(state: dict[str, Any], decision: Decision) -> Command:
    who = decision.user or "a reviewer"
    if decision.decision == "reject":
        reason = f"plan rejected by {who}" + (f": {decision.comment}" if decision.comment else "")
        return Command(update={"status": "failed", "error": reason}, goto="aggregate")
    update: dict[str, Any] = {"status": "running"}
    if decision.decision == "edit":
        plan = Plan.model_validate({"tasks": decision.plan})
        fresh = {
            t.id: {
                "id": t.id,
                "agent": t.agent,
                "instruction": t.instruction,
                "depends_on": list(t.depends_on),
                "status": "queued",
                "history": [],
                "attempts": 0,
            }
            for t in plan.tasks
        }
        update.update(plan=[t.model_dump() for t in plan.tasks], tasks={"__reset__": True, **fresh})
    return Command(update=update, goto="supervisor")


def _after_answer(state: dict[str, Any], decision: Decision) -> Command:
    who = decision.user or "a reviewer"
    if decision.decision == "reject":
        reason = f"answer rejected by {who}" + (f": {decision.comment}" if decision.comment else "")
        return Command(
            update={
                "status": "failed",
                "error": reason,
                "messages": [AIMessage(f"The answer was rejected: {reason}", name="podium")],
            },
            goto="__end__",
        )
    answer = decision.answer if decision.decision == "edit" else state.get("answer", "")
    return Command(
        update={
            "status": state.get("pending_status") or "completed",
            "answer": answer,
            "messages": [AIMessage(answer, name="podium")],
        },
        goto="__end__",
    )
