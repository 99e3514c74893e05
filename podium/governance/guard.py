"""The guard: policy enforcement for calls that do not go through the governed tool.

A custom worker (`AgentSpec(graph=...)`) brings its own tools and its own loop. The task
node runs it with this callback handler in its config; LangChain calls `on_tool_start`
before any tool body runs, for every tool invoked anywhere below, and a handler with
`raise_error` stops the call. So a denied tool never runs, whatever the graph's code.
Calls already vetted by the governed tool (built-in workers, nested podium workflows)
are marked through a context variable and pass straight through.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult
from langgraph.prebuilt.tool_node import ToolInvocationError

from podium import policies as P
from podium.errors import PolicyViolation
from podium.governance.scope import Scope
from podium.state import Usage, add_usage, empty_usage

if TYPE_CHECKING:
    from podium.governance.governor import Governor

_GOVERNED: contextvars.ContextVar[bool] = contextvars.ContextVar("podium_governed", default=False)


class _QuietRefusals(logging.Filter):
    """LangChain logs every exception a callback raises as a warning before re-raising it.
    A refusal is podium's intended outcome (recorded in the audit log), not a fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "ToolRefused(" not in record.getMessage()


logging.getLogger("langchain_core.callbacks.manager").addFilter(_QuietRefusals())


@contextmanager
def governed() -> Iterator[None]:
    """Mark the calls made inside as already governed (the guard lets them through)."""
    token = _GOVERNED.set(True)
    try:
        yield
    finally:
        _GOVERNED.reset(token)


class ToolRefused(ToolInvocationError, PolicyViolation):
    """A tool call a policy refuses. LangGraph's `ToolNode` returns its message to the
    model, as it does for invalid arguments, so the agent can adapt."""

    def __init__(self, tool: str, decision: P.Decision) -> None:
        self.message = f"Refused by policy ({decision.rule}): {decision.reason}"
        self.tool_name, self.tool_kwargs = tool, {}
        self.rule, self.reason, self.details = decision.rule, decision.reason, {}
        Exception.__init__(self, self.message)


class PolicyGuard(BaseCallbackHandler):
    """Vets every tool call and accounts every model call below a custom worker."""

    raise_error = True
    run_inline = True

    def __init__(self, governor: Governor, scope: Scope) -> None:
        self.governor = governor
        self.scope = scope
        #: Usage of the model calls accounted here, for the run state's `usage`.
        self.usage: Usage = empty_usage()
        self._lock = threading.Lock()

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if _GOVERNED.get() or self.scope.policies is None:
            return
        from podium.governance.scope import call_scope

        name = (serialized or {}).get("name") or kwargs.get("name") or "?"
        args = inputs if isinstance(inputs, dict) else _parse(input_str)
        call = call_scope(self.scope)
        for what, decision in (
            ("tool", P.evaluate_tool(self.scope.policies, call, name)),
            ("arguments", P.evaluate_arguments(self.scope.policies, call, name, args)),
        ):
            if not decision.allowed:
                self.governor.record_decision(self.scope, what, decision)
                raise ToolRefused(name, decision)
        self.governor.record(self.scope, "tool_call", {"tool": name, "guarded": True})

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        if _GOVERNED.get():
            return
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                if message is not None and getattr(message, "usage_metadata", None):
                    usage = self.governor.account(self.scope, message)
                    with self._lock:  # a graph may run model calls in parallel
                        self.usage = add_usage(self.usage, usage)


def _parse(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {"input": text}
    return value if isinstance(value, dict) else {"input": value}
