"""Scope: who is calling (workflow, agent, task, tenant, roles) and under which policies.

The task node puts a Scope into the config it hands a worker, so every governed model
and tool call below it, in the built-in worker or in a custom graph, knows its caller.
It travels under a `__`-prefixed configurable key, which LangGraph keeps out of
checkpoint metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.runnables import RunnableConfig

from podium.context import RunContext

SCOPE_KEY = "__podium_scope"


@dataclass(frozen=True, slots=True)
class Scope:
    """The caller of a governed call."""

    workflow: str
    agent: str
    tenant_id: str = "default"
    user_id: str = "anonymous"
    roles: frozenset[str] = field(default_factory=frozenset)
    thread_id: str | None = None
    task_id: str | None = None
    round: int = 0
    policies: Any = None
    task_class: str | None = None

    def for_agent(self, agent: str, task_id: str | None) -> Scope:
        return replace(self, agent=agent, task_id=task_id)

    @property
    def run_key(self) -> str:
        """Identifies one round of one thread (budgets per run are keyed by it)."""
        return f"{self.thread_id or '-'}:{self.round}"


def make_scope(
    config: RunnableConfig,
    context: Any,
    *,
    workflow: str,
    agent: str,
    policies: Any,
    task_id: str | None = None,
    round: int = 0,
) -> Scope:
    """A scope for a call made from a node of `workflow` (the context gives the tenant)."""
    ctx = resolve_context(config, context)
    configurable = config.get("configurable") or {}
    thread = configurable.get("thread_id")
    return Scope(
        workflow=workflow,
        agent=agent,
        tenant_id=ctx.tenant_id,
        user_id=ctx.user_id,
        roles=frozenset(ctx.roles),
        thread_id=str(thread) if thread is not None else None,
        task_id=task_id,
        round=round,
        policies=policies,
    )


#: Where the LangGraph server puts the authenticated user of a run.
AUTH_USER_KEY = "langgraph_auth_user"


def resolve_context(config: RunnableConfig | None, context: Any) -> RunContext:
    """Who a run is for.

    On a LangGraph server the authenticated user decides (tenant, user, roles), whatever
    context the client sent, so one tenant cannot act as another. Elsewhere it is the
    `RunContext` the caller passed (or the default one).
    """
    user = ((config or {}).get("configurable") or {}).get(AUTH_USER_KEY)
    tenant = _field(user, "tenant_id") if user is not None else None
    if tenant:
        roles = _field(user, "roles") or _field(user, "permissions") or ()
        identity = _field(user, "identity") or "anonymous"
        return RunContext(
            tenant_id=str(tenant), user_id=str(identity), roles=frozenset(str(r) for r in roles)
        )
    return context if isinstance(context, RunContext) else RunContext()


def current_context(config: RunnableConfig | None = None) -> RunContext:
    """`resolve_context` inside a node (reads LangGraph's runtime and config)."""
    from langgraph.config import get_config
    from langgraph.runtime import get_runtime

    return resolve_context(config if config is not None else get_config(), get_runtime().context)


def _field(user: Any, name: str) -> Any:
    if isinstance(user, dict):
        return user.get(name)
    value = getattr(user, name, None)
    if value is None:
        try:
            value = user[name]
        except (KeyError, TypeError, IndexError):
            value = None
    return value


def scope_from(config: RunnableConfig | None) -> Scope | None:

    return ((config or {}).get("configurable") or {}).get(SCOPE_KEY)


def with_scope(config: RunnableConfig, scope: Scope) -> RunnableConfig:
    """A copy of `config` carrying `scope` (nothing else changes)."""
    return {**config, "configurable": {**(config.get("configurable") or {}), SCOPE_KEY: scope}}
