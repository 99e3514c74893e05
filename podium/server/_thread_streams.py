"""A thread's event stream (`/threads/{id}/stream/events`) answers 404 for a thread the
caller's tenant does not own, before the stream starts.

The server checks the thread only inside the stream's background reader, after the
response has started: another tenant's (or no) thread gave a 200 with an empty stream,
unlike every other thread route. This middleware of podium's app, which wraps the whole
server, authenticates the request itself and looks the thread up first. A request whose
credential is refused passes on, so the server answers it (401 or 503) as any other.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from podium.errors import DatabaseError
from podium.server._closed_routes import route_path
from podium.server._credentials import CredentialError
from podium.server._jwt import KeysUnavailable

#: The thread stream routes (HTTP POST and WebSocket), after the mount prefix.
STREAM = re.compile(r"^/+threads/+([^/]+)/+stream/+events/*$")


class GuardThreadStreams:
    """ASGI middleware: 404 for a thread event stream of a thread the caller cannot see.

    Args:
        app: The application it wraps (the whole server).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            match = STREAM.match(route_path(scope))
            if match and not await _visible(scope, match.group(1)):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                detail = f"Thread with ID {match.group(1)} not found"
                await JSONResponse({"detail": detail}, status_code=404)(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _visible(scope: Scope, thread_id: str) -> bool:
    """Whether the request's user owns the thread (True when the credential is refused:
    the server answers that request itself)."""
    from podium.server import auth  # the server loads it first (langgraph.json)

    headers: dict[bytes, bytes] = {k.lower(): v for k, v in scope.get("headers") or ()}
    try:
        principal = await asyncio.to_thread(auth.authenticate_headers, headers)
    except (CredentialError, KeysUnavailable, DatabaseError):
        return True
    thread: Any = await auth._thread(thread_id)
    return thread is not None and auth._owner(thread) == principal.tenant_id
