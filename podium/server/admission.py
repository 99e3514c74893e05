"""Run admission on the LangGraph server: a tenant's runs in flight and queued stay within
its policy's `max_runs`; past it a run create is a 429 with `Retry-After`.

The count is the server's own: threads of the tenant whose status is `busy` (a run is
pending or running on them), asked of the server through its in-process client. Every
server process answers from the runtime's shared database, so the count is the same on
all of them, and it includes runs queued but not yet picked up, which no process-local
counter or podium's thread index (written only once a run starts) can see. Two creates
racing each other may both pass, so the cap can be exceeded by the creates in flight at
one instant; runs queued on one thread behind its busy run count once.

`podium.server.graphs` registers each served workflow's policy; the policy of the
workflow a run is created for decides.
"""

from __future__ import annotations

import functools
from typing import Any

import httpx
from langgraph_sdk import Auth, get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import LangGraphError

from podium.policies.runs import admit, run_limit
from podium.policies.schema import PolicySet

#: Seconds a refused client is told to wait before it tries again.
RETRY_AFTER = 5

_policies: dict[str, PolicySet | None] = {}
#: Assistant id -> graph id, for runs created on an assistant rather than a graph id.
_graphs: dict[str, str | None] = {}


def register_policy(workflow: str, policy: PolicySet | None) -> None:
    """Record the policy of a served workflow (its graph id on the server)."""
    _policies[workflow] = policy


async def admit_run(value: dict[str, Any], tenant: str, tenant_key: str) -> None:
    """Refuse (429, `Retry-After`) a run the tenant has no room for.

    Args:
        value: The run create's payload as the server's auth handler sees it.
        tenant: The caller's tenant.
        tenant_key: The metadata key threads are stamped with the tenant under.
    """
    limit = run_limit(await _policy_of(value.get("assistant_id")), tenant)
    if limit is None:
        return
    busy = await _loopback().threads.count(metadata={tenant_key: tenant}, status="busy")
    decision = admit(limit, busy)
    if not decision.allowed:
        raise Auth.exceptions.HTTPException(
            status_code=429,
            detail=decision.reason,
            headers={"Retry-After": str(RETRY_AFTER)},
        )


async def _policy_of(assistant_id: Any) -> PolicySet | None:
    """The policy of the workflow behind `assistant_id` (a graph id or an assistant's id)."""
    if assistant_id is None:
        return None
    name = str(assistant_id)
    if name not in _policies:
        name = await _graph_of(name) or name
    return _policies.get(name)


async def _graph_of(assistant_id: str) -> str | None:
    if assistant_id in _graphs:
        return _graphs[assistant_id]
    try:
        graph = (await _loopback().assistants.get(assistant_id)).get("graph_id")
    except (LangGraphError, httpx.HTTPError, ValueError):
        return None
    _graphs[assistant_id] = graph
    return graph


@functools.cache
def _loopback() -> LangGraphClient:
    """The server's in-process client (no network; created once, on first use)."""
    return get_client(api_key=None)
