"""RunContext: the run-scoped facts (tenant, user, roles) passed as LangGraph `context`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig

DEFAULT_TENANT = "default"


@dataclass(frozen=True, slots=True)
class RunContext:
    """Who a run is for. A frozen carrier with no logic.

    Passed to `invoke`/`stream` as `context=RunContext(...)`. Run identity (the
    thread id, callbacks, tags) stays in the `RunnableConfig`.

    Attributes:
        tenant_id: The tenant that owns the run and everything it stores.
        user_id: The person or service that started or is deciding the run.
        roles: Roles of that user, used by gates and policies.
    """

    tenant_id: str = DEFAULT_TENANT
    user_id: str = "anonymous"
    roles: frozenset[str] = field(default_factory=frozenset)


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
