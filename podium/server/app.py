"""podium's extra routes on the LangGraph server (`langgraph.json` -> `http.app`).

    POST /triggers/{workflow}    signed webhook -> run (see `podium.server.webhooks`)
    GET  /podium/...             podium's usage and audit for the caller's tenant
                                 (see `podium.server.insight`)
    GET  /podium/metrics         every tenant's signals to scale on, for operators
                                 (see `podium.server.metrics`)

The server mounts this Starlette app beside its own routes. Its authentication
middleware does not cover custom routes (`enable_custom_route_auth` is off), so each route
here checks its own credential: the webhook signature, or the API key / bearer token.
The app's middleware wraps the whole server: it closes the dev server's debug, wipe and
deploy routes (see `podium.server._closed_routes`), and answers 404 before a thread's
event stream starts when the caller cannot see the thread (see
`podium.server._thread_streams`). A route that cannot reach podium's database answers 503
with the reason (the URL masked), not 500.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from podium.errors import DatabaseError
from podium.server import insight, metrics
from podium.server._closed_routes import CloseDevServerRoutes
from podium.server._thread_streams import GuardThreadStreams
from podium.server.webhooks import trigger


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """podium's database cannot be reached: 503 with what is wrong (URL masked)."""
    return JSONResponse({"detail": str(exc)}, status_code=503)


app = Starlette(
    routes=[
        Route("/triggers/{workflow}", trigger, methods=["POST"]),
        *insight.routes,
        *metrics.routes,
    ],
    middleware=[Middleware(CloseDevServerRoutes), Middleware(GuardThreadStreams)],
    exception_handlers={DatabaseError: database_unavailable},
)
