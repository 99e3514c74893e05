"""The governed model and the governed tool: the single choke points of every call.

Every model call of a supervisor or worker goes through `Governor.call_model`, and every
tool call through `Governor.wrap_tool_call` (installed on each worker's `ToolNode`), so
agent code cannot skip what the runtime enforces: model routing, rate limits, circuit
breakers, budget reservations, retries with backoff, timeouts, usage and cost accounting
and the audit trail. The tool path lives in `_governed_tool.py`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.prebuilt.tool_node import ToolCallRequest

from podium import policies as P
from podium.governance import tool_call as _governed_tool
from podium.governance.breaker_gate import BreakerGate
from podium.governance.guard import governed
from podium.governance.records import Recording
from podium.governance.recovery import (
    RetrySettings,
    acall_with_timeout,
    aretry_call,
    call_with_timeout,
    classify,
    retry_call,
    retry_settings,
)
from podium.governance.scope import Scope, call_scope, scope_from
from podium.models import PRICES, cost_usd, model_label, resolve_model
from podium.policies.ratelimit import model_entry
from podium.stores.breakers.store import BreakerSettings
from podium.stores.budgets.store import Claim, Reservation
from podium.stores.services import Services
from podium.tokens import approx_tokens, message_text

#: Output tokens reserved for a call whose model does not say its maximum.
DEFAULT_OUTPUT_RESERVE = 1024
EMPTY_POLICY = P.PolicySet()


@dataclass(frozen=True, slots=True)
class ModelCall:
    """What was decided before a model call: which model, and what was reserved."""

    scope: Scope
    model: Runnable
    label: str
    reservation: Reservation | None
    retry: RetrySettings


class Governor(BreakerGate, Recording):
    """Runs model and tool calls on behalf of agents, enforcing the workflow's policies."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.breaker = BreakerSettings()
        self._closed: dict[str, float] = {}
        self._bound: dict[tuple, Any] = {}

    # -- model path ---------------------------------------------------------------------

    def call_model(
        self,
        model: Runnable,
        messages: Sequence[BaseMessage],
        *,
        agent: str,
        task_id: str | None,
        config: RunnableConfig | None = None,
        tools: Sequence[Any] = (),
    ) -> AIMessage:
        s = self.services
        prepared, limits = self._prepare(model, agent, task_id, config)
        if limits:
            s.ratelimiter.acquire(
                prepared.scope.tenant_id, limits, timeout=s.rate_wait, sleep=s.sleep
            )
        prepared = self._admit(prepared, messages, tools)

        def attempt() -> AIMessage:
            self._breaker_check("model", prepared)
            return call_with_timeout(
                lambda: _governed_invoke(prepared.model, messages, config),
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
            self._model_failed(prepared, exc)
            raise
        return self._after_model(prepared, reply, messages)

    async def acall_model(
        self,
        model: Runnable,
        messages: Sequence[BaseMessage],
        *,
        agent: str,
        task_id: str | None,
        config: RunnableConfig | None = None,
        tools: Sequence[Any] = (),
    ) -> AIMessage:
        s = self.services
        prepared, limits = await s.run_sync(self._prepare, model, agent, task_id, config)
        if limits:
            await s.aacquire(prepared.scope.tenant_id, limits)
        if s.budgets.runs_on_loop:
            # Budget holds and settlements go to the database from the loop (PostgreSQL).
            prepared = await self._aadmit(prepared, messages, tools)
        else:
            prepared = await s.run_sync(self._admit, prepared, messages, tools)

        async def attempt() -> AIMessage:
            if not self._healthy("model", prepared.label, prepared.scope):
                await s.run_sync(self._breaker_check, "model", prepared)
            return await acall_with_timeout(
                lambda: _agoverned_invoke(prepared.model, messages, config),
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
            if prepared.reservation is not None and s.budgets.runs_on_loop:
                await s.budgets.arelease(prepared.reservation)
                prepared = replace(prepared, reservation=None)
            await s.run_sync(self._model_failed, prepared, exc)
            raise

        if prepared.reservation is None or not s.budgets.runs_on_loop:
            return await s.run_sync(self._after_model, prepared, reply, messages)
        reply, usage = await s.run_sync(self._finish_model, prepared, reply, messages)
        await s.budgets.asettle(prepared.reservation, _spend(usage))
        return reply

    def _prepare(self, model, agent, task_id, config) -> tuple[ModelCall, list]:
        """Who calls, which model (after routing), and which rate limits apply."""
        scope = scope_from(config) or Scope(workflow="-", agent=agent, task_id=task_id)
        if scope.agent != agent:
            scope = scope.for_agent(agent, task_id)
        policy = scope.policies or EMPTY_POLICY
        call = call_scope(scope)
        model = self._route(model, scope, policy, call)
        label = model_label(model) if isinstance(model, BaseChatModel) else type(model).__name__
        limits = P.rate_limits_for(policy, call, model=label) if scope.policies else []
        settings = P.agent_settings(policy, call).retry if scope.policies else None
        return ModelCall(scope, model, label, None, retry_settings(settings)), limits

    def _admit(self, prepared: ModelCall, messages, tools) -> ModelCall:
        """Reserve budget for the call and bind the agent's tools to the chosen model."""
        claims, scope = self._claims(prepared, messages), prepared.scope
        reservation = None
        if claims:
            with self._refusals_recorded(scope):
                reservation = self.services.budgets.reserve(
                    scope.tenant_id,
                    claims,
                    ref=f"{scope.run_key}:{scope.agent}",
                    wait=self.services.budget_wait,
                )
        return self._admitted(prepared, tools, reservation)

    async def _aadmit(self, prepared: ModelCall, messages, tools) -> ModelCall:
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
        return self._admitted(prepared, tools, reservation)

    def _admitted(
        self, prepared: ModelCall, tools: Sequence[Any], reservation: Reservation | None
    ) -> ModelCall:
        """The call with the agent's tools bound and, under a budget, its output bounded by
        what the hold covers: the call cannot spend more than it holds."""
        model = self._bind(prepared.model, tools)
        if reservation is not None:
            model = model.bind(max_tokens=output_cap(prepared.model))
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

    def _bind(self, model: Any, tools: Sequence[Any]) -> Any:
        """The model with the agent's tools bound, cached (binding converts every schema)."""
        if not tools:
            return model
        key = (id(model), tuple(id(t) for t in tools))
        bound = self._bound.get(key)
        if bound is None:
            bound = self._bound[key] = model.bind_tools(list(tools))
        return bound

    def _route(self, model, scope: Scope, policy, call) -> Any:
        if not scope.policies or not isinstance(model, BaseChatModel):
            return model
        current = model_label(model)
        fraction = None
        limits = P.budget_limits(policy, call)
        # Reading what was spent costs a query per level: only when a downgrade could apply
        # (the rule routes at a fraction of 0.0 only if it exists).
        if len(limits) and P.route_model(
            policy, call, current=current, remaining_fraction=0.0
        ).details.get("routed"):
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

    def _claims(self, prepared: ModelCall, messages) -> list[Claim]:
        """What a model call must hold on each budget level (none without budgets)."""
        scope, model, label = prepared.scope, prepared.model, prepared.label
        if not scope.policies:
            return []
        limits = P.budget_limits(scope.policies, call_scope(scope))
        if not len(limits):
            return []
        # The hold covers the prompt and the most the reply may write (`_admitted` binds
        # max_tokens to that), so settling never exceeds what was held.
        tokens = approx_tokens(message_text(messages)) + output_cap(model)
        prices = {**PRICES, **P.price_table(scope.policies)}
        usd = cost_usd(label, tokens, tokens, prices)
        return [
            Claim(
                self._budget_key(scope, limit.scope),
                limit.unit,
                limit.limit,
                tokens if limit.unit == "tokens" else usd,
            )
            for limit in limits
        ]

    def _spent(self, scope: Scope, policy, call) -> dict[str, float]:
        spent = {}
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

    def _after_model(self, prepared: ModelCall, reply: Any, messages) -> AIMessage:
        reply, usage = self._finish_model(prepared, reply, messages)
        if prepared.reservation is not None:
            # Settled now, not with the step's batch: the next call must see the real spend
            # (a reservation's estimate can be lower than what the call used).
            self.services.budgets.settle(prepared.reservation, _spend(usage))
        return reply

    def _finish_model(self, prepared: ModelCall, reply: Any, messages) -> tuple[AIMessage, Any]:
        """Check the reply, close the breaker's failure count and record the call."""
        if not isinstance(reply, AIMessage):
            raise TypeError(
                f"the model of agent {prepared.scope.agent!r} returned "
                f"{type(reply).__name__}, not an AIMessage; pass a chat model"
            )
        scope = prepared.scope
        self.breaker_success("model", prepared.label, scope)
        return reply, self.account(scope, reply, label=prepared.label, messages=messages)

    # -- tool path ----------------------------------------------------------------------

    def wrap_tool_call(self, request: ToolCallRequest, execute):
        return _governed_tool.run(self, request, execute)

    async def awrap_tool_call(self, request: ToolCallRequest, execute):
        return await _governed_tool.arun(self, request, execute)


def output_cap(model: Any) -> int:
    """Most output tokens a budgeted call may write: the model's own `max_tokens`, else
    `DEFAULT_OUTPUT_RESERVE`."""
    return int(getattr(model, "max_tokens", None) or DEFAULT_OUTPUT_RESERVE)


def _governed_invoke(model: Any, messages: Sequence[BaseMessage], config: Any) -> Any:
    with governed():
        return model.invoke(list(messages), config)


async def _agoverned_invoke(model: Any, messages: Sequence[BaseMessage], config: Any) -> Any:
    with governed():
        return await model.ainvoke(list(messages), config)


def _spend(usage: Any) -> dict[str, float]:
    """What a call spent, per budget unit."""
    return {"tokens": usage["total_tokens"], "usd": usage["cost_usd"]}
