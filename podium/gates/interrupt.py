"""How a run waits for a person: the gate is opened in the approvals store, announced on
the stream and raised as a LangGraph `interrupt()`; a decision resumes it.

Used by the tool-call path (approval of a tool call, an effect in doubt), by ask_human
(a question) and by the gate node (plans and final answers), at any depth of nesting.

Every gate passes here, so here the thread index learns that a run waits: when a gate
stops the run, the thread is `waiting`; when a decision lets it go on and no other gate
of the thread is open, it is `running` again (the run's end then writes its final status,
`podium.nodes.aggregate`). So the stored status is right for every reader (the CLI, the
app, a LangGraph server's runs, a query of the table), whoever started or resumed the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langgraph.config import get_config, get_stream_writer
from langgraph.errors import GraphInterrupt
from langgraph.types import interrupt
from pydantic import ValidationError

from podium.context import current_context
from podium.gates.request import Decision, GateRequest, caller_mismatch, fits, may_decide
from podium.lifecycle import RunStatus

if TYPE_CHECKING:
    from podium.stores.services import Services


@dataclass
class _StepResumes:
    """The resume values of one graph step that reached a gate other than the one they
    name, held for that gate (`sharing_resumes`)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    held: dict[str, Any] = field(default_factory=dict)


_STEP: ContextVar[_StepResumes | None] = ContextVar("podium_step_resumes", default=None)


@contextmanager
def sharing_resumes() -> Iterator[None]:
    """Let the gates raised below (one graph step's, from any thread or asyncio task that
    carries the context) hand each other the decisions that name them.

    LangGraph hands a step's resume values to its interrupts in the order they are
    reached. Gates raised by calls running in parallel reach them in any order; a gate
    that takes a decision naming another gate holds it for that gate, which takes it
    instead of raising its interrupt again, so each decision reaches the gate it names.
    """
    token = _STEP.set(_StepResumes())
    try:
        yield
    finally:
        _STEP.reset(token)


def _resume_value(request: GateRequest, payload: dict[str, Any]) -> Any:
    """The next resume value for `request`'s gate: one another gate of the step held for
    it, else its interrupt's; raises `GraphInterrupt` when there is none."""
    step = _STEP.get()
    if step is None:
        return interrupt(payload)
    # One gate at a time: a value taken here is held for the gate it names before another
    # gate looks for its own, so none is left behind.
    with step.lock:
        while request.gate_id not in step.held:
            raw = interrupt(payload)
            named = raw.get("gate_id") if isinstance(raw, dict) else None
            if named in (None, request.gate_id):
                return raw
            step.held[named] = raw
        return step.held.pop(request.gate_id)


def step_key() -> str | None:
    """The running graph step's checkpoint namespace (its node and task id): the same on
    every run of the step, resumed or re-run after a crash; None outside a graph step."""
    try:
        configurable = get_config().get("configurable") or {}
    except RuntimeError:
        return None
    return configurable.get("checkpoint_ns") or None


def take_slot(request: GateRequest) -> None:
    """Take, and leave unused, the resume value of `request`'s gate in this step's resume
    values, when the gate needs none (a call that ran in an earlier run of the step) but
    was raised and decided in this step before: the step's later gates then keep their
    own values, which LangGraph hands out by the order its interrupts are reached."""
    step = _STEP.get()
    with contextlib.suppress(GraphInterrupt):  # none held for it: nothing taken, no wait
        if step is None:
            interrupt(request.model_dump())
            return
        with step.lock:
            if request.gate_id in step.held:
                del step.held[request.gate_id]
                return
            raw = interrupt(request.model_dump())
            named = raw.get("gate_id") if isinstance(raw, dict) else None
            if named not in (None, request.gate_id):
                step.held[named] = raw  # another gate's decision, in this gate's place


def gate_id(*parts: Any) -> str:
    """A stable gate id from what identifies the gate (thread, task, tool call id...)."""
    return "g-" + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12]


def await_decision(
    request: GateRequest,
    services: Services,
    validate: Callable[[Decision], str | None] | None = None,
) -> Decision:
    """Raise the gate and return the first acceptable decision.

    A decision naming another gate (`Decision.gate_id`) is passed over. A decision of the
    wrong shape, naming a user other than the caller, by a user without a required role,
    or failing `validate` (returns a problem or None) does not pass: the gate is raised
    again with the problem noted, so it stays open. Code before this call
    re-runs on resume. The decision returned carries who decided as `user`: the run's
    caller (on a server, the credential of the request that resumed it), or, for the
    decision the gate's record holds, the user recorded there (`_decided_as`).
    """
    services.approvals.open(request, raised_in=step_key())
    _emit_gate(request)
    note: str | None = None
    while True:
        try:
            raw = _resume_value(
                request, {**request.model_dump(), "note": note} if note else request.model_dump()
            )
        except GraphInterrupt:
            _stopped(request, services)
            raise
        try:
            decision = Decision.model_validate(
                raw if not isinstance(raw, str) else {"decision": raw}
            )
        except ValidationError as exc:
            note = f"invalid decision: {exc.errors()[0]['msg']}"
            services.approvals.unclaim(request.gate_id)
            continue
        if decision.gate_id not in (None, request.gate_id):
            # Another gate's decision, handed here by the order the step's interrupts were
            # reached (outside `sharing_resumes`, or for a call that took its decision in
            # an earlier run and does not raise its gate again): not this gate's, so wait
            # for the next value.
            continue
        ctx = current_context()
        decider = _decided_as(request, decision, services)
        note = fits(decision, request)
        if note is None and decider is None:
            note = caller_mismatch(decision, ctx.user_id)
            if note is None and not may_decide(request, ctx.roles):
                note = (
                    f"user {ctx.user_id!r} may not decide this gate; it needs one of the "
                    f"roles {', '.join(request.roles)}"
                )
        if note is None and validate is not None:
            note = validate(decision)
        if note is None:
            decision = decision.model_copy(update={"user": decider or ctx.user_id})
            services.approvals.record(request.gate_id, decision, ctx.user_id)
            _going_on(request, services)
            return decision
        # The decision did not pass: the gate is raised again, so it is open again.
        services.approvals.unclaim(request.gate_id)


def _decided_as(request: GateRequest, decision: Decision, services: Services) -> str | None:
    """Who decided the gate, when `decision` is the decision its record holds: claimed by
    `podium.decide`, which checked the caller and their roles, or taken by an earlier run
    of this step (a step with several gates runs again on each resume and takes again the
    decisions it took before, whoever resumes it now). None for any other decision, which
    the caller of this run must be allowed to make."""
    record = services.approvals.get(request.gate_id, request.tenant_id)
    if record is None or record.status != "decided" or not record.decision:
        return None
    held = Decision.model_validate(record.decision).model_copy(update={"user": None})
    same = held == decision.model_copy(update={"user": None})
    return record.decided_by if same and decision.user in (None, record.decided_by) else None


def _stopped(request: GateRequest, services: Services) -> None:
    """The run stops at `request`'s gate until someone decides it: its thread waits."""
    if request.thread_id is not None:
        services.threads.set_status(request.thread_id, RunStatus.WAITING.value)


def _going_on(request: GateRequest, services: Services) -> None:
    """`request`'s gate is decided and the run goes on: its thread runs again, unless
    another of its gates is still open (a parallel task's, which stops the run again)."""
    thread = request.thread_id
    if thread is None or services.approvals.open_on_thread(thread, request.tenant_id):
        return
    services.threads.set_status(thread, RunStatus.RUNNING.value)


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
