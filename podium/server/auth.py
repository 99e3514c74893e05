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
      thread is a 404 and never appears in a search; creating a thread with another
      tenant's thread id, copying another tenant's thread, or creating an assistant with
      another tenant's assistant id, is a 404 too (not a 409, which would tell that the id
      exists);
    - on a thread waiting at a podium gate, every request that changes it (a resume, a
      run with `input`, `command.update` or `command.goto`, a state write, a delete or prune
      of the thread or a delete of one of its runs, which deletes the run's checkpoints, a
      cancel of one of its runs or of a run in flight resuming its gate, a cron on it) is a
      403 naming the roles when the user has none of the roles of the gates it reaches. The
      gates are those of the thread's row and of its state (a copy's row lists none);
    - a run's `command` that does nothing (`resume` null, no `update`, no `goto`) is a 422;
    - a decision is the caller's: one naming another `user` is a 403. The gate is claimed
      in podium's approvals table before the run is queued, so of two concurrent
      decisions on one gate the second is a 409 naming the first (who, what, when), as
      is a decision on a gate no longer pending;
    - store namespaces are prefixed with the tenant;
    - a run create past the tenant's `max_runs` is a 429 (`podium.server.admission`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import httpx
from langgraph_sdk import Auth, get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import LangGraphError
from langgraph_sdk.schema import Thread
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from podium.errors import AlreadyDecided, DatabaseError, GateError
from podium.gates.request import Decision, GateRequest, caller_mismatch, fits, may_decide
from podium.server._credentials import CredentialError, Principal
from podium.server._jwt import KeysUnavailable
from podium.server._runtime import server_runtime
from podium.server._signin import ENVIRONMENT, SignIn, sign_in_from_env
from podium.server.admission import admit_run
from podium.server.keys import ApiKeys
from podium.stores.approvals import Approvals

log = logging.getLogger("podium.server")

#: The metadata key that holds the owning tenant of threads, runs, crons and assistants.
TENANT_KEY = "tenant_id"

auth = Auth()


#: The LangGraph server's statuses of a run not yet finished (its own, not podium's).
_SERVER_ACTIVE: tuple[Literal["pending"], Literal["running"]] = ("pending", "running")


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
        # podium's database first: unreachable, every request would fail on it somewhere.
        await asyncio.to_thread(server_runtime)
        principal = await asyncio.to_thread(authenticate_headers, lowered)
    except (KeysUnavailable, DatabaseError) as exc:
        # Starlette's own exception: the server passes it on as it is (503 and the detail);
        # it turns the SDK's into a 500 for any status but 401 and 403.
        raise StarletteHTTPException(status_code=503, detail=str(exc)) from None
    except CredentialError as exc:
        raise Auth.exceptions.HTTPException(status_code=401, detail=str(exc)) from None
    return principal.as_user()  # type: ignore[return-value]


@auth.on
async def deny_everything_else(ctx: Auth.types.AuthContext, value: Any) -> bool:
    """Default deny: a resource or action without its own handler is a 403."""
    return False


@auth.on.threads
async def on_threads(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    """Threads and runs: stamp on create, filter everything, guard threads at a gate."""
    tenant = tenant_of(ctx.user)
    action = ctx.action
    # An update without metadata or a cancel action is a state write (POST .../state).
    state_write = action == "update" and "metadata" not in value and not value.get("action")
    # A cancel: `interrupt` stops the runs, `rollback` also deletes them and their checkpoints.
    cancel = action == "update" and value.get("action") in ("interrupt", "rollback")
    if action == "read":
        # A copy reads its source, then creates a thread with a fresh id: remember the source.
        _last_read.set(str(value.get("thread_id")))
    elif action == "create":
        await _refuse_foreign_id(value, tenant)
    if action in ("create", "create_run") or (action == "update" and "metadata" in value):
        _stamp(value, tenant)
    if action == "create_run":
        _check_command(value)
        # Admission first: a 429 must not leave a gate claimed by the guard below.
        await admit_run(value, tenant, TENANT_KEY)
        await _guard_run(ctx.user, value, tenant)
    elif state_write:
        # A state write could step past a gate; it needs the gate's roles like a resume.
        await _guard_change(ctx.user, value.get("thread_id"), tenant, "update the state of")
    elif cancel:
        await _guard_cancel(ctx.user, value, tenant)
    elif action == "delete":
        # Deleting a run deletes the checkpoints it wrote: on a gated thread, its state
        # and the gate itself. A prune names its threads in `thread_ids`.
        verb = "delete" if value.get("run_id") is None else "delete a run of"
        for thread_id in value.get("thread_ids") or [value.get("thread_id")]:
            await _guard_change(ctx.user, thread_id, tenant, verb)
    return {TENANT_KEY: tenant}


@auth.on.assistants
async def on_assistants(ctx: Auth.types.AuthContext, value: Any) -> dict[str, Any]:
    """Assistants: the workflows of `langgraph.json` are shared; tenants' own are private."""
    tenant = tenant_of(ctx.user)
    if ctx.action == "create":
        await _refuse_foreign_assistant(value.get("assistant_id"), tenant)
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
    if ctx.action == "create":
        # Each firing is a run on the thread: refused at creation, not at every firing.
        await _guard_change(ctx.user, value.get("thread_id"), tenant, "create a cron on")
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


#: The thread id the current request read last (a copy's source; see `on_threads`).
_last_read: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "podium_last_read", default=None
)

#: Seconds after which a claimed decision whose run never applied it (the thread is not
#: busy and still waits at the gate) is taken as abandoned, so the gate can be decided again.
CLAIM_GRACE = 5.0

#: LangGraph's interrupt ids: a resume map keyed by ids like these names interrupts.
_INTERRUPT_ID = re.compile(r"^[0-9a-f]{32}$")


def _not_found(thread_id: Any) -> Auth.exceptions.HTTPException:
    # The server's own words for a missing thread, so a foreign id looks like no thread.
    return Auth.exceptions.HTTPException(
        status_code=404, detail=f"Thread with ID {thread_id} not found"
    )


async def _refuse_foreign_id(value: dict[str, Any], tenant: str) -> None:
    """404 for creating a thread with another tenant's thread id, or copying one."""
    if "if_exists" not in value:
        # A copy: the server creates a fresh id after reading the source thread.
        source = _last_read.get()
        if source is not None:
            thread = await _thread(source)
            if thread is None or _owner(thread) != tenant:
                raise _not_found(source)
        return
    thread_id = value.get("thread_id")
    if thread_id is None:
        return
    thread = await _thread(str(thread_id))
    if thread is not None and _owner(thread) != tenant:
        raise _not_found(thread_id)


async def _refuse_foreign_assistant(assistant_id: Any, tenant: str) -> None:
    """404 for creating an assistant with another tenant's assistant id (not the server's
    409, which would tell that the id exists)."""
    if assistant_id is None:
        return
    found = await _loopback_call(_loopback().assistants.get(str(assistant_id)))
    if not isinstance(found, Mapping):
        return
    metadata = found.get("metadata") or {}
    if metadata.get("created_by") != "system" and metadata.get(TENANT_KEY) != tenant:
        raise Auth.exceptions.HTTPException(
            status_code=404, detail=f"Assistant {assistant_id} not found"
        )


async def _guard_run(user: Any, value: dict[str, Any], tenant: str) -> None:
    """A run on a thread waiting at gates: roles, the caller's name, and the claim."""
    thread_id = value.get("thread_id")
    if thread_id is None:
        return
    thread = await _thread(str(thread_id))
    if thread is None or _owner(thread) != tenant:
        return  # the server's own filter answers 404
    kwargs = value.get("kwargs") or {}
    sent = kwargs.get("command")
    command: dict[str, Any] = sent if isinstance(sent, dict) else {}
    resume = command.get("resume")
    interrupts = _interrupts(thread)
    gates = _gates(interrupts)
    # The roles are those of every gate pending in the thread's row or its state.
    guarded = _gates(await _pending(thread))
    decisions = _targeted(resume, interrupts) if resume is not None else {}
    if resume is not None and not decisions and (not interrupts or _keyed(resume)):
        if guarded:
            # A gate in the state the row does not list (a copy): no decision to claim here.
            _require_roles(user, list(guarded.values()), _what(kwargs, command))
        raise await _stale(str(thread_id), tenant, resume)
    moves = command.get("update") is not None or command.get("goto") not in (None, "", [])
    only_decides = bool(decisions) and not moves and kwargs.get("input") is None
    if only_decides:
        _require_roles(user, [guarded[i] for i in decisions if i in guarded], "decide")
    else:
        _require_roles(user, list(guarded.values()), _what(kwargs, command))
    await _claim(user, thread, tenant, decisions, gates)


async def _guard_change(user: Any, thread_id: Any, tenant: str, verb: str) -> None:
    if thread_id is None:
        return
    thread = await _thread(str(thread_id))
    if thread is None or _owner(thread) != tenant:
        return
    _require_roles(user, list(_gates(await _pending(thread)).values()), verb)


async def _guard_cancel(user: Any, value: dict[str, Any], tenant: str) -> None:
    """A cancel stops the runs it selects; with `action=rollback` it also deletes them and
    the checkpoints they wrote. Either undoes a decision in flight: on a thread waiting at a
    gate, or whose run in flight resumes one (its row may already read past the gate; a
    rollback would bring the gate back with its decision spent), it needs the gate's roles
    like any other change. Without a thread (`status` or `assistant_id`), every busy thread
    of the tenant is one it may stop."""
    thread_id = value.get("thread_id")
    selection = value.get("metadata") or {}
    if thread_id is not None:
        threads = [await _thread(str(thread_id))]
        run_ids = [str(r) for r in selection.get("run_ids") or ()]
    else:
        threads = list(await _busy_threads(tenant))
        run_ids = []
    gates: list[GateRequest] = []
    for thread in threads:
        if thread is None or _owner(thread) != tenant:
            continue  # the server's own filter answers 404
        gates.extend(_gates(await _pending(thread)).values())
        runs = await _runs_in_flight(str(thread["thread_id"]), run_ids)
        if any(_resumes(run) for run in runs):
            record = await asyncio.to_thread(
                server_runtime().services.approvals.last_decided, str(thread["thread_id"]), tenant
            )
            if record is not None:
                gates.append(record.request)
    verb = "roll back a run of" if value.get("action") == "rollback" else "cancel a run of"
    _require_roles(user, gates, verb)


def _resumes(run: Mapping[str, Any]) -> bool:
    """Whether a run carries a resume (`command.resume`)."""
    command = (run.get("kwargs") or {}).get("command")
    return isinstance(command, dict) and command.get("resume") is not None


def _check_command(value: dict[str, Any]) -> None:
    """422 for a run's `command` that does nothing or has the wrong shape (the graph would
    otherwise fail on it, leaving the thread in error)."""
    kwargs = value.get("kwargs") or {}
    if "command" not in kwargs or kwargs["command"] is None:
        return
    problem = command_problem(kwargs["command"])
    if problem:
        raise Auth.exceptions.HTTPException(status_code=422, detail=problem)


def command_problem(command: Any) -> str | None:
    """Why a run's `command` is malformed (None: it is not).

    The server's schema checks the shape of each field; a command with none of `resume`
    (not null), `update` and `goto` passes it and then fails the run.
    """
    if not isinstance(command, dict):
        return f"command must be an object with resume, update or goto; got {command!r:.80}"
    if command.get("resume") is None and not command.get("update") and not command.get("goto"):
        if "resume" in command:
            return (
                "command.resume is null: a resume needs a value (the decision, or a map of "
                "interrupt id to decision); to run without one, leave command out"
            )
        return "command does nothing: give it a resume, an update or a goto"
    return None


def _what(kwargs: dict[str, Any], command: dict[str, Any]) -> str:
    parts = [name for name in ("update", "goto") if command.get(name) not in (None, "", [])]
    if kwargs.get("input") is not None:
        return "run new input on"
    if parts:
        return f"change ({' and '.join('command.' + p for p in parts)})"
    return "run"


def _require_roles(user: Any, gates: list[GateRequest], verb: str) -> None:
    """403 naming the roles when the user may not decide one of `gates`."""
    problem = roles_refusal(str(user.identity), _field(user, "roles") or (), gates, verb)
    if problem:
        raise Auth.exceptions.HTTPException(status_code=403, detail=problem)


def roles_refusal(
    identity: str, roles: Iterable[Any], gates: list[GateRequest], verb: str
) -> str | None:
    """Why `identity` with `roles` may not `verb` a thread waiting at `gates` (None: may)."""
    held = frozenset(str(r) for r in roles)
    for gate in gates:
        if not may_decide(gate, held):
            where = "decide gate" if verb == "decide" else f"{verb} a thread waiting at gate"
            return (
                f"user {identity!r} (roles: {', '.join(sorted(held)) or 'none'}) may "
                f"not {where} {gate.gate_id!r}; it needs one of: {', '.join(gate.roles)}"
            )
    return None


def thread_gates(thread: Mapping[str, Any]) -> list[GateRequest]:
    """The podium gates a thread (as the server's API returns it) waits at."""
    return list(_gates(_interrupts(thread)).values())


def _targeted(resume: Any, interrupts: dict[str, Any]) -> dict[str, Any]:
    """Interrupt id -> resume value of the interrupts `resume` answers ({} when unclear)."""
    if isinstance(resume, dict) and resume and all(k in interrupts for k in resume):
        return dict(resume)
    if len(interrupts) == 1 and not _keyed(resume):
        return {next(iter(interrupts)): resume}
    return {}


def _keyed(resume: Any) -> bool:
    """Whether `resume` is a map keyed by interrupt ids."""
    return (
        isinstance(resume, dict)
        and bool(resume)
        and all(isinstance(k, str) and _INTERRUPT_ID.match(k) for k in resume)
    )


async def _stale(thread_id: str, tenant: str, resume: Any) -> Auth.exceptions.HTTPException:
    """409 for a decision on a thread no longer waiting at the gate it answers."""
    approvals = server_runtime().services.approvals
    record = await asyncio.to_thread(approvals.last_decided, thread_id, tenant)
    if record is None:
        detail = f"thread {thread_id!r} is not waiting at any gate this resume answers"
    else:
        detail = str(AlreadyDecided(record))
    return Auth.exceptions.HTTPException(status_code=409, detail=detail)


async def _claim(
    user: Any,
    thread: Mapping[str, Any],
    tenant: str,
    decisions: dict[str, Any],
    gates: dict[str, GateRequest],
) -> None:
    """Refuse a decision naming someone else (403); claim each gate decided (409 when
    another decision got there first). A decision the graph will refuse (wrong shape or
    kind) is not claimed: the graph notes the problem and the gate stays open."""
    identity = str(user.identity)
    chosen: list[tuple[GateRequest, Decision]] = []
    for interrupt_id, raw in decisions.items():
        gate = gates.get(interrupt_id)
        if gate is None:
            continue
        try:
            decision = Decision.model_validate({"decision": raw} if isinstance(raw, str) else raw)
        except ValidationError:
            continue
        problem = caller_mismatch(decision, identity)
        if problem:
            raise Auth.exceptions.HTTPException(
                status_code=403, detail=f"gate {gate.gate_id!r}: {problem}"
            )
        if fits(decision, gate) is None:
            chosen.append((gate, decision.model_copy(update={"user": identity})))
    approvals = server_runtime().services.approvals
    claimed: list[str] = []
    try:
        for gate, decision in chosen:
            await _claim_one(approvals, thread, tenant, gate, decision, identity)
            claimed.append(gate.gate_id)
    except BaseException:
        for gate_id in claimed:
            await asyncio.to_thread(approvals.unclaim, gate_id)
        raise


async def _claim_one(
    approvals: Approvals,
    thread: Mapping[str, Any],
    tenant: str,
    gate: GateRequest,
    decision: Decision,
    identity: str,
) -> None:
    try:
        await asyncio.to_thread(approvals.claim, gate.gate_id, tenant, decision, identity)
    except AlreadyDecided as exc:
        record = exc.gate
        abandoned = (
            thread.get("status") != "busy"
            and record.decided_at is not None
            and time.time() - record.decided_at > CLAIM_GRACE
        )
        if not abandoned:
            raise Auth.exceptions.HTTPException(status_code=409, detail=str(exc)) from None
        # Claimed by a request whose run never applied it (refused, cancelled, lost): the
        # thread still waits at the gate, so the gate is open again.
        await asyncio.to_thread(approvals.unclaim, gate.gate_id)
        await asyncio.to_thread(approvals.claim, gate.gate_id, tenant, decision, identity)
    except GateError:
        # No row for the gate in podium's table: nothing to claim; the graph records it.
        return


async def _thread(thread_id: str) -> Thread | None:
    """The thread as the server holds it, whoever owns it (None when there is none).

    The in-process client runs the request in the caller's task, where the server's
    context still names the caller and would filter the thread by the caller's tenant; an
    empty context makes it the server's own read, so another tenant's thread is seen (and
    then refused here, by its owner).
    """
    found: Thread | None = await _loopback_call(_loopback().threads.get(thread_id))
    return found


async def _loopback_call(call: Any) -> Any:
    """Run a loopback client call as the server's own request (see `_thread`); None when
    it fails (no such thread or run)."""
    task = asyncio.create_task(call, context=contextvars.Context())
    try:
        return await task
    except (LangGraphError, httpx.HTTPError, ValueError):
        return None


async def _pending(thread: Mapping[str, Any]) -> dict[str, Any]:
    """Interrupt id -> value of the interrupts pending in the thread's row or its state.

    The row's list is not enough: a copy of a gated thread, or a thread whose resume was
    rolled back, has a row listing no interrupt while its latest checkpoint still waits at
    the gate, and a run from it would step past the gate.
    """
    pending = _interrupts(thread)
    state = await _loopback_call(_loopback().threads.get_state(str(thread["thread_id"])))
    if isinstance(state, Mapping):
        items = list(state.get("interrupts") or ())
        for task in state.get("tasks") or ():
            items.extend(task.get("interrupts") or ())
        for item in items:
            if isinstance(item, Mapping) and item.get("id"):
                pending.setdefault(str(item["id"]), item.get("value"))
    return pending


async def _busy_threads(tenant: str) -> list[Thread]:
    found = await _loopback_call(
        _loopback().threads.search(metadata={TENANT_KEY: tenant}, status="busy", limit=1000)
    )
    return list(found or ())


async def _runs_in_flight(thread_id: str, run_ids: list[str]) -> list[Any]:
    """The thread's pending or running runs (those of `run_ids`, when given)."""
    runs: list[Any] = []
    if run_ids:
        for run_id in run_ids:
            run = await _loopback_call(_loopback().runs.get(thread_id, run_id))
            if run is not None:
                runs.append(run)
    else:
        for status in _SERVER_ACTIVE:
            listed = await _loopback_call(
                _loopback().runs.list(thread_id, status=status, limit=1000)
            )
            runs.extend(listed or ())
    return [r for r in runs if r.get("status") in _SERVER_ACTIVE]


def _owner(thread: Mapping[str, Any]) -> Any:
    return (thread.get("metadata") or {}).get(TENANT_KEY)


def _interrupts(thread: Mapping[str, Any]) -> dict[str, Any]:
    """Interrupt id -> value of the thread's pending interrupts."""
    pending: dict[str, Any] = {}
    for items in (thread.get("interrupts") or {}).values():
        for item in items or ():
            if item.get("id"):
                pending[item["id"]] = item.get("value")
    return pending


def _gates(interrupts: dict[str, Any]) -> dict[str, GateRequest]:
    """Interrupt id -> gate, for the interrupts that are podium gates."""
    gates: dict[str, GateRequest] = {}
    for interrupt_id, raw in interrupts.items():
        if isinstance(raw, dict) and "gate_id" in raw:
            fields = {k: v for k, v in raw.items() if k != "note"}
            try:
                gates[interrupt_id] = GateRequest.model_validate(fields)
            except ValueError:
                continue
    return gates


@functools.cache
def _loopback() -> LangGraphClient:
    """The server's in-process client (no network; created once, on first use)."""
    return get_client(api_key=None)
