"""In doubt is a state: a side effect the ledger cannot confirm waits for an operator.

A side-effect call that started and never reported (its process died mid-tool) may or
may not have happened. Instead of running it again or calling it a success, the task
stops (`EffectInDoubt`) and the task node moves it to `waiting`; the supervisor marks
the run `waiting` and sends the task again, and this time the call raises an effect
gate ("did this effect happen?") where it is. The gate is listed by `podium approvals`
and the app. The operator answers with `done` (it happened: the agent gets a note as
the result), `retry` (it did not: run it now) or `abandon` (do not run it; the agent is
told), through `podium effects resolve` or the `decide` API. The answer is applied to
the ledger and audited when the run resumes.

Two steps, because a LangGraph step that is interrupted writes nothing: the task's and
the run's `waiting` must be written by a step that ends before the gate is raised. The
task's second run replays the first one's recorded model replies, so it comes back to
the same call with the same id.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from langchain_core.messages import ToolMessage
from langgraph.errors import GraphBubbleUp

import podium.policies as P
from podium.errors import EffectStateError
from podium.gates.request import GateRequest
from podium.governance.core import GovernorCore
from podium.stores.effects.keys import InDoubt, Recorded, Started

if TYPE_CHECKING:
    from podium.governance.calls import Call
    from podium.governance.scope import Scope
    from podium.stores.effects.keys import EffectKey


class EffectInDoubt(GraphBubbleUp):
    """Stops a task whose side-effect call is in doubt, so that the task node moves it
    to `waiting` before the effect's gate is raised.

    A `GraphBubbleUp`, like LangGraph's interrupts: a `ToolNode` and LangGraph's own
    loop pass it up unhandled, to the task node that ran the worker. Worker code must
    not catch it (nor a bare `Exception` around a tool call), as with an interrupt.
    """

    def __init__(self, tool: str, key: EffectKey, status: InDoubt) -> None:
        self.tool, self.key, self.status = tool, key, status
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(status.started_at))
        super().__init__(
            f"effect in doubt: {tool} started at {started} UTC (attempt {status.attempt}) "
            "and never reported; waiting for an operator"
        )


def resolve_at_gate(
    gov: GovernorCore, scope: Scope, call: Call, key: EffectKey, status: InDoubt
) -> Started | Recorded | ToolMessage:
    """Wait at the effect gate of `key`; returns what the ledger says after the answer
    (run it, its recorded result) or the message for the model when it is abandoned."""
    from podium.gates.interrupt import await_decision, gate_id
    from podium.governance.calls import in_graph_step, no_step, record_decision, refusal
    from podium.governance.scope import call_scope

    if not in_graph_step():
        why = "started before and never reported, so it waits for an operator at a gate"
        return refusal(call, no_step(call, why))
    roles: list[str] = []
    if scope.policies is not None:
        approval = P.requires_approval(scope.policies, call_scope(scope), call.name, call.args)
        roles = list(approval.details.get("roles") or ())
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(status.started_at))
    gate = GateRequest(
        gate_id=gate_id("effect", key.tenant_id, key.thread_id, key.task_id, key.call_key),
        kind="effect",
        tenant_id=scope.tenant_id,
        workflow=scope.workflow,
        thread_id=scope.thread_id,
        task_id=scope.task_id,
        agent=scope.agent,
        tool=call.name,
        args=dict(call.args),
        question=(
            f"{call.name} started at {started} UTC (attempt {status.attempt}) and never "
            "reported; did its effect happen? done: it happened; retry: it did not, run it "
            "again; abandon: do not run it"
        ),
        rule="in_doubt",
        roles=roles,
        requested_at=gov.services.clock(),
    )
    decision = await_decision(gate, gov.services)
    record_decision(gov, scope, gate, decision, tool=call.name, call_key=key.call_key)
    who = decision.user or "an operator"
    action = {"done": "mark_done", "retry": "rerun", "abandon": "abandon"}[decision.decision]
    ledger = gov.services.effects
    # Settled meanwhile (another resume): the ledger's state stands.
    with contextlib.suppress(EffectStateError):
        ledger.resolve_in_doubt(key, action=action, by=who)  # type: ignore[arg-type]
    if decision.decision == "abandon":
        note = f": {decision.comment}" if decision.comment else ""
        return refusal(
            call,
            f"A previous call of {call.name!r} may or may not have happened; {who} "
            f"abandoned it{note}. It was not run again.",
        )
    after = ledger.begin(key, call.name, call.args)
    if isinstance(after, InDoubt):  # another process runs it right now
        return refusal(call, _unresolved(call, after))
    return after


def _unresolved(call: Call, status: InDoubt) -> str:
    return (
        f"A previous call of {call.name!r} started but never finished, so it may or may not "
        "have happened. It was not run again; an operator must resolve it "
        "(`podium effects resolve`)."
    )
