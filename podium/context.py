"""RunContext: the run-scoped facts (tenant, user, roles) passed as LangGraph `context`."""

from __future__ import annotations

from dataclasses import dataclass, field

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
