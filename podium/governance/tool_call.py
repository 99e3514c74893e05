"""The governed tool: what happens around every tool call an agent makes.

allow-list -> argument constraints -> approval gate -> rate limit -> circuit breaker ->
exactly-once ledger (side-effect tools) -> call with timeout and retries -> output
filter -> audit. A refusal goes back to the model as a ToolMessage, so it can adapt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.messages import ToolMessage
from langgraph.prebuilt.tool_node import ToolCallRequest

from podium import policies as P
from podium.context import current_context
from podium.gates.request import GateRequest
from podium.governance.guard import governed
from podium.governance.recovery import (
    NO_RETRY,
    acall_with_timeout,
    aretry_call,
    call_with_timeout,
    retry_call,
)
from podium.governance.scope import Scope, scope_from
from podium.stores.effects.store import EffectKey, InDoubt, Recorded

if TYPE_CHECKING:
    from podium.governance.governor import Governor


@dataclass(slots=True)
class Prepared:
    scope: Scope
    request: ToolCallRequest
    settings: P.ToolSettings
    limits: list = field(default_factory=list)
    effect: EffectKey | None = None


def run(gov: Governor, request: ToolCallRequest, execute) -> Any:
    outcome = _prepare(gov, request)
    if not isinstance(outcome, Prepared):
        return outcome
    s, p = gov.services, outcome
    if p.limits:
        s.ratelimiter.acquire(p.scope.tenant_id, p.limits, timeout=s.rate_wait, sleep=s.sleep)
    if (early := _claim_effect(gov, p)) is not None:
        return early

    def attempt():
        _breaker(gov, p)
        return call_with_timeout(
            lambda: _run_governed(execute, p.request), p.settings.timeout, f"tool {_name(p)!r}"
        )

    try:
        result = retry_call(attempt, _retry(p), sleep=s.sleep, on_retry=_on_retry(gov, p))
    except Exception as exc:
        return _failed(gov, p, exc)
    return _finish(gov, p, result)


async def arun(gov: Governor, request: ToolCallRequest, execute) -> Any:
    outcome = await gov.services.run_sync(_prepare, gov, request)
    if not isinstance(outcome, Prepared):
        return outcome
    s, p = gov.services, outcome
    if p.limits:
        await s.aacquire(p.scope.tenant_id, p.limits)
    if (early := await s.run_sync(_claim_effect, gov, p)) is not None:
        return early

    async def attempt():
        if not gov._healthy("tool", _name(p), p.scope):
            await s.run_sync(_breaker, gov, p)
        return await acall_with_timeout(
            lambda: _arun_governed(execute, p.request), p.settings.timeout, f"tool {_name(p)!r}"
        )

    try:
        result = await aretry_call(attempt, _retry(p), sleep=s.asleep, on_retry=_on_retry(gov, p))
    except Exception as exc:
        return await s.run_sync(_failed, gov, p, exc)
    return await s.run_sync(_finish, gov, p, result)


def _run_governed(execute: Any, request: ToolCallRequest) -> Any:
    with governed():
        return execute(request)


async def _arun_governed(execute: Any, request: ToolCallRequest) -> Any:
    with governed():
        return await execute(request)


def _name(p: Prepared) -> str:
    return p.request.tool_call["name"]


def _prepare(gov: Governor, request: ToolCallRequest) -> Prepared | ToolMessage:
    """Policy checks and the approval gate; a refusal comes back as a ToolMessage."""
    from podium.governance.scope import call_scope

    config = request.runtime.config if request.runtime is not None else None
    call_id = request.tool_call.get("id") or ""
    scope = scope_from(config) or Scope(workflow="-", agent="-")
    name, args = request.tool_call["name"], dict(request.tool_call.get("args") or {})
    if scope.policies is None:
        _record_call(gov, scope, request)
        return Prepared(scope, request, P.ToolSettings())
    policy, call = scope.policies, call_scope(scope)
    for what, decision in (
        ("tool", P.evaluate_tool(policy, call, name)),
        ("arguments", P.evaluate_arguments(policy, call, name, args)),
    ):
        if not decision.allowed:
            gov.record_decision(scope, what, decision)
            return _refusal(request, f"Refused by policy ({decision.rule}): {decision.reason}")
    approval = P.requires_approval(policy, call, name, args)
    if not approval.allowed:
        decided = _gate(gov, scope, request, approval)
        if isinstance(decided, ToolMessage):
            return decided
        request = decided
    _record_call(gov, scope, request)
    settings = P.tool_settings(policy, call, name)
    effect = None
    if settings.side_effects and scope.thread_id:
        effect = EffectKey(scope.tenant_id, scope.thread_id, scope.task_id or "-", call_id)
    return Prepared(scope, request, settings, P.rate_limits_for(policy, call, tool=name), effect)


def _record_call(gov: Governor, scope: Scope, request: ToolCallRequest) -> None:
    """Audit the call once it is cleared to run (code before a gate re-runs on resume)."""
    gov.record(
        scope,
        "tool_call",
        {
            "tool": request.tool_call["name"],
            "call_id": request.tool_call.get("id") or "",
            "args": _digest(request.tool_call.get("args") or {}),
        },
    )


def _gate(gov: Governor, scope: Scope, request: ToolCallRequest, approval: P.Decision):
    """Raise the approval gate; returns the (possibly edited) request or a refusal."""
    from podium.gates.interrupt import await_decision, gate_id
    from podium.governance.scope import call_scope

    name, call_id = request.tool_call["name"], request.tool_call.get("id") or ""
    now = gov.services.clock()
    expires = approval.details.get("expires_in")
    gate = GateRequest(
        gate_id=gate_id(scope.thread_id, scope.task_id, call_id),
        kind="tool",
        tenant_id=scope.tenant_id,
        workflow=scope.workflow,
        thread_id=scope.thread_id,
        task_id=scope.task_id,
        agent=scope.agent,
        tool=name,
        args=dict(request.tool_call.get("args") or {}),
        rule=approval.rule,
        roles=list(approval.details.get("roles") or ()),
        requested_at=now,
        expires_at=now + float(expires) if expires else None,
    )

    def check_edit(decision) -> str | None:
        if decision.decision != "edit":
            return None
        if request.tool is not None:
            try:
                request.tool.args_schema.model_validate(decision.args)  # type: ignore[union-attr]
            except Exception as exc:
                return f"edited arguments do not fit {name!r}: {exc}"
        verdict = P.evaluate_arguments(scope.policies, call_scope(scope), name, decision.args)
        return None if verdict.allowed else f"edited arguments refused: {verdict.reason}"

    decision = await_decision(gate, gov.services, check_edit)
    # The caller who resumed the run, never a name the decision's payload gave.
    who = current_context().user_id
    gov.record(
        scope,
        "approval",
        {
            "gate_id": gate.gate_id,
            "kind": "tool",
            "tool": name,
            "decision": decision.decision,
            "comment": decision.comment,
            "user": who,
        },
        actor=f"user:{who}",
        hook="gate",
    )
    if decision.decision == "reject":
        text = f"Rejected by {who}" + (f": {decision.comment}" if decision.comment else "")
        return _refusal(request, text + ". The tool was not run.")
    if decision.decision == "edit":
        return request.override(tool_call={**request.tool_call, "args": decision.args or {}})
    return request


def _claim_effect(gov: Governor, p: Prepared) -> ToolMessage | None:
    """Exactly once: a recorded effect returns its result; a crashed one goes to a human."""
    if p.effect is None:
        return None
    status = gov.services.effects.begin(p.effect, _name(p), p.request.tool_call.get("args") or {})
    if isinstance(status, Recorded):
        gov.record(p.scope, "tool_result", {"tool": _name(p), "replayed": True})
        return _message(p.request, _text(status.result))
    if isinstance(status, InDoubt) and not p.settings.idempotent:
        gov.record(
            p.scope, "error", {"tool": _name(p), "in_doubt": True, "started_at": status.started_at}
        )
        return _refusal(
            p.request,
            (
                f"A previous call of {_name(p)!r} started but never finished, so it may or may not "
                "have happened. It was not run again; an operator must resolve it in the effects "
                "ledger."
            ),
        )
    return None


def _breaker(gov: Governor, p: Prepared) -> None:
    gov.breaker_allow("tool", _name(p), p.scope)


def _failed(gov: Governor, p: Prepared, exc: Exception) -> Any:
    s = gov.services
    gov.breaker_failure("tool", _name(p), p.scope, exc)
    if p.effect is not None:
        s.effects.fail(p.effect, f"{type(exc).__name__}: {exc}")
    gov.record(
        p.scope,
        "error",
        {"tool": _name(p), "error_type": type(exc).__name__, "error": str(exc)[:500]},
    )
    raise exc


def _finish(gov: Governor, p: Prepared, result: Any) -> Any:
    s = gov.services
    gov.breaker_success("tool", _name(p), p.scope)
    if isinstance(result, ToolMessage) and p.scope.policies is not None:
        from podium.governance.scope import call_scope

        filtered = P.filter_output(
            p.scope.policies, call_scope(p.scope), result.text, tool=_name(p)
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
            "tool": _name(p),
            "status": getattr(result, "status", "success"),
            "result": _digest(getattr(result, "text", str(result))),
        },
    )
    return result


def _retry(p: Prepared):
    from podium.governance.recovery import retry_settings as to_settings

    if p.settings.side_effects and not p.settings.idempotent:
        return NO_RETRY  # a write that may have happened is not blindly repeated
    return to_settings(p.settings.retry)


def _on_retry(gov: Governor, p: Prepared):
    return gov._on_retry(p.scope, f"tool:{_name(p)}")


def _refusal(request: ToolCallRequest, text: str) -> ToolMessage:
    return ToolMessage(
        content=text,
        tool_call_id=request.tool_call.get("id") or "",
        name=request.tool_call["name"],
        status="error",
    )


def _message(request: ToolCallRequest, text: str) -> ToolMessage:
    return ToolMessage(
        content=text, tool_call_id=request.tool_call.get("id") or "", name=request.tool_call["name"]
    )


def _text(result: Any) -> str:
    return result if isinstance(result, str) else json.dumps(result)


def _digest(value: Any) -> str:
    from podium.governance.records import digest

    return digest(value)
