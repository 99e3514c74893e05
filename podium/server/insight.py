"""Read-only routes on podium's own tables, for clients of the server (the chat app).

    GET /podium/me                          who the credential names: tenant, user, roles,
                                            and the credential (kind, name, issuer, expiry)
    GET /podium/threads/{thread_id}/costs   tokens and cost per agent of one thread
    GET /podium/threads/{thread_id}/audit   the thread's audit events, in order
    GET /podium/audit/verify                the tenant's audit chain, recomputed

The LangGraph API serves threads, runs and state; usage and audit live in podium's
tables (`PODIUM_DATABASE_URL`), which only these routes expose. Custom routes are not
covered by the server's authentication middleware, so each request here is
authenticated with the same credentials (`x-api-key` or a bearer token) and answers for
the credential's tenant only: another tenant's thread reads as empty, never as its data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from podium.server._credentials import CredentialError, Principal
from podium.server._jwt import KeysUnavailable
from podium.server._runtime import server_runtime


def _principal(request: Request) -> Principal:
    from podium.server.auth import authenticate_headers

    headers = {k.lower(): v for k, v in request.headers.raw}
    return authenticate_headers(headers)


async def signed_in(request: Request) -> Principal | JSONResponse:
    """Who a request to one of podium's routes is from, or the answer refusing it (401;
    503 while the identity provider's keys cannot be fetched)."""
    try:
        # A stored key is read from the database, a JWT's keys may be fetched: off the loop.
        return await run_in_threadpool(_principal, request)
    except KeysUnavailable as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503)
    except CredentialError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=401)


def _guarded(handler: Callable[[Request, Principal], Any]) -> Callable[[Request], Any]:
    """Authenticate, then run `handler` off the event loop (podium's stores block)."""

    async def endpoint(request: Request) -> JSONResponse:
        principal = await signed_in(request)
        if isinstance(principal, JSONResponse):
            return principal
        return JSONResponse(await run_in_threadpool(handler, request, principal))

    endpoint.__name__ = handler.__name__
    return endpoint


def me(request: Request, who: Principal) -> dict[str, Any]:
    return {
        "tenant_id": who.tenant_id,
        "identity": who.identity,
        "roles": list(who.roles),
        "credential": who.credential,
        "name": who.display_name,
        "issuer": who.issuer,
        "expires_at": who.expires_at,
    }


def costs(request: Request, who: Principal) -> dict[str, Any]:
    services = server_runtime().services
    services.flush()  # buffered usage rows of a run that just ended
    rows = services.ledger.for_thread(request.path_params["thread_id"], who.tenant_id)
    return {
        "rows": [
            {
                "key": r.key,
                "calls": r.calls,
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
                "cached_tokens": r.cached_tokens,
                "total_tokens": r.total_tokens,
                "cost_usd": r.cost_usd,
            }
            for r in rows
        ]
    }


def audit(request: Request, who: Principal) -> dict[str, Any]:
    services = server_runtime().services
    services.flush()  # buffered events of a run that just ended
    events = services.audit.timeline(request.path_params["thread_id"], who.tenant_id)
    return {
        "events": [
            {
                "seq": e.seq,
                "at": e.at,
                "kind": e.kind,
                "actor": str(e.actor),
                "task_id": e.task_id,
                "payload": e.payload,
            }
            for e in events
        ]
    }


def verify(request: Request, who: Principal) -> dict[str, Any]:
    services = server_runtime().services
    services.flush()
    report = services.audit.verify(who.tenant_id)
    chains = []
    for chain in report:
        problem = chain.problem
        chains.append(
            {
                "tenant_id": chain.tenant_id,
                "count": chain.count,
                "head": chain.head.to_dict(),
                "problem": None
                if problem is None
                else {"seq": problem.seq, "kind": problem.kind, "detail": problem.detail},
            }
        )
    return {"chains": chains}


routes = [
    Route("/podium/me", _guarded(me), methods=["GET"]),
    Route("/podium/threads/{thread_id}/costs", _guarded(costs), methods=["GET"]),
    Route("/podium/threads/{thread_id}/audit", _guarded(audit), methods=["GET"]),
    Route("/podium/audit/verify", _guarded(verify), methods=["GET"]),
]
