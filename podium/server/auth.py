"""Tenant isolation on the LangGraph server (`langgraph.json` -> `auth.path`).

Authentication (`podium.server._signin`): an identity provider's JWT in
`Authorization: Bearer ...` (`PODIUM_JWT_ISSUER`, `PODIUM_JWT_AUDIENCE`, ...), an API key
in `x-api-key` (kept hashed in podium's database by `podium keys`, or listed in
`PODIUM_API_KEYS`), or a pdm1 token (`PODIUM_TOKEN_SECRET`) names a user of one tenant
with roles; anything else is a 401 (503 while the identity provider's keys cannot be
fetched). The user the server keeps for a run carries `tenant_id`, `identity` and
`roles`, so podium's gates and policies see them (`resolve_context`).

Authorization, default deny:
    - every thread, run, cron and assistant created or updated is stamped with the
      user's tenant (`metadata.tenant_id`); metadata that names another tenant is a 403,
      never silently rewritten (a runtime that ignores the stamp, as one did for crons,
      would otherwise file the resource under the tenant the client named);
    - every read, search, update and delete is filtered by it, so another tenant's
      thread is a 404 and never appears in a search;
    - a resume (`command.resume`) or a state write on a thread waiting at a podium gate
      is a 403 when the user has none of the roles the gate names;
    - store namespaces are prefixed with the tenant.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from typing import Any

import httpx
from langgraph_sdk import Auth, get_client
from langgraph_sdk.errors import LangGraphError

from podium.gates.request import GateRequest, may_decide
from podium.server._credentials import CredentialError, Principal
from podium.server._jwt import KeysUnavailable
from podium.server._signin import ENVIRONMENT, SignIn, sign_in_from_env
from podium.server.keys import ApiKeys

log = logging.getLogger("podium.server")

#: The metadata key that holds the owning tenant of threads, runs, crons and assistants.
TENANT_KEY = "tenant_id"

auth = Auth()


@functools.cache
def _stored_keys() -> ApiKeys:
    from podium.server._runtime import server_runtime

    return ApiKeys(server_runtime().db)


@functools.lru_cache(maxsize=4)
def _settings(values: tuple[str | None, ...]) -> SignIn:
    # One SignIn per configuration, so the JWT key cache lives as long as the process.
    return sign_in_from_env(dict(zip(ENVIRONMENT, values, strict=True)), _stored_keys)


def _current_settings() -> SignIn:
    return _settings(tuple(os.environ.get(name) for name in ENVIRONMENT))


# Fail at start-up, not on the first request, when the configuration is malformed.
for _note in _current_settings().warnings():
    log.warning(_note)


def authenticate_headers(headers: dict[bytes, bytes]) -> Principal:
    """The principal of a request's headers (`x-api-key` or `Authorization: Bearer`).

    Blocks on a stored key's database read or a fetch of the identity provider's keys:
    call it off the event loop.

    Raises:
        KeysUnavailable: the identity provider's keys cannot be fetched now.
        CredentialError: for a missing, unknown, revoked, forged or expired credential.
    """
    return _current_settings().authenticate(headers)


@auth.authenticate
async def authenticate(headers: dict[bytes, bytes]) -> Auth.types.MinimalUserDict:
    """Turn the request's credential into the user the server keeps (401 otherwise)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        principal = await asyncio.to_thread(authenticate_headers, lowered)
    except KeysUnavailable as exc:
        raise Auth.exceptions.HTTPException(status_code=503, detail=str(exc)) from None
    except CredentialError as exc:
        raise Auth.exceptions.HTTPException(status_code=401, detail=str(exc)) from None
    return principal.as_user()  # type: ignore[return-value]


@auth.on
async def deny_everything_else(ctx: Auth.types.AuthContext, value: Any) -> bool:
    """Default deny: a resource or action without its own handler is a 403."""
    return False


@auth.on.threads
async def on_threads(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    """Threads and runs: stamp on create, filter everything, check gate roles on resume."""
    tenant = tenant_of(ctx.user)
    # An update without metadata or a cancel action is a state write (POST .../state).
    state_write = ctx.action == "update" and "metadata" not in value and not value.get("action")
    if ctx.action in ("create", "create_run") or (ctx.action == "update" and "metadata" in value):
        _stamp(value, tenant)
    if ctx.action == "create_run":
        await _check_resume(ctx.user, value, tenant)
    elif state_write:
        # A state write could step past a gate; it needs the gate's roles like a resume.
        await _check_gates(ctx.user, value.get("thread_id"), tenant, None)
    return {TENANT_KEY: tenant}


@auth.on.assistants
async def on_assistants(ctx: Auth.types.AuthContext, value: Any) -> dict[str, Any]:
    """Assistants: the workflows of `langgraph.json` are shared; tenants' own are private."""
    tenant = tenant_of(ctx.user)
    if ctx.action in ("create", "update"):
        metadata = _stamp(value, tenant)
        # "created_by: system" marks the shared assistants; a tenant may not claim it.
        metadata["created_by"] = f"{tenant}/{ctx.user.identity}"
    if ctx.action in ("read", "search"):
        # `$or` is missing from the SDK's FilterType; the server's filters (in memory and
        # on PostgreSQL) accept it.
        return {"$or": [{TENANT_KEY: tenant}, {"created_by": "system"}]}
    return {TENANT_KEY: tenant}


@auth.on.crons
async def on_crons(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    """Crons: stamped and filtered like threads; their runs act as the user who made them."""
    tenant = tenant_of(ctx.user)
    if ctx.action in ("create", "update"):
        _stamp(value, tenant)
        payload = value.get("payload")
        if isinstance(payload, dict):
            # Some runtimes (langgraph-runtime-pg) hand the handler no `metadata` and store
            # the request's own metadata dict, which is also the payload's: checked and
            # stamped there too.
            _stamp(payload, tenant)
            _bind_user(payload, ctx)
    return {TENANT_KEY: tenant}


@auth.on.store
async def on_store(ctx: Auth.types.AuthContext, value: Any) -> None:
    """The store: every namespace starts with the tenant."""
    tenant = tenant_of(ctx.user)
    namespace = tuple(value.get("namespace") or ())
    if not namespace or namespace[0] != tenant:
        value["namespace"] = (tenant, *namespace)


def tenant_of(user: Any) -> str:
    """The tenant of an authenticated user (403 for a user without one)."""
    tenant = _field(user, TENANT_KEY)
    if not tenant:
        raise Auth.exceptions.HTTPException(status_code=403, detail="the user has no tenant")
    return str(tenant)


def _field(user: Any, name: str) -> Any:
    value = getattr(user, name, None)
    if value is None:
        try:
            value = user[name]
        except (KeyError, TypeError, IndexError):
            value = None
    return value


def _stamp(value: dict[str, Any], tenant: str) -> dict[str, Any]:
    """Stamp `value`'s metadata with `tenant` (403 when it names another tenant)."""
    metadata = value.get("metadata")
    if not isinstance(metadata, dict):
        metadata = value["metadata"] = {}
    sent = metadata.get(TENANT_KEY)
    if sent is not None and str(sent) != tenant:
        raise Auth.exceptions.HTTPException(
            status_code=403,
            detail=(
                f"metadata.{TENANT_KEY} {sent!r} is not your tenant {tenant!r}; leave it out "
                "(the server sets it) or send your own"
            ),
        )
    # The server keeps the dict it handed us, so it is changed in place.
    metadata[TENANT_KEY] = tenant
    return metadata


def _bind_user(payload: dict[str, Any], ctx: Auth.types.AuthContext) -> None:
    """Store the user in the cron's run config, where the cron scheduler looks for the
    user of each run it starts (otherwise only the identity string survives)."""
    config = payload.get("config")
    if not isinstance(config, dict):
        config = payload["config"] = {}
    configurable = config.get("configurable")
    if not isinstance(configurable, dict):
        configurable = config["configurable"] = {}
    user = {
        "identity": ctx.user.identity,
        TENANT_KEY: tenant_of(ctx.user),
        "roles": list(_field(ctx.user, "roles") or ()),
        "permissions": list(ctx.permissions or ()),
    }
    configurable["langgraph_auth_user"] = user
    configurable["langgraph_auth_permissions"] = user["permissions"]


async def _check_resume(user: Any, value: dict[str, Any], tenant: str) -> None:
    command = (value.get("kwargs") or {}).get("command")
    if not isinstance(command, dict) or command.get("resume") is None:
        return
    await _check_gates(user, value.get("thread_id"), tenant, command["resume"])


async def _check_gates(user: Any, thread_id: Any, tenant: str, resume: Any) -> None:
    """403 when `resume` (None: any state write) would decide a gate the user may not.

    A resume map keyed by interrupt ids decides those interrupts; any other resume value
    (or a state write) may reach every pending gate, so all of them are checked.
    """
    if thread_id is None:
        return
    pending = await _pending_gates(str(thread_id), tenant)
    if not pending:
        return
    if isinstance(resume, dict) and resume and all(k in pending for k in resume):
        targeted = [pending[k] for k in resume]
    else:
        targeted = list(pending.values())
    roles = frozenset(str(r) for r in (_field(user, "roles") or ()))
    for gate in targeted:
        if not may_decide(gate, roles):
            raise Auth.exceptions.HTTPException(
                status_code=403,
                detail=(
                    f"user {user.identity!r} (roles: {', '.join(sorted(roles)) or 'none'}) may "
                    f"not decide gate {gate.gate_id!r}; it needs one of: {', '.join(gate.roles)}"
                ),
            )


async def _pending_gates(thread_id: str, tenant: str) -> dict[str, GateRequest]:
    """Interrupt id -> gate of the thread's pending podium gates (empty when the thread
    is missing or another tenant's: the server's own filter then answers 404)."""
    try:
        thread = await _loopback().threads.get(thread_id)
    except (LangGraphError, httpx.HTTPError, ValueError):
        return {}
    if (thread.get("metadata") or {}).get(TENANT_KEY) != tenant:
        return {}
    gates: dict[str, GateRequest] = {}
    for items in (thread.get("interrupts") or {}).values():
        for item in items or ():
            raw = item.get("value")
            if isinstance(raw, dict) and "gate_id" in raw and item.get("id"):
                fields = {k: v for k, v in raw.items() if k != "note"}
                try:
                    gates[item["id"]] = GateRequest.model_validate(fields)
                except ValueError:
                    continue
    return gates


@functools.cache
def _loopback() -> Any:
    """The server's in-process client (no network; created once, on first use)."""
    return get_client(api_key=None)
