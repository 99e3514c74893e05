"""Deciding gates from outside the graph: list what is pending, check, then resume.

`decide` refuses, before anything is resumed, a decision by a user without a required
role, a decision naming a user other than the caller (`context` is who decides and who is
recorded), an unknown gate id, a bare decision when several gates are pending, a decision of
the wrong shape and a gate decided before (double click, two tabs). Each refusal leaves
the gate open. Several gates can be decided in one resume, each decision reaching its
own task.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.types import Command

from podium.context import RunContext
from podium.errors import AlreadyDecided, GateError, GateForbidden
from podium.gates.request import Decision, GateRequest, caller_mismatch, fits, may_decide
from podium.governance.binding import bound
from podium.stores.services import Services


@dataclass(frozen=True, slots=True)
class PendingGate:
    interrupt_id: str
    request: GateRequest
    note: str | None = None


def pending_gates(app: Any, thread_id: str) -> list[PendingGate]:
    """The gates a thread is waiting on, in the order LangGraph reports them."""
    return _gates(app.get_state({"configurable": {"thread_id": thread_id}}))


async def apending_gates(app: Any, thread_id: str) -> list[PendingGate]:
    """`pending_gates` for async runtimes."""
    return _gates(await app.aget_state({"configurable": {"thread_id": thread_id}}))


def _gates(snapshot: Any) -> list[PendingGate]:
    return gates_of((item.id, item.value) for item in snapshot.interrupts)


def gates_of(interrupts: Iterable[tuple[str, Any]]) -> list[PendingGate]:
    """The podium gates among `(interrupt id, value)` pairs, in order (other interrupts
    are not gates). Used on a local snapshot and on a LangGraph server's state alike."""
    gates = []
    for interrupt_id, value in interrupts:
        if isinstance(value, dict) and "gate_id" in value:
            fields = {k: v for k, v in value.items() if k != "note"}
            request = GateRequest.model_validate(fields)
            gates.append(PendingGate(interrupt_id, request, value.get("note")))
    return gates


def decide(
    app: Any,
    thread_id: str,
    decisions: Decision | Mapping[str, Decision] | str,
    *,
    context: RunContext,
    gate: str | None = None,
    stream_mode: str | Sequence[str] | None = None,
    subgraphs: bool = False,
) -> Any:
    """Apply one decision (`gate` names it when several are pending) or a map of
    gate id -> decision, then resume the run. Returns what `invoke` returns (or the
    stream iterator when `stream_mode` is given, of subgraphs too with `subgraphs`).
    `context` is the caller: the decision is recorded as theirs, and checked against
    their roles.

    Raises:
        GateError: (or `GateForbidden`, `AlreadyDecided`) naming what is wrong; nothing
            is resumed and the gates stay open.
    """
    services = _services(app)
    pending = {g.request.gate_id: g for g in pending_gates(app, thread_id)}
    resume, claimed = _claim(services, pending, decisions, gate, context, thread_id)
    config = {"configurable": {"thread_id": thread_id}}
    try:
        if stream_mode:
            events = app.stream(
                Command(resume=resume),
                config,
                context=context,
                stream_mode=stream_mode,
                subgraphs=subgraphs,
            )
            return _reopening(events, services, claimed)
        return app.invoke(Command(resume=resume), config, context=context)
    except Exception:
        for gate_id in claimed:
            services.approvals.unclaim(gate_id)
        raise


async def adecide(
    app: Any,
    thread_id: str,
    decisions: Decision | Mapping[str, Decision] | str,
    *,
    context: RunContext,
    gate: str | None = None,
) -> Any:
    """`decide` for async runtimes (returns what `ainvoke` returns)."""
    services = _services(app)
    pending = {g.request.gate_id: g for g in await apending_gates(app, thread_id)}
    resume, claimed = _claim(services, pending, decisions, gate, context, thread_id)
    try:
        return await app.ainvoke(
            Command(resume=resume), {"configurable": {"thread_id": thread_id}}, context=context
        )
    except Exception:
        for gate_id in claimed:
            services.approvals.unclaim(gate_id)
        raise


def _reopening(events: Iterable[Any], services: Services, claimed: list[str]) -> Iterator[Any]:
    """Yield a resumed run's events; if reading them fails, reopen the claimed gates."""
    try:
        yield from events
    except Exception:
        for gate_id in claimed:
            services.approvals.unclaim(gate_id)
        raise


def _claim(
    services: Services,
    pending: Mapping[str, PendingGate],
    decisions: Decision | Mapping[str, Decision] | str,
    gate: str | None,
    context: RunContext,
    thread_id: str,
) -> tuple[dict[str, Any], list[str]]:
    """Check every decision, then claim the gates; returns the resume map and the claims."""
    chosen = _choose(decisions, gate, pending, services, context, thread_id)
    for gate_id, decision in chosen.items():
        _check(pending[gate_id].request, decision, context)
    # The caller travels with the decision, and the gate it is for: the graph checks the
    # caller against the run's context, and applies the decision to that gate only.
    chosen = {
        g: d.model_copy(update={"user": context.user_id, "gate_id": g}) for g, d in chosen.items()
    }
    claimed: list[str] = []
    try:
        for gate_id, decision in chosen.items():
            again = _raised_again(services, gate_id, context.tenant_id, decision)
            if again is not None:
                chosen[gate_id] = again
                continue
            services.approvals.claim(gate_id, context.tenant_id, decision, context.user_id)
            claimed.append(gate_id)
    except AlreadyDecided:
        for gate_id in claimed:
            services.approvals.unclaim(gate_id)
        raise
    resume = {pending[g].interrupt_id: d.model_dump() for g, d in chosen.items()}
    return resume, claimed


def _raised_again(
    services: Services, gate_id: str, tenant_id: str, decision: Decision
) -> Decision | None:
    """The recorded decision of a gate that is decided yet waits again (its run lost the
    resume value to a crash before the step that took it was saved), when `decision` is
    the same: sent again as recorded (by its decider), it lets the run go on; nothing is
    decided twice. None for any other gate."""
    record = services.approvals.get(gate_id, tenant_id)
    if record is None or record.status != "decided" or not record.decision:
        return None
    recorded = Decision.model_validate(record.decision)
    fields = ("decision", "args", "plan", "answer", "response", "comment")
    if any(getattr(recorded, f) != getattr(decision, f) for f in fields):
        return None  # a different decision: `claim` refuses it (`AlreadyDecided`)
    return recorded.model_copy(update={"gate_id": gate_id})


def _choose(
    decisions: Decision | Mapping[str, Decision] | str,
    gate: str | None,
    pending: Mapping[str, PendingGate],
    services: Services,
    context: RunContext,
    thread_id: str,
) -> dict[str, Decision]:
    if isinstance(decisions, str):
        decisions = Decision.model_validate({"decision": decisions})
    if isinstance(decisions, Decision):
        if gate is None:
            if not pending:
                raise GateError(f"thread {thread_id!r} has no pending gate")
            if len(pending) > 1:
                raise GateError(
                    f"{len(pending)} gates are pending on thread {thread_id!r} "
                    f"({', '.join(pending)}); name one, or decide them with a map of "
                    "gate id -> decision"
                )
            gate = next(iter(pending))
        decisions = {gate: decisions}
    for gate_id in decisions:
        if gate_id not in pending:
            record = services.approvals.get(gate_id, context.tenant_id)
            if record is not None and record.status == "decided":
                raise AlreadyDecided(record)
            known = ", ".join(pending) or "none"
            raise GateError(
                f"unknown gate {gate_id!r} on thread {thread_id!r}; pending gates: {known}"
            )
    return dict(decisions)


def _check(request: GateRequest, decision: Decision, context: RunContext) -> None:
    problem = fits(decision, request)
    if problem:
        raise GateError(f"gate {request.gate_id!r}: {problem}")
    problem = caller_mismatch(decision, context.user_id)
    if problem:
        raise GateForbidden(f"gate {request.gate_id!r}: {problem}")
    if not may_decide(request, context.roles):
        raise GateForbidden(
            f"user {context.user_id!r} (roles: {', '.join(sorted(context.roles)) or 'none'}) may "
            f"not decide gate {request.gate_id!r}; it needs one of: {', '.join(request.roles)}"
        )


def _services(app: Any) -> Services:
    return bound(getattr(app, "config", None)).services
