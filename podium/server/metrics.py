"""`GET /podium/metrics`: the signals to scale on, in the Prometheus text format.

    GET /podium/metrics    per tenant: runs queued and in flight, gates waiting, dead
                           letters, open breakers, money and tokens spent (operators only)

Only a credential with the `operator` role may read it (403 otherwise): unlike podium's
other routes it answers for every tenant. Runs are counted from the LangGraph server's
own API (busy threads and their pending and running runs, through the server's
in-process client), so the numbers hold for every process sharing its database; the rest
comes from podium's tables (`podium.status`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import podium.server.insight as insight
from podium.server._runtime import server_runtime
from podium.status import build_status, metrics_text, store_counts

#: The role that may read every tenant's numbers.
OPERATOR_ROLE = "operator"
#: Busy threads read per request to the server's API.
_PAGE = 500
#: Statuses of a LangGraph server run: the server's own vocabulary, not `podium.RunStatus`.
_SERVER_PENDING, _SERVER_RUNNING = "pending", "running"


async def run_counts(client: Any) -> dict[str, dict[str, float]]:
    """Tenant -> runs_queued / runs_in_flight, from the LangGraph server's API."""
    queued: Counter[str] = Counter()
    running: Counter[str] = Counter()
    offset = 0
    while True:
        busy = await client.threads.search(
            status="busy", limit=_PAGE, offset=offset, select=["thread_id", "metadata"]
        )
        for thread in busy:
            tenant = str((thread.get("metadata") or {}).get("tenant_id") or "")
            if not tenant:
                continue
            for run in await client.runs.list(thread["thread_id"], limit=100, select=["status"]):
                if run["status"] == _SERVER_PENDING:
                    queued[tenant] += 1
                elif run["status"] == _SERVER_RUNNING:
                    running[tenant] += 1
        if len(busy) < _PAGE:
            break
        offset += _PAGE
    tenants = set(queued) | set(running)
    return {t: {"runs_queued": queued[t], "runs_in_flight": running[t]} for t in tenants}


async def metrics(request: Request) -> Response:
    from podium.server.auth import _loopback

    who = await insight.signed_in(request)
    if isinstance(who, JSONResponse):
        return who
    if OPERATOR_ROLE not in who.roles:
        return JSONResponse(
            {"detail": f"user {who.identity!r} needs the {OPERATOR_ROLE!r} role to read metrics"},
            status_code=403,
        )
    services = server_runtime().services
    await run_in_threadpool(services.flush)  # buffered usage rows of runs that just ended
    stored = await run_in_threadpool(store_counts, server_runtime().db)
    runs = await run_counts(_loopback())
    body = metrics_text(build_status(stored, runs))
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


routes = [Route("/podium/metrics", metrics, methods=["GET"])]
