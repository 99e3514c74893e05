"""The one tool-call decision: what happens around every tool call an agent makes.

allow-list -> argument constraints -> approval gate -> rate limit -> circuit breaker ->
exactly-once ledger (side-effect tools) -> call with timeout and retries -> output
filter -> audit. A refusal goes back to the model as a ToolMessage, so it can adapt.

Every way a tool runs under podium reaches this module: the built-in worker's
`ToolNode` (through `wrap_tool_call`), a governed tool object handed to a custom worker
(`podium.governance.governed_tool.GovernedTool`), and the callback guard of a custom graph
(`clear`: the part that can run before a tool it did not wrap).

The approval gates of the calls of one model reply are raised one at a time, in call
order, before any of those calls runs (`gate_in_order`): LangGraph hands a step's resume
values to its `interrupt()` calls in the order they are reached, so gates reached by
calls running in parallel could take one another's decisions.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

from langchain_core.messages import ToolMessage
from langgraph.types import Command

import podium.policies as P
from podium.context import current_context
from podium.gates.request import Decision, GateRequest
from podium.governance.calls import (
    Call,
    in_graph_step,
    message,
    no_step,
    record_decision,
    refusal,
)
from podium.governance.core import GovernorCore
from podium.governance.marks import governed
from podium.governance.recovery import (
    NO_RETRY,
    RetrySettings,
    acall_with_timeout,
    aretry_call,
    call_with_timeout,
    retry_call,
)
from podium.governance.scope import Scope
from podium.stores.effects.store import EffectKey, InDoubt, Recorded


@dataclass(slots=True)
class Prepared:
    scope: Scope
    call: Call
    settings: P.ToolSettings
    limits: list[P.RateLimit] = field(default_factory=list)
    effect: EffectKey | None = None


#: What a tool call answers with: a ToolMessage (the tool's result or podium's refusal),
#: or the `Command` a tool may return to update the graph's state.
Outcome = ToolMessage | Command[Any]

#: Runs the cleared call and returns its ToolMessage (the tool's own result).
Execute = Callable[[Call], Outcome]

#: `Execute` for async callers.
AsyncExecute = Callable[[Call], Awaitable[Outcome]]

#: The decisions of the approval gates of the calls about to run, by call id, taken by
#: `gate_in_order` (a context variable: LangGraph's executor and asyncio tasks carry it
#: to the calls).
_DECIDED: ContextVar[Mapping[str, Decision] | None] = ContextVar("podium_decided", default=None)


def gate_in_order(gov: GovernorCore, scope: Scope, calls: Sequence[Call]) -> dict[str, Decision]:
    """Raise the approval gates of `calls` (one model reply's) one at a time, in call order,
    and return their decisions by call id; run the calls under `decided(...)` of them.

    LangGraph matches a step's resume values to its `interrupt()` calls by the order they
    are reached, not by gate. Calls that ran their gates in parallel reached them in any
    order, so a decision could land on another call's gate (approving alice's payment sent
    bob's). Raised here, from one thread, the n-th gate of the reply is always the n-th
    interrupt of the step, on the first run and on every resume: each decision reaches the
    gate it was given for. The second gate is raised once the first is decided, so one gate
    of a reply is open at a time. A call refused by the policy raises no gate; `clear`
    refuses it when it runs.
    """
    from podium.governance.scope import call_scope

    decisions: dict[str, Decision] = {}
    if scope.policies is None or not in_graph_step():
        return decisions
    policy, who = scope.policies, call_scope(scope)
    taken: list[tuple[GateRequest, Call, Decision]] = []
    for call in calls:
        if not (
            P.evaluate_tool(policy, who, call.name).allowed
            and P.evaluate_arguments(policy, who, call.name, call.args).allowed
        ):
            continue
        approval = P.requires_approval(policy, who, call.name, call.args)
        if approval.allowed:
            continue
        decision = _decision(gov, scope, call, approval, taken)
        if isinstance(decision, Decision):
            decisions[call.id] = decision
    # Audited once all the reply's gates are decided: until then the step runs again on
    # each resume, and takes again the decisions it took before.
    for gate, call, decision in taken:
        record_decision(gov, scope, gate, decision, tool=call.name)
    return decisions


@contextmanager
def decided(decisions: Mapping[str, Decision]) -> Iterator[None]:
    """Run the calls of a reply with the decisions `gate_in_order` took for their gates:
    a call whose gate is decided there is not gated again."""
    token = _DECIDED.set(decisions)
    try:
        yield
    finally:
        _DECIDED.reset(token)


def run(gov: GovernorCore, scope: Scope, call: Call, execute: Execute) -> Outcome:
    """Decide and run one tool call (synchronously); returns the ToolMessage for the model."""
    outcome = _prepare(gov, scope, call)
    if not isinstance(outcome, Prepared):
        return outcome
    s, p = gov.services, outcome
    if p.limits:
        s.ratelimiter.acquire(p.scope.tenant_id, p.limits, timeout=s.rate_wait, sleep=s.sleep)
    if (early := _claim_effect(gov, p)) is not None:
        return early

    def attempt() -> Outcome:
        _breaker(gov, p)
        return call_with_timeout(
            lambda: _run_governed(execute, p.call), p.settings.timeout, f"tool {p.call.name!r}"
        )

    try:
        result = retry_call(attempt, _retry(p), sleep=s.sleep, on_retry=_on_retry(gov, p))
    except Exception as exc:
        return _failed(gov, p, exc)
    return _finish(gov, p, result)


async def arun(gov: GovernorCore, scope: Scope, call: Call, execute: AsyncExecute) -> Outcome:
    """`run` for async callers (`execute` returns an awaitable)."""
    outcome = await gov.services.run_sync(_prepare, gov, scope, call)
    if not isinstance(outcome, Prepared):
        return outcome
    s, p = gov.services, outcome
    if p.limits:
        await s.aacquire(p.scope.tenant_id, p.limits)
    if (early := await s.run_sync(_claim_effect, gov, p)) is not None:
        return early

    async def attempt() -> Outcome:
        if not gov._healthy("tool", p.call.name, p.scope):
            await s.run_sync(_breaker, gov, p)
        return await acall_with_timeout(
            lambda: _arun_governed(execute, p.call), p.settings.timeout, f"tool {p.call.name!r}"
        )

    try:
        result = await aretry_call(attempt, _retry(p), sleep=s.asleep, on_retry=_on_retry(gov, p))
    except Exception as exc:
        return await s.run_sync(_failed, gov, p, exc)
    return await s.run_sync(_finish, gov, p, result)


def _run_governed(execute: Execute, call: Call) -> Outcome:
    with governed():
        return execute(call)


async def _arun_governed(execute: AsyncExecute, call: Call) -> Outcome:
    with governed():
        return await execute(call)


def clear(gov: GovernorCore, scope: Scope, call: Call) -> Call | ToolMessage:
    """The policy checks and the approval gate of one call, and its audit record.

    Returns the call to run (its arguments edited when a reviewer edited them) or the
    refusal for the model. Code before the gate re-runs when the run resumes, so the
    call is audited only once it is cleared.
    """
    from podium.governance.scope import call_scope

    if scope.policies is None:
        _record_call(gov, scope, call)
        return call
    policy, who = scope.policies, call_scope(scope)
    for what, decision in (
        ("tool", P.evaluate_tool(policy, who, call.name)),
        ("arguments", P.evaluate_arguments(policy, who, call.name, call.args)),
    ):
        if not decision.allowed:
            gov.record_decision(scope, what, decision)
            return refusal(call, f"Refused by policy ({decision.rule}): {decision.reason}")
    approval = P.requires_approval(policy, who, call.name, call.args)
    if not approval.allowed:
        decided = _gate(gov, scope, call, approval)
        if isinstance(decided, ToolMessage):
            return decided
        call = decided
    _record_call(gov, scope, call)
    return call


def _prepare(gov: GovernorCore, scope: Scope, call: Call) -> Prepared | ToolMessage:
    from podium.governance.scope import call_scope

    cleared = clear(gov, scope, call)
    if isinstance(cleared, ToolMessage):
        return cleared
    if scope.policies is None:
        return Prepared(scope, cleared, P.ToolSettings())
    who = call_scope(scope)
    settings = P.tool_settings(scope.policies, who, cleared.name)
    effect = effect_key(scope, cleared.id) if settings.side_effects and scope.thread_id else None
    limits = P.rate_limits_for(scope.policies, who, tool=cleared.name)
    return Prepared(scope, cleared, settings, limits, effect)


def effect_key(scope: Scope, call_id: str) -> EffectKey:
    """The ledger key of a call: its tenant, thread, task, and the round with the call id
    (a follow-up round that repeats a call id is a new call)."""
    return EffectKey(
        scope.tenant_id, scope.thread_id or "-", scope.task_id or "-", f"r{scope.round}:{call_id}"
    )


def _record_call(gov: GovernorCore, scope: Scope, call: Call) -> None:
    gov.record(
        scope, "tool_call", {"tool": call.name, "call_id": call.id, "args": _digest(call.args)}
    )


def _gate(gov: GovernorCore, scope: Scope, call: Call, approval: P.Decision) -> Call | ToolMessage:
    """Raise the approval gate (unless `gate_in_order` decided it before the call ran);
    returns the (possibly edited) call or a refusal."""
    taken = _DECIDED.get()
    decision: Decision | ToolMessage | None = taken.get(call.id) if taken is not None else None
    if decision is None:
        decision = _decision(gov, scope, call, approval)
    if isinstance(decision, ToolMessage):
        return decision
    if decision.decision == "reject":
        # Who decided, as the gate verified it, never a name the payload gave unchecked.
        who = decision.user or current_context().user_id
        text = f"Rejected by {who}" + (f": {decision.comment}" if decision.comment else "")
        return refusal(call, text + ". The tool was not run.")
    if decision.decision == "edit":
        return replace(call, args=dict(decision.args or {}))
    return call


def _decision(
    gov: GovernorCore,
    scope: Scope,
    call: Call,
    approval: P.Decision,
    taken: list[tuple[GateRequest, Call, Decision]] | None = None,
) -> Decision | ToolMessage:
    """The decision of `call`'s approval gate (raised, or passed by an earlier run of the
    task), or the refusal of a call outside a graph step, where no gate can be raised.

    A decision taken at the gate is audited here, or added to `taken` for the caller to
    audit when given."""
    from podium.gates.interrupt import await_decision, gate_id
    from podium.governance.scope import call_scope

    if not in_graph_step():
        gov.record(scope, "error", {"tool": call.name, "gate": "outside_graph_step"})
        return refusal(call, no_step(call, f"needs approval ({approval.rule})"))
    now = gov.services.clock()
    expires = approval.details.get("expires_in")
    gate = GateRequest(
        gate_id=gate_id(scope.thread_id, scope.round, scope.task_id, call.id),
        kind="tool",
        tenant_id=scope.tenant_id,
        workflow=scope.workflow,
        thread_id=scope.thread_id,
        task_id=scope.task_id,
        agent=scope.agent,
        tool=call.name,
        args=dict(call.args),
        rule=approval.rule,
        roles=list(approval.details.get("roles") or ()),
        requested_at=now,
        expires_at=now + float(expires) if expires else None,
    )

    def check_edit(decision: Decision) -> str | None:
        if decision.decision != "edit":
            return None
        schema = getattr(call.tool, "args_schema", None)
        if schema is not None and hasattr(schema, "model_validate"):
            try:
                schema.model_validate(decision.args)
            except Exception as exc:
                return f"edited arguments do not fit {call.name!r}: {exc}"
        # `fits` refused an edit without arguments before this check runs.
        assert decision.args is not None
        verdict = P.evaluate_arguments(scope.policies, call_scope(scope), call.name, decision.args)
        return None if verdict.allowed else f"edited arguments refused: {verdict.reason}"

    earlier = _passed_before(gov, scope, call, gate)
    if earlier is not None:
        # An earlier run of this task got past this gate (the call reached the effect
        # ledger, which only a cleared call does): its decision stands, audited then.
        return earlier
    decision = await_decision(gate, gov.services, check_edit)
    if taken is None:
        record_decision(gov, scope, gate, decision, tool=call.name)
    else:
        taken.append((gate, call, decision))
    return decision


def _passed_before(
    gov: GovernorCore, scope: Scope, call: Call, gate: GateRequest
) -> Decision | None:
    """The decision of `gate` when an earlier run of the task got past it (a task that
    waited for an effect in doubt runs again with the same recorded replies, so the same
    calls and gates; a step resumed after its first calls ran): the effect ledger holds
    the call and the gate is decided. When this step raised the gate before, its resume
    value is taken, so the gates after it get theirs (`take_slot`)."""
    from podium.gates.interrupt import step_key, take_slot

    if not call.id or gov.services.effects.get(effect_key(scope, call.id)) is None:
        return None
    record = gov.services.approvals.get(gate.gate_id, scope.tenant_id)
    if record is None or record.status != "decided" or not record.decision:
        return None
    decision = Decision.model_validate(record.decision)
    if decision.decision not in ("approve", "edit"):
        return None
    if record.raised_in is not None and record.raised_in == step_key():
        take_slot(gate)
    return decision


def _claim_effect(gov: GovernorCore, p: Prepared) -> ToolMessage | None:
    """Exactly once: a recorded effect returns its result; a crashed one moves its task
    to `waiting` (audited once, here), then waits for an operator's answer at an effect
    gate (`podium.governance.in_doubt`)."""
    if p.effect is None:
        return None
    ledger = gov.services.effects
    status = ledger.begin(p.effect, p.call.name, p.call.args)
    if isinstance(status, InDoubt) and not p.settings.idempotent:
        from podium.governance.in_doubt import EffectInDoubt, resolve_at_gate

        if p.scope.moves_to_waiting:
            # The task moves to `waiting` first; its next run raises the gate (below).
            gov.record(
                p.scope,
                "error",
                {"tool": p.call.name, "in_doubt": True, "started_at": status.started_at},
            )
            raise EffectInDoubt(p.call.name, p.effect, status)
        answered = resolve_at_gate(gov, p.scope, p.call, p.effect, status)
        if isinstance(answered, ToolMessage):
            return answered
        status = answered
    if isinstance(status, Recorded):
        gov.record(p.scope, "tool_result", {"tool": p.call.name, "replayed": True})
        return message(p.call, _text(status.result))
    return None


def _breaker(gov: GovernorCore, p: Prepared) -> None:
    gov.breaker_allow("tool", p.call.name, p.scope)


def _failed(gov: GovernorCore, p: Prepared, exc: Exception) -> NoReturn:
    gov.breaker_failure("tool", p.call.name, p.scope, exc)
    if p.effect is not None:
        gov.services.effects.fail(p.effect, f"{type(exc).__name__}: {exc}")
    gov.record(
        p.scope,
        "error",
        {"tool": p.call.name, "error_type": type(exc).__name__, "error": str(exc)[:500]},
    )
    raise exc


def _finish(gov: GovernorCore, p: Prepared, result: Outcome) -> Outcome:
    s = gov.services
    gov.breaker_success("tool", p.call.name, p.scope)
    if isinstance(result, ToolMessage) and p.scope.policies is not None:
        from podium.governance.scope import call_scope

        filtered = P.filter_output(
            p.scope.policies, call_scope(p.scope), result.text, tool=p.call.name
        )
        for decision in filtered.decisions:
            gov.record_decision(p.scope, "output", decision)
        if filtered.decisions:
            result = result.model_copy(update={"content": filtered.text})
    if p.effect is not None and isinstance(result, ToolMessage):
        if result.status == "error":
            s.effects.fail(p.effect, result.text)
        else:
            s.effects.complete(p.effect, result.text)
    gov.record(
        p.scope,
        "tool_result",
        {
            "tool": p.call.name,
            "status": getattr(result, "status", "success"),
            "result": _digest(getattr(result, "text", str(result))),
        },
    )
    return result


def _retry(p: Prepared) -> RetrySettings:
    from podium.governance.recovery import retry_settings as to_settings

    if p.settings.side_effects and not p.settings.idempotent:
        return NO_RETRY  # a write that may have happened is not blindly repeated
    return to_settings(p.settings.retry)


def _on_retry(gov: GovernorCore, p: Prepared) -> Callable[[int, BaseException, float], None]:
    return gov._on_retry(p.scope, f"tool:{p.call.name}")


def _text(result: Any) -> str:
    return result if isinstance(result, str) else json.dumps(result)


def _digest(value: Any) -> str:
    from podium.governance.records import digest

    return digest(value)
