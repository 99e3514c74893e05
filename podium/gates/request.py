"""Human gates: what an approval interrupt carries and what a decision may say.

A gate is a LangGraph `interrupt()` whose value is a `GateRequest` (JSON-serialisable).
Resume with `Command(resume={interrupt_id: Decision(...).model_dump()})`, or use
`podium.decide`, which checks the decision first (role, pending, schema) and refuses a
second decision on the same gate.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

GateKind = Literal["tool", "plan", "answer", "question", "effect"]
Verdict = Literal["approve", "edit", "reject", "respond", "done", "retry", "abandon"]


class GateRequest(BaseModel):
    """The payload of a gate's interrupt: what is asked, of whom, until when.

    Attributes:
        gate_id: Stable id of the gate (the same across re-execution and restarts).
        kind: "tool" (a tool call), "plan", "answer", "question" (the agent asks a human),
            or "effect" (a side effect the ledger cannot confirm: did it happen?).
        workflow, thread_id, task_id, agent: Where the gate was raised.
        tool, args: The tool call awaiting approval (kind "tool").
        plan: The proposed plan tasks (kind "plan"); answer: the proposed answer (kind "answer").
        question: What the agent asks (kind "question").
        rule: The policy rule that demanded the gate.
        roles: Roles allowed to decide; empty means anyone may.
        requested_at, expires_at: Seconds since the epoch; expired gates are escalated.
        tenant_id: Owner of the thread.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    gate_id: str
    kind: GateKind
    tenant_id: str = "default"
    workflow: str
    thread_id: str | None = None
    task_id: str | None = None
    agent: str | None = None
    tool: str | None = None
    args: dict[str, Any] | None = None
    plan: list[dict[str, Any]] | None = None
    answer: str | None = None
    question: str | None = None
    rule: str = ""
    roles: list[str] = Field(default_factory=list)
    requested_at: float
    expires_at: float | None = None


class Decision(BaseModel):
    """A human's decision on a gate.

    `approve` lets it through; `edit` replaces the arguments (`args`), the plan (`plan`) or
    the answer (`answer`), validated like the original; `reject` refuses, and `comment`
    goes back to the agent as the tool result; `respond` answers a question (`response`).

    Who decided is never taken from the decision: it is the caller (the credential on a
    server, the `RunContext` of `decide`). `user` may be left out; when given it must name
    the caller, or the decision is refused (`caller_mismatch`).

    An effect gate takes `done` (the effect happened), `retry` (it did not: run the call
    again) or `abandon` (do not run it; the agent is told).

    `gate_id` may name the gate the decision is for (`podium.decide` sets it); a decision
    that names another gate is never applied to this one. LangGraph hands a step's resume
    values to its interrupts in the order they are reached, so a step that raised several
    gates could otherwise give one gate's decision to another.
    """

    model_config = ConfigDict(extra="forbid")

    decision: Verdict
    args: dict[str, Any] | None = None
    plan: list[dict[str, Any]] | None = None
    answer: str | None = None
    response: str | None = None
    comment: str = ""
    user: str | None = None
    gate_id: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Decision:
        if (
            self.decision == "edit"
            and self.args is None
            and self.plan is None
            and (self.answer is None)
        ):
            raise ValueError("an 'edit' decision needs args, plan or answer")
        if self.decision == "respond" and not self.response:
            raise ValueError("a 'respond' decision needs a response")
        return self


def fits(decision: Decision, request: GateRequest) -> str | None:
    """Why `decision` does not fit `request`'s kind, or None when it does."""
    allowed: dict[str, set[str]] = {
        "tool": {"approve", "edit", "reject"},
        "plan": {"approve", "edit", "reject"},
        "answer": {"approve", "edit", "reject"},
        "question": {"respond", "reject"},
        "effect": {"done", "retry", "abandon"},
    }
    if decision.decision not in allowed[request.kind]:
        return (
            f"a {request.kind} gate takes {', '.join(sorted(allowed[request.kind]))}; "
            f"got {decision.decision!r}"
        )
    if decision.decision == "edit":
        needed = {"tool": "args", "plan": "plan", "answer": "answer"}[request.kind]
        if getattr(decision, needed) is None:
            return f"an edit of a {request.kind} gate needs {needed!r}"
    return None


def caller_mismatch(decision: Decision, user_id: str) -> str | None:
    """Why `decision` cannot be recorded for the caller `user_id`, or None when it can.

    A decision that names someone else (`{"decision": "approve", "user": "ceo@acme"}` sent
    by ana) is refused rather than recorded under either name.
    """
    if decision.user is None or decision.user == user_id:
        return None
    return (
        f"the decision names user {decision.user!r} but the caller is {user_id!r}; a "
        "decision is recorded under the caller's identity only: leave 'user' out"
    )


def may_decide(request: GateRequest, roles: frozenset[str] | set[str]) -> bool:
    """Whether a user with `roles` may decide the gate (no roles listed: anyone may)."""
    return not request.roles or bool(set(request.roles) & set(roles))
