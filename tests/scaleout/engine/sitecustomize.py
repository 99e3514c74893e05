"""Start-up fixes for `langhost serve` (langgraph-runtime-pg 0.11.1.post1), test harness only.

This directory is put on PYTHONPATH of the engine processes the scale-out tests start, and
nowhere else: Python imports `sitecustomize` at interpreter start. It must not import
`langgraph_api` itself (that freezes the server's configuration before `LANGGRAPH_AUTH` is
set, and the server then runs with no authentication at all), so each fix is applied by an
import hook, right after the module it changes is first imported by the server:

1. `langgraph_api.middleware.ensure_store.EnsureStoreAccessible` asks for the store during
   the ASGI lifespan handshake, before the runtime has opened its pool, and every request
   then fails with "Store requires setup_store()/start_pool() first". Lifespan scopes pass
   through it here (fixed upstream, not released).
2. `langgraph_runtime_pg.database` builds its SQLAlchemy engine with a plain `json.dumps`,
   which cannot write the authenticated user (`ProxyUser`) the server puts into every
   run's config. The engine gets a `json_serializer` that writes such objects as dicts.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import json
import sys
from collections.abc import Callable
from typing import Any


def _pass_lifespan(module: Any) -> None:
    cls = module.EnsureStoreAccessible
    wrapped = cls.__call__

    @functools.wraps(wrapped)
    async def call(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") == "lifespan":
            await self.app(scope, receive, send)
            return
        await wrapped(self, scope, receive, send)

    cls.__call__ = call


def _as_json(value: Any) -> Any:
    for name in ("model_dump", "dict"):
        dump = getattr(value, name, None)
        if callable(dump):
            return dump()
    if hasattr(value, "keys"):
        return {k: value[k] for k in value}
    return str(value)


def _serializer(value: Any) -> str:
    return json.dumps(value, default=_as_json)


def _serialize_users(module: Any) -> None:
    create = module.create_async_engine

    @functools.wraps(create)
    def create_async_engine(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("json_serializer", _serializer)
        return create(*args, **kwargs)

    module.create_async_engine = create_async_engine


_PATCHES: dict[str, Callable[[Any], None]] = {
    "langgraph_api.middleware.ensure_store": _pass_lifespan,
    "langgraph_runtime_pg.database": _serialize_users,
}


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader, patch: Callable[[Any], None]) -> None:
        self._inner = inner
        self._patch = patch

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self._inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._inner.exec_module(module)
        self._patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        patch = _PATCHES.pop(fullname, None)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _Loader(spec.loader, patch)
        return spec


sys.meta_path.insert(0, _Finder())
