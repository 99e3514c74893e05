"""The binding: what `rt.compile` hands every graph it compiles (services and governor),
and, below a node that governs calls, who is calling (the `Scope`).

It travels in the compiled graph's config, so nested graphs and custom workers below a
podium workflow see the same runtime. `bound(config)` is the one way code inside a run
reaches it: `bound(config).services`, `.governor`, `.scope`. Run identity (tenant, user,
roles) is LangGraph's run context, read through its `Runtime`; a node turns it into the
scope with `with_scope`. The governor itself never looks anything up: its callers pass
the scope in.

Two configurable keys hold it: `rt.compile` puts the runtime's binding in the graph's own
config (`BINDING_KEY`), and `with_scope` puts the binding of the calls below a node, with
their scope, beside it (`SCOPED_KEY`), which `bound` reads first. One key would not do:
LangGraph merges a compiled graph's own config over the config of the step that runs
it, so a graph compiled by `rt.compile` and called from inside a task without the node's
config (`helper.invoke(inputs)`, as LangGraph calls a subgraph with its own state) would
replace the task's scoped binding with its runtime's unscoped one, and its calls would be
made under no policy. A graph compiled without a runtime (plain
`graph.compile()`) gets a process-local binding on an in-memory database, made on first
use, so policies, budgets and recovery still apply; this is the only process-wide value.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command

import podium.policies as P
from podium.gates.request import Decision
from podium.governance.calls import node_call
from podium.governance.governor import Governor
from podium.governance.scope import Scope, call_scope
from podium.governance.tool_call import gate_in_order
from podium.storage.database import SqliteDatabase
from podium.stores.services import Services

#: The configurable key holding the runtime's `Binding`, in the config of every graph
#: `rt.compile` compiles (`__`-prefixed: kept out of checkpoints).
BINDING_KEY = "__podium_binding"
#: The configurable key holding the binding of the calls below a node that governs calls
#: (`with_scope`): the runtime's binding with the caller's scope. A graph's own config
#: never sets it, so it outlives the merge of a nested graph's config (module docstring).
SCOPED_KEY = "__podium_scoped_binding"


@dataclass(frozen=True, slots=True)
class Binding:
    """The services of one runtime, its governor, and the scope of the calls below (None
    outside a node that governs calls)."""

    services: Services
    governor: Governor
    scope: Scope | None = None

    @classmethod
    def of(cls, services: Services) -> Binding:
        return cls(services, Governor(services))

    def scoped(self, scope: Scope) -> Binding:
        """This binding for calls made by `scope`."""
        return self if scope is self.scope else Binding(self.services, self.governor, scope)


_local: Binding | None = None
_local_lock = threading.Lock()


def local_binding() -> Binding:
    """The process-local binding for graphs compiled without a runtime."""
    global _local
    with _local_lock:
        if _local is None:
            _local = Binding.of(Services.open(SqliteDatabase(":memory:")))
        return _local


def bound(config: RunnableConfig | None) -> Binding:
    """The binding of the calls below the node that set a scope (`with_scope`), else the
    binding of the runtime that compiled the running graph (else the local one)."""
    configurable = (config or {}).get("configurable") or {}
    for key in (SCOPED_KEY, BINDING_KEY):
        binding: Any = configurable.get(key)
        if isinstance(binding, Binding):
            return binding
    return local_binding()


def scoped_configurable(binding: Binding, scope: Scope) -> dict[str, Any]:
    """The configurable entry that makes the calls below it ones made by `scope`."""
    return {SCOPED_KEY: binding.scoped(scope)}


def with_scope(config: RunnableConfig, scope: Scope) -> RunnableConfig:
    """A copy of `config` whose binding carries `scope` (nothing else changes)."""
    configurable = config.get("configurable") or {}
    return {**config, "configurable": {**configurable, **scoped_configurable(bound(config), scope)}}


def check_data_scope(config: RunnableConfig | None, namespace: str) -> None:
    """Refuse (PolicyViolation) a read of `namespace` that the caller's policy does not allow.

    Tools that read stores or corpora call this with the namespace they are about to read.
    """
    binding = bound(config)
    scope = binding.scope
    if scope is None or scope.policies is None:
        return
    decision = P.evaluate_data_scope(scope.policies, call_scope(scope), namespace)
    if not decision.allowed:
        binding.governor.record_decision(scope, "data_scope", decision)
        decision.raise_if_denied()


def gate_tool_calls(
    config: RunnableConfig, tool_calls: Sequence[ToolCall], tools: Mapping[str, BaseTool]
) -> dict[str, Decision]:
    """Raise the approval gates of one model reply's `tool_calls` one at a time, in call
    order, before a `ToolNode` runs them in parallel; returns their decisions by call id,
    to run the calls under (`podium.governance.tool_call.gate_in_order`, `decided`)."""
    binding = bound(config)
    scope = binding.scope or Scope(workflow="-", agent="-")
    calls = [node_call(tc, tools.get(tc["name"])) for tc in tool_calls]
    return gate_in_order(binding.governor, scope, calls)


def tool_node_hooks() -> dict[str, Any]:
    """`wrap_tool_call`/`awrap_tool_call` for a `ToolNode`, resolving the governor per call."""

    def wrap(
        request: ToolCallRequest, execute: Callable[[ToolCallRequest], ToolMessage | Command[Any]]
    ) -> ToolMessage | Command[Any]:
        binding = bound(request.runtime.config if request.runtime is not None else None)
        return binding.governor.wrap_tool_call(request, execute, binding.scope)

    async def awrap(
        request: ToolCallRequest,
        execute: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        binding = bound(request.runtime.config if request.runtime is not None else None)
        return await binding.governor.awrap_tool_call(request, execute, binding.scope)

    return {"wrap_tool_call": wrap, "awrap_tool_call": awrap}
