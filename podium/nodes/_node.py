"""A lean node runnable with a sync and an async body.

`RunnableLambda` opens a callback child run and inspects signatures on every call; a
delegation crosses three podium nodes, so that cost showed in the benchmark. This calls
the two functions directly; LangGraph still sets the run context around the node, so
`get_runtime()` and `get_stream_writer()` work inside.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig, ensure_config


class Node(Runnable[Any, Any]):
    """A graph node from `func(input, config)` and `afunc(input, config)`."""

    def __init__(
        self,
        name: str,
        func: Callable[[Any, RunnableConfig], Any],
        afunc: Callable[[Any, RunnableConfig], Awaitable[Any]],
    ) -> None:
        self.name = name
        self.func = func
        self.afunc = afunc

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self.func(input, ensure_config(config))

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await self.afunc(input, ensure_config(config))


def untraced(func: Callable[[Any], Any], name: str) -> Runnable[Any, Any]:
    """A routing function (a conditional edge's path) that opens no callback run.

    LangGraph runs its own plumbing untraced. A traced path function would add a span per
    step whose input is the whole state, already on the node's span; its decision shows
    as the next node's span (and in the audit log). A plain `Runnable` whose `invoke`
    calls the function directly opens no run (only LangChain's wrappers do).
    """

    def call(state: Any, config: RunnableConfig) -> Any:
        return func(state)

    async def acall(state: Any, config: RunnableConfig) -> Any:
        return func(state)

    return Node(name, call, acall)
