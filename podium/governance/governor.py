"""The governed model and the governed tool: the single choke points of every call.

Every model call of a supervisor or worker goes through `Governor.call_model`, and every
tool call through the one tool-call decision (`podium.governance.tool_call`: from the
built-in worker's `ToolNode` through `Governor.wrap_tool_call`, from a custom worker
through its governed tool objects), so agent code cannot skip what the runtime
enforces: model routing, rate limits, circuit breakers, budget reservations, retries
with backoff, timeouts, usage and cost accounting and the audit trail. A task's model
replies are recorded and replayed when the task runs again (`podium.governance.replay`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command

import podium.governance.tool_call as _governed_tool
import podium.policies as P
from podium.errors import PolicyViolation
from podium.governance.calls import Call, node_call
from podium.governance.context_window import explained
from podium.governance.core import GovernorCore
from podium.governance.fallback import ModelChain
from podium.governance.marks import governed
from podium.governance.recovery import (
    RetrySettings,
    acall_with_timeout,
    aretry_call,
    call_with_timeout,
    classify,
    retry_call,
    retry_settings,
)
from podium.governance.replay import TaskReplies, with_call_ids
from podium.governance.scope import Scope, call_scope
from podium.governance.structured import Structured, bind_structured, unwrap, uses_native
from podium.models import cost_usd, model_label, resolve_model
from podium.policies.ratelimit import model_entry
from podium.pricing import price_of
from podium.state import Usage
from podium.stores.breakers.store import BreakerSettings
from podium.stores.budgets.store import Claim, Reservation
from podium.stores.services import Services
from podium.tokens import approx_tokens, message_text

#: Output tokens reserved for a call whose model does not say its maximum.
DEFAULT_OUTPUT_RESERVE = 1024
EMPTY_POLICY = P.PolicySet()

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class ModelCall:
    """What was decided before a model call: which model, and what was reserved."""

    scope: Scope
    model: Runnable[Any, Any]
    label: str
    reservation: Reservation | None
    retry: RetrySettings
    #: Keyword arguments of the call itself (`max_tokens` under a budget): passed to
    #: `invoke`, as a binding would, without building a binding per call.
    kwargs: Mapping[str, Any] = field(default_factory=dict)


class Governor(GovernorCore):
    """Runs model and tool calls on behalf of agents, enforcing the workflow's policies."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.breaker = BreakerSettings()
        self._closed: dict[str, float] = {}
        self._bound: dict[tuple[Any, ...], Any] = {}

    # -- model path ---------------------------------------------------------------------

    def call_model(
        self,
        model: Runnable[Any, Any],
        messages: Sequence[BaseMessage],
        *,
        agent: str,
        task_id: str | None,
        config: RunnableConfig | None = None,
        scope: Scope | None = None,
        tools: Sequence[Any] = (),
        structured: Structured | None = None,
        fallbacks: Sequence[Any] = (),
    ) -> Any:
        """One model call, governed, made by `scope` (its caller; without one, an agent
        outside any workflow, under no policy). Returns the reply (an `AIMessage`), or with
        `structured` on a model that supports it natively a `StructuredReply`.

        When the model is down (its transient failures outlast the retries, or its breaker
        is open) the next of `fallbacks` (or of the policy's model list) takes the call.
        """
        caller = _caller(scope, agent, task_id)
        log, step = _replay_log(caller, messages)
        if log is not None and step is not None and (recorded := log.recorded(step)) is not None:
            # A reply an earlier run of this task already paid for: the same tool calls
            # again, no second bill (whichever model of the chain gave it).
            return self._replayed(caller, recorded, messages, step)
        chain = ModelChain(self, model, fallbacks, caller)
        for candidate in chain:
            try:
                reply = self._call_one(
                    candidate.model, messages, scope=caller, config=config,
                    tools=tools, structured=structured, route=candidate.route,
                    log=log, step=step,
                )  # fmt: skip
            except Exception as exc:
                chain.failed(candidate, exc)
                continue
            return chain.answered(candidate, reply)
        raise AssertionError("unreachable: the chain re-raises its last failure")

    async def acall_model(
        self,
        model: Runnable[Any, Any],
        messages: Sequence[BaseMessage],
        *,
        agent: str,
        task_id: str | None,
        config: RunnableConfig | None = None,
        scope: Scope | None = None,
        tools: Sequence[Any] = (),
        structured: Structured | None = None,
        fallbacks: Sequence[Any] = (),
    ) -> Any:
        """`call_model` for async runs."""
        s = self.services
        caller = _caller(scope, agent, task_id)
        log, step = _replay_log(caller, messages)
        if log is not None and step is not None:
            recorded = log.recorded(step) if log.loaded else await s.run_sync(log.recorded, step)
            if recorded is not None:
                return self._replayed(caller, recorded, messages, step)
        chain = ModelChain(self, model, fallbacks, caller)
        for candidate in chain:
            try:
                reply = await self._acall_one(
                    candidate.model, messages, scope=caller, config=config,
                    tools=tools, structured=structured, route=candidate.route,
                    log=log, step=step,
                )  # fmt: skip
            except Exception as exc:
                await self.services.run_sync(chain.failed, candidate, exc)
                continue
            return chain.answered(candidate, reply)
        raise AssertionError("unreachable: the chain re-raises its last failure")

    def _call_one(
        self,
        model: Runnable[Any, Any],
        messages: Sequence[BaseMessage],
        *,
        scope: Scope,
        config: RunnableConfig | None,
        tools: Sequence[Any],
        structured: Structured | None,
        route: bool,
        log: TaskReplies | None = None,
        step: str | None = None,
    ) -> Any:
        s = self.services
        prepared, limits = self._prepare(model, scope, route=route)
        if limits:
            s.ratelimiter.acquire(
                prepared.scope.tenant_id, limits, timeout=s.rate_wait, sleep=s.sleep
            )
        chosen = prepared.model
        prepared = self._admit(prepared, messages, tools, structured)

        def attempt() -> Any:
            self._breaker_check("model", prepared)
            return call_with_timeout(
                lambda: _governed_invoke(prepared.model, messages, config, prepared.kwargs),
                self._model_timeout(prepared),
                f"model {prepared.label!r}",
            )

        try:
            reply = retry_call(
                attempt,
                prepared.retry,
                sleep=s.sleep,
                on_retry=self._on_retry(prepared.scope, f"model:{prepared.label}"),
            )
        except Exception as exc:
            failure = explained(exc, model=chosen, label=prepared.label, agent=scope.agent)
            self._model_failed(prepared, failure)
            if failure is exc:
                raise
            raise failure from exc
        return self._after_model(prepared, reply, messages, log, step)

    async def _acall_one(
        self,
        model: Runnable[Any, Any],
        messages: Sequence[BaseMessage],
        *,
        scope: Scope,
        config: RunnableConfig | None,
        tools: Sequence[Any],
        structured: Structured | None,
        route: bool,
        log: TaskReplies | None = None,
        step: str | None = None,
    ) -> Any:
        s = self.services
        if route and scope.policies and scope.policies.routes_on_budget:
            # Routing reads what was spent: a database call.
            prepared, limits = await s.run_sync(self._prepare, model, scope, route)
        else:
            prepared, limits = self._prepare(model, scope, route)
        if limits:
            await s.aacquire(prepared.scope.tenant_id, limits)
        chosen = prepared.model
        if s.budgets.runs_on_loop:
            # Budget holds and settlements go to the database from the loop (PostgreSQL).
            prepared = await self._aadmit(prepared, messages, tools, structured)
        else:
            prepared = await s.run_sync(self._admit, prepared, messages, tools, structured)

        async def attempt() -> Any:
            if not self._healthy("model", prepared.label, prepared.scope):
                await s.run_sync(self._breaker_check, "model", prepared)
            return await acall_with_timeout(
                lambda: _agoverned_invoke(prepared.model, messages, config, prepared.kwargs),
                self._model_timeout(prepared),
                f"model {prepared.label!r}",
            )

        try:
            reply = await aretry_call(
                attempt,
                prepared.retry,
                sleep=s.asleep,
                on_retry=self._on_retry(prepared.scope, f"model:{prepared.label}"),
            )
        except asyncio.CancelledError:
            # The run was cancelled mid-call: give its hold back now, not after the TTL.
            if prepared.reservation is not None:
                release = (
                    s.budgets.arelease(prepared.reservation)
                    if s.budgets.runs_on_loop
                    else s.run_sync(s.budgets.release, prepared.reservation)
                )
                await asyncio.shield(release)
            raise
        except Exception as exc:
            failure = explained(exc, model=chosen, label=prepared.label, agent=scope.agent)
            if prepared.reservation is not None and s.budgets.runs_on_loop:
                await s.budgets.arelease(prepared.reservation)
                prepared = replace(prepared, reservation=None)
            await s.run_sync(self._model_failed, prepared, failure)
            if failure is exc:
                raise
            raise failure from exc

        if prepared.reservation is None or not s.budgets.runs_on_loop:
            return await s.run_sync(self._after_model, prepared, reply, messages, log, step)
        if (log is None or step is None) and self._healthy("model", prepared.label, prepared.scope):
            # Nothing to write now (no reply to record, a breaker known closed): the audit
            # event and usage row wait in the step's buffer, so no hop to a worker thread.
            reply, usage, settled = self._finish_model(prepared, reply, messages, log, step)
        else:
            finish = self._finish_model
            reply, usage, settled = await s.run_sync(finish, prepared, reply, messages, log, step)
        if settled:  # with the recorded reply: no longer open for the hold batches
            s.budgets.loop_batches().closed(prepared.reservation)
        else:
            await s.budgets.asettle(prepared.reservation, _spend(usage))
        return reply

    def _prepare(
        self,
        model: Runnable[Any, Any],
        scope: Scope,
        route: bool = True,
    ) -> tuple[ModelCall, list[P.RateLimit]]:
        """Which model (after routing) and which rate limits apply to a call by `scope`. A
        fallback model is not routed: it is what the chain chose."""
        policy = scope.policies or EMPTY_POLICY
        call = call_scope(scope)
        if route:
            model = self._route(model, scope, policy, call)
        label = model_label(model) if isinstance(model, BaseChatModel) else type(model).__name__
        limits = P.rate_limits_for(policy, call, model=label) if scope.policies else []
        settings = P.agent_settings(policy, call).retry if scope.policies else None
        return ModelCall(scope, model, label, None, retry_settings(settings)), limits

    def _admit(
        self,
        prepared: ModelCall,
        messages: Sequence[BaseMessage],
        tools: Sequence[Any],
        structured: Structured | None = None,
    ) -> ModelCall:
        """Reserve budget for the call and bind the agent's tools to the chosen model."""
        claims = self._claims(prepared, messages)
        reservation = self.hold(prepared.scope, claims) if claims else None
        return self._admitted(prepared, tools, reservation, structured)

    async def _aadmit(
        self,
        prepared: ModelCall,
        messages: Sequence[BaseMessage],
        tools: Sequence[Any],
        structured: Structured | None = None,
    ) -> ModelCall:
        """`_admit` with the budget hold made from the event loop."""
        claims, scope = self._claims(prepared, messages), prepared.scope
        reservation = None
        if claims:
            with self._refusals_recorded(scope):
                reservation = await self.services.budgets.areserve(
                    scope.tenant_id,
                    claims,
                    ref=f"{scope.run_key}:{scope.agent}",
                    wait=self.services.budget_wait,
                )
        return self._admitted(prepared, tools, reservation, structured)

    def _admitted(
        self,
        prepared: ModelCall,
        tools: Sequence[Any],
        reservation: Reservation | None,
        structured: Structured | None = None,
    ) -> ModelCall:
        """The call with the agent's tools bound (or structured output asked for) and, under
        a budget, its output bounded by what the hold covers: it cannot spend more than it
        holds."""
        if reservation is None:
            model = self._bind(prepared.model, tools, structured)
        elif uses_native(prepared.model, structured):
            # Structured output wraps the model in a chain: the cap goes on the model itself.
            capped = _with_max_tokens(prepared.model, output_cap(prepared.model))
            model = bind_structured(capped, structured) if structured else capped
        else:
            model = self._bind(prepared.model, tools, structured)
            cap = {"max_tokens": output_cap(prepared.model)}
            return replace(prepared, model=model, reservation=reservation, kwargs=cap)
        return replace(prepared, model=model, reservation=reservation)

    @contextmanager
    def _refusals_recorded(self, scope: Scope) -> Iterator[None]:
        """Record a budget refusal in the audit log (and let it propagate)."""
        try:
            yield
        except Exception as exc:
            if classify(exc) == "budget":
                self.record(scope, "budget", {"refused": str(exc)})
            raise

    def _bind(self, model: Any, tools: Sequence[Any], structured: Structured | None = None) -> Any:
        """The model with the agent's tools bound, or asked for structured output natively;
        cached (binding converts every schema)."""
        if uses_native(model, structured):
            assert structured is not None
            key: tuple[Any, ...] = (id(model), structured.schema, structured.mode)
            bound = self._bound.get(key)
            if bound is None:
                bound = self._bound[key] = bind_structured(model, structured)
            return bound
        if not tools:
            return model
        key = (id(model), tuple(id(t) for t in tools))
        bound = self._bound.get(key)
        if bound is None:
            bound = self._bound[key] = model.bind_tools(list(tools))
        return bound

    def _route(self, model: Any, scope: Scope, policy: P.PolicySet, call: P.CallScope) -> Any:
        if not scope.policies or not isinstance(model, BaseChatModel):
            return model
        current = model_label(model)
        fraction = None
        limits = P.budget_limits(policy, call)
        # Reading what was spent costs a query per level: only when a downgrade could apply
        # (the rule routes at a fraction of 0.0 only if it exists). Without a downgrade rule
        # an async call prepares on the event loop (`_acall_one`), where it must not read.
        if (
            len(limits)
            and policy.routes_on_budget
            and P.route_model(policy, call, current=current, remaining_fraction=0.0).details.get(
                "routed"
            )
        ):
            fraction = P.remaining_fraction(limits, self._spent(scope, policy, call))
        decision = P.route_model(
            policy,
            call,
            current=model_label(model),
            task_class=scope.task_class,
            remaining_fraction=fraction,
        )
        if not decision.details.get("routed"):
            return model
        self.record_decision(scope, "model_route", decision)
        return resolve_model(decision.details["model"])

    def _claims(self, prepared: ModelCall, messages: Sequence[BaseMessage]) -> list[Claim]:
        """What a model call must hold on each budget level (none without budgets)."""
        # The hold covers the prompt and the most the reply may write (`_admitted` binds
        # max_tokens to that), so settling never exceeds what was held.
        return self.claims(prepared.scope, prepared.label, messages, output_cap(prepared.model))

    def claims(
        self, scope: Scope, label: str, messages: Sequence[BaseMessage], most_output: int
    ) -> list[Claim]:
        """What a call of model `label` by `scope` must hold on each budget level, for
        `messages` and a reply of at most `most_output` tokens (none without budgets).

        Raises:
            PolicyViolation: a USD budget applies and no price covers the model.
        """
        if not scope.policies:
            return []
        limits = P.budget_limits(scope.policies, call_scope(scope))
        if not len(limits):
            return []
        tokens = approx_tokens(message_text(messages)) + most_output
        prices = P.price_table(scope.policies)
        usd = cost_usd(label, tokens, tokens, prices)
        if not usd:  # a priced model costs something; only a free or unpriced one is looked up
            self.refuse_unpriced(scope, label, limits, prices)
        return [
            Claim(
                self._budget_key(scope, limit.scope),
                limit.unit,
                limit.limit,
                tokens if limit.unit == "tokens" else usd,
            )
            for limit in limits
        ]

    def refuse_unpriced(
        self, scope: Scope, label: str, limits: P.BudgetLimits, prices: dict[str, Any]
    ) -> None:
        """Refuse a call of model `label` that a USD budget applies to but no price
        covers: its calls would count as free, and the budget would never stop them.

        Raises:
            PolicyViolation: naming the model and the `prices` entry to add (recorded as
                a budget refusal in the audit log).
        """
        usd_limit = next((limit for limit in limits if limit.unit == "usd"), None)
        if usd_limit is None:
            return
        if price_of(label, prices) is not None:
            return
        refusal = PolicyViolation(
            usd_limit.rule,
            f"model {label!r} has no price, so the USD budget it sets cannot count what "
            f"the model spends; price it in the policy: `prices: {{{label}: {{input: "
            "<USD per million input tokens>, output: <USD per million output tokens>}}`",
            {"model": label, "budget": usd_limit.key},
        )
        self.record(scope, "budget", {"refused": str(refusal)})
        raise refusal

    def hold(
        self, scope: Scope, claims: Sequence[Claim], *, wait: float | None = None
    ) -> Reservation:
        """Hold `claims` for a call by `scope` (a refusal is audited), waiting up to `wait`
        seconds (None: `Services.budget_wait`) for other calls' holds in the way.

        Raises:
            BudgetExceeded: a level has no room for its claim.
        """
        if self.services.recorder.settling:
            self.services.recorder.flush()  # this process's settled spend first
        with self._refusals_recorded(scope):
            return self.services.budgets.reserve(
                scope.tenant_id,
                claims,
                ref=f"{scope.run_key}:{scope.agent}",
                wait=self.services.budget_wait if wait is None else wait,
            )

    def hold_unhanded(
        self,
        scope: Scope,
        label: str,
        messages: Sequence[BaseMessage],
        max_tokens: int | None,
        *,
        wait: float | None = None,
    ) -> Reservation | None:
        """Hold budget for a call of a model podium did not hand over (a compiled graph's
        own, which the callback guard sees start), as for podium's own calls; None when
        no budget applies. Its reply is not capped at the hold, so settling may exceed it.
        `wait` as in `hold` (the guard passes 0 on an event loop, which it must not block).

        Raises:
            BudgetExceeded, PolicyViolation: as `claims` and `hold`.
        """
        claims = self.claims(scope, label, messages, max_tokens or DEFAULT_OUTPUT_RESERVE)
        return self.hold(scope, claims, wait=wait) if claims else None

    def settle_unhanded(self, reservation: Reservation, usage: Usage | None) -> None:
        """Settle a `hold_unhanded` hold with what the call spent (None: it failed)."""
        if usage is None:
            self.services.budgets.release(reservation)
        else:
            self.services.budgets.settle(reservation, _spend(usage))

    def _spent(self, scope: Scope, policy: P.PolicySet, call: P.CallScope) -> dict[str, float]:
        if self.services.recorder.settling:
            self.services.recorder.flush()  # this process's settled spend first
        spent: dict[str, float] = {}
        for limit in P.budget_limits(policy, call):
            spent[limit.key] = self.services.budgets.spent(
                scope.tenant_id, self._budget_key(scope, limit.scope), limit.unit
            )
        return spent

    @staticmethod
    def _budget_key(scope: Scope, level: str) -> str:
        if level == "tenant_day":
            return f"tenant_day:{dt.datetime.now(dt.UTC).date().isoformat()}"
        if level == "run":
            return f"run:{scope.run_key}"
        return f"agent:{scope.run_key}:{scope.agent}"

    def _model_timeout(self, prepared: ModelCall) -> float | None:
        """Seconds a model call may take: the policy's `models.<name>.timeout`, else the
        runtime's `model_timeout`."""
        policies = prepared.scope.policies
        entry = model_entry(policies, prepared.label) if policies is not None else None
        if entry is not None and entry[1].timeout is not None:
            return float(entry[1].timeout)
        return self.services.model_timeout

    def _model_failed(self, prepared: ModelCall, exc: Exception) -> None:
        s, scope = self.services, prepared.scope
        self.breaker_failure("model", prepared.label, scope, exc)
        if prepared.reservation is not None:
            s.budgets.release(prepared.reservation)
        self.record(
            scope,
            "error",
            {"model": prepared.label, "error_type": type(exc).__name__, "error": str(exc)[:500]},
        )

    def _after_model(
        self,
        prepared: ModelCall,
        reply: Any,
        messages: Sequence[BaseMessage],
        log: TaskReplies | None = None,
        step: str | None = None,
    ) -> Any:
        reply, usage, settled = self._finish_model(prepared, reply, messages, log, step)
        if prepared.reservation is not None and not settled:
            s = self.services
            settlement = s.budgets.settlement(prepared.reservation, _spend(usage))
            if settlement is None:
                s.budgets.settle(prepared.reservation, _spend(usage))
            else:
                # Written with the step's records (its usage row and audit event) at the
                # step's end; a hold or a read of spend made before then writes it first,
                # so every later call sees the real spend (an estimate can be lower).
                s.recorder.settle(settlement)
        return reply

    def _finish_model(
        self,
        prepared: ModelCall,
        result: Any,
        messages: Sequence[BaseMessage],
        log: TaskReplies | None = None,
        step: str | None = None,
    ) -> tuple[Any, Usage, bool]:
        """Check the reply, close the breaker's failure count and record the call; a
        task's reply is recorded with its bill, and its budget hold settled, before it is
        returned (so before any of its tool calls runs). The flag says whether the hold
        was settled here."""
        reply, structured = unwrap(result)
        if not isinstance(reply, AIMessage):
            raise TypeError(
                f"the model of agent {prepared.scope.agent!r} returned "
                f"{type(reply).__name__}, not an AIMessage; pass a chat model"
            )
        scope = prepared.scope
        self.breaker_success("model", prepared.label, scope)
        if log is None or step is None or structured is not None:
            reply = with_call_ids(reply)
            usage = self.account(scope, reply, label=prepared.label, messages=messages)
            return (structured or reply), usage, False
        usage, entry = self.bill(scope, reply, label=prepared.label)
        settlement = None
        if prepared.reservation is not None:
            settlement = self.services.budgets.settlement(prepared.reservation, _spend(usage))
        reply = log.record(step, reply, [entry], settlement)
        self.audit_model_call(
            scope, reply, usage, label=prepared.label, messages=messages, step=step
        )
        return reply, usage, settlement is not None

    def _replayed(
        self,
        scope: Scope,
        reply: AIMessage,
        messages: Sequence[BaseMessage],
        step: str | None,
    ) -> AIMessage:
        """A reply recorded by an earlier run of the task: no call, no bill, one audit
        event saying so."""
        self.audit_model_call(scope, reply, None, messages=messages, step=step)
        return reply

    # -- tool path ----------------------------------------------------------------------

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        execute: Callable[[ToolCallRequest], ToolMessage | Command[Any]],
        scope: Scope | None = None,
    ) -> ToolMessage | Command[Any]:
        """The built-in worker's `ToolNode` hook: the call, made by `scope`, goes through
        the one decision."""
        scope, call, run = _tool_node_call(request, execute, scope)
        return _governed_tool.run(self, scope, call, run)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        execute: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
        scope: Scope | None = None,
    ) -> ToolMessage | Command[Any]:
        """`wrap_tool_call` for async runs."""
        scope, call, run = _tool_node_call(request, execute, scope)
        return await _governed_tool.arun(self, scope, call, run)


def _tool_node_call(
    request: ToolCallRequest, execute: Callable[[ToolCallRequest], R], scope: Scope | None
) -> tuple[Scope, Call, Callable[[Call], R]]:
    scope = scope or Scope(workflow="-", agent="-")
    tc = request.tool_call
    call = node_call(tc, request.tool)

    def run(c: Call) -> R:
        return execute(request.override(tool_call={**tc, "args": c.args}))

    return scope, call, run


def _caller(scope: Scope | None, agent: str, task_id: str | None) -> Scope:
    """Who makes a model call for `agent`: `scope` (as that agent), or an agent outside
    any workflow."""
    if scope is None:
        return Scope(workflow="-", agent=agent, task_id=task_id)
    return scope if scope.agent == agent else scope.for_agent(agent, task_id)


def _replay_log(
    scope: Scope, messages: Sequence[BaseMessage]
) -> tuple[TaskReplies | None, str | None]:
    """The task's reply log and this call's step, when the call is a task's model call."""
    log = scope.replies
    if log is None or log.key.agent != scope.agent:
        return None, None
    return log, log.step(messages)


def _with_max_tokens(model: Any, cap: int) -> Any:
    """A copy of a chat model whose replies stop at `cap` tokens (as `bind(max_tokens=)`
    does for a plain call)."""
    fields = getattr(type(model), "model_fields", {})
    if "max_tokens" in fields:
        return model.model_copy(update={"max_tokens": cap})
    if "max_output_tokens" in fields:
        return model.model_copy(update={"max_output_tokens": cap})
    return model


def output_cap(model: Any) -> int:
    """Most output tokens a budgeted call may write: the model's own `max_tokens`, else
    `DEFAULT_OUTPUT_RESERVE`."""
    return int(getattr(model, "max_tokens", None) or DEFAULT_OUTPUT_RESERVE)


def _governed_invoke(
    model: Any, messages: Sequence[BaseMessage], config: Any, kwargs: Mapping[str, Any]
) -> Any:
    with governed():
        return model.invoke(list(messages), config, **kwargs)


async def _agoverned_invoke(
    model: Any, messages: Sequence[BaseMessage], config: Any, kwargs: Mapping[str, Any]
) -> Any:
    with governed():
        return await model.ainvoke(list(messages), config, **kwargs)


def _spend(usage: Usage) -> dict[str, float]:
    """What a call spent, per budget unit."""
    return {"tokens": usage["total_tokens"], "usd": usage["cost_usd"]}
