"""Routes of the LangGraph dev server that podium's server closes (answers 404).

`langgraph dev` (the in-memory runtime) adds routes of its own beside the API, outside
the authentication middleware, so podium's tenant filters never see them:

    GET  /internal/debug/thread/{id}   any thread, raw, whoever owns it
    POST /internal/truncate            every thread, run, cron and checkpoint wiped
    GET/POST /deploy, /deploy/...      deployment info; starts `langgraph deploy`

They serve LangGraph's own tests and Studio's deploy button. On podium's server they
answer 404 to every caller, before any other middleware or route sees the request.
"""

from __future__ import annotations

import re

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

#: Path prefixes (after the mount prefix) that are closed.
CLOSED = ("/internal", "/deploy")
_SLASHES = re.compile(r"/{2,}")


def route_path(scope: Scope) -> str:
    """The request's path as the server routes it (without the mount's root path)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def closed(path: str) -> bool:
    """Whether a request path (slashes collapsed, trailing slash ignored) is closed."""
    path = _SLASHES.sub("/", path).rstrip("/") or "/"
    return any(path == p or path.startswith(p + "/") for p in CLOSED)


class CloseDevServerRoutes:
    """ASGI middleware answering 404 for the dev server's debug, wipe and deploy routes.

    Args:
        app: The application it wraps (the whole server: podium's app's middleware runs
            before the server's own routing).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and closed(route_path(scope)):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            response = JSONResponse({"detail": "Not Found"}, status_code=404)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
