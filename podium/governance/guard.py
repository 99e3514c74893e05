"""The guard: the second line, for tool calls that do not go through a governed tool.

Tools podium hands to a worker are governed objects (`podium.governance.governed_tool`): every
call of them goes through the one tool-call decision. A custom graph may also call tools
podium never saw (built inside it, or called from an `AgentSpec(graph=compiled)`). The
task node runs such a worker with this callback handler in its config; LangChain calls
`on_tool_start` before any tool body runs, and a handler with `raise_error` stops the
call. The guard asks the same decision (`tool_call.clear`: allow list, arguments,
approval gate as a real interrupt) and the same rate limits. It cannot replace a
result, so the effect ledger and output filters apply to governed tools only. Calls
already governed are marked through a context variable and pass straight through.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.outputs import LLMResult
from langgraph.prebuilt.tool_node import ToolInvocationError

import podium.policies as P
from podium.errors import PolicyViolation
from podium.governance.marks import GOVERNED_MODEL_TYPE, GOVERNED_REPLY, is_governed
from podium.governance.scope import Scope
from podium.state import Usage, add_usage, empty_usage
from podium.stores.budgets.store import Reservation

if TYPE_CHECKING:
    from podium.governance.governor import Governor


#: Exceptions a callback raises on purpose: a refusal or a gate, not a fault.
_QUIET = ("ToolRefused(", "GraphInterrupt(", "PolicyViolation(", "BudgetExceeded(")


class _QuietRefusals(logging.Filter):
    """LangChain logs every exception a callback raises as a warning before re-raising it.
    A refusal is podium's intended outcome (recorded in the audit log), not a fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not any(
            kind in text
            for kind in ("ToolRefused(", "GraphInterrupt(", "PolicyViolation(", "BudgetExceeded(")
        )


logging.getLogger("langchain_core.callbacks.manager").addFilter(_QuietRefusals())


class ToolRefused(ToolInvocationError, PolicyViolation):
    """A tool call podium refuses (policy, rejection, abandoned effect). LangGraph's
    `ToolNode` returns its message to the model, as it does for invalid arguments, so
    the agent can adapt."""

    def __init__(self, tool: str, message: str, rule: str = "") -> None:
        self.message = message
        self.tool_name, self.tool_kwargs = tool, {}
        self.rule, self.reason, self.details = rule, message, {}
        Exception.__init__(self, self.message)


class PolicyGuard(BaseCallbackHandler):
    """Vets every tool call and accounts every model call below a custom worker (and
    refuses an unpriced model's calls under a USD budget, as the governor does)."""

    raise_error = True
    run_inline = True

    def __init__(self, governor: Governor, scope: Scope) -> None:
        self.governor = governor
        self.scope = scope
        self._seen: dict[str, int] = {}
        #: Usage of the model calls accounted here, for the run state's `usage`.
        self.usage: Usage = empty_usage()
        #: Budget held for each model call in flight, by the call's run id.
        self._held: dict[UUID, Reservation] = {}
        #: The run ids of each batch of model calls (`generate` with several message
        #: lists) held here, by run id: a batch stopped by a refusal or a failure never
        #: ends its other calls.
        self._batch_of: dict[UUID, list[UUID]] = {}
        #: The batch whose calls this thread is starting (they start one after another).
        self._starting = threading.local()
        self._lock = threading.Lock()

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        inputs: dict[str, Any] | None = None,
        tool_call_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        if is_governed() or self.scope.policies is None:
            return
        import podium.governance.tool_call as tool_call
        from podium.governance.calls import Call

        name = (serialized or {}).get("name") or kwargs.get("name") or "?"
        args = inputs if isinstance(inputs, dict) else _parse(input_str)
        call = Call(name, args, tool_call_id or self._derived_id(name, args))
        cleared = tool_call.clear(self.governor, self.scope, call)
        if isinstance(cleared, ToolMessage):
            raise ToolRefused(name, cleared.text)
        if cleared.args != args:
            # An edit cannot reach a tool the guard did not wrap: refuse rather than run
            # the unedited call.
            raise ToolRefused(
                name,
                f"The reviewer edited the arguments of {name!r}, which this worker calls "
                "directly; hand the tool to podium (AgentSpec tools=) to run edited calls. "
                "The tool was not run.",
            )
        self._limit(name)

    def _derived_id(self, name: str, args: dict[str, Any]) -> str:
        """A call id for a call that came without one: the same for the same call in the
        same order when the task runs again, different for different calls."""
        from podium.governance.records import digest

        what = f"{name}:{digest(args)[7:19]}"
        with self._lock:
            seen = self._seen[what] = self._seen.get(what, -1) + 1
        return f"guard-{what}-{seen}"

    def _limit(self, name: str) -> None:
        if self.scope.policies is None:
            return
        from podium.governance.scope import call_scope

        limits = P.rate_limits_for(self.scope.policies, call_scope(self.scope), tool=name)
        if limits:
            s = self.governor.services
            s.ratelimiter.acquire(self.scope.tenant_id, limits, timeout=s.rate_wait, sleep=s.sleep)

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Hold budget, before it is made, for a call of a model podium did not hand over,
        as the governor does for its own: a call with no room is refused
        (`BudgetExceeded`), and so is an unpriced model under a USD budget, which would
        count as free."""
        params = kwargs.get("invocation_params") or {}
        if (
            is_governed()
            or self.scope.policies is None
            or params.get("_type") == GOVERNED_MODEL_TYPE
        ):
            return  # podium's governed model: the governor decides
        most = params.get("max_tokens") or params.get("max_completion_tokens")
        batch = self._batch(run_id, kwargs.get("batch_size"))
        # No waiting for other calls' holds where it would block: on an event loop (this
        # handler runs inline there), nothing else runs meanwhile, so no hold in the way is
        # settled; behind a call of the same batch, the batch's own holds stay until it ends.
        wait = 0.0 if _on_event_loop() or len(batch) > 1 else None
        try:
            held = self.governor.hold_unhanded(
                self.scope,
                _model_of(serialized, params, metadata),
                messages[0] if messages else [],
                int(most) if isinstance(most, int | float) else None,
                wait=wait,
            )
        except BaseException:
            self._release(batch)  # the batch stops here: its calls held so far are not made
            raise
        if held is not None:
            with self._lock:
                self._held[run_id] = held

    def _batch(self, run_id: UUID, size: Any) -> list[UUID]:
        """The run ids of the batch `run_id` starts in, so far (itself alone outside one)."""
        if not isinstance(size, int) or size < 2:
            return [run_id]
        batch: list[UUID] | None = getattr(self._starting, "batch", None)
        if batch is None or len(batch) >= size:
            batch = self._starting.batch = []
        batch.append(run_id)
        with self._lock:
            self._batch_of[run_id] = batch
        return batch

    def _release(self, run_ids: list[UUID]) -> None:
        """Give back the holds of calls that were never made or never end."""
        with self._lock:
            gone = [self._held.pop(r) for r in run_ids if r in self._held]
            for r in run_ids:
                self._batch_of.pop(r, None)
        for held in gone:
            self.governor.settle_unhanded(held, None)

    def close(self) -> None:
        """Give back what model calls still hold once the worker ended (calls that never
        ended: a batch stopped by a failure, a stream dropped unfinished); the usage
        ledger has whatever they reported."""
        with self._lock:
            left = list(self._held)
        self._release(left)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            self._batch_of.pop(run_id, None)
        if is_governed() or (response.llm_output or {}).get(GOVERNED_REPLY):
            return  # accounted by the governor already
        spent: Usage | None = None
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                if message is not None and getattr(message, "usage_metadata", None):
                    usage = self.governor.account(self.scope, message)
                    spent = usage if spent is None else add_usage(spent, usage)
                    with self._lock:  # a graph may run model calls in parallel
                        self.usage = add_usage(self.usage, usage)
        with self._lock:
            held = self._held.pop(run_id, None)
        if held is not None:
            self.governor.settle_unhanded(held, spent or empty_usage())

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            held = self._held.pop(run_id, None)
            batch = self._batch_of.pop(run_id, None)
        if held is not None:
            self.governor.settle_unhanded(held, None)  # the call failed: nothing spent
        if batch is not None and not _on_event_loop():
            # A failed call stops a synchronous batch (`generate`): its other calls never
            # end. (An async batch ends each of them.)
            self._release(batch)


def _on_event_loop() -> bool:
    """Whether this thread runs an event loop (the guard is then called on it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _model_of(
    serialized: dict[str, Any] | None, params: dict[str, Any], metadata: dict[str, Any] | None
) -> str:
    """The name a model call's model is priced by, as its callbacks see the call."""
    named = (metadata or {}).get("ls_model_name")
    for value in (named, params.get("model_name"), params.get("model"), params.get("model_id")):
        if isinstance(value, str) and value:
            return value
    return str((serialized or {}).get("name") or params.get("_type") or "unknown")


def _parse(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {"input": text}
    return value if isinstance(value, dict) else {"input": value}
