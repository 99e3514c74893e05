"""Progress events the governor adds to a run's stream (LangGraph's `custom` mode).

`model_fallback` (another model of the list took a call) and `retry` (a call failed and
is tried again after a wait) sit next to the task node's own events, so a display can say
why a task is slower, or why a streamed reply started over.
"""

from __future__ import annotations

from typing import Any


def emit(event: dict[str, Any]) -> None:
    """Send a custom stream event, when the call runs inside a graph (a direct call has
    no stream, and nothing is sent)."""
    from langgraph.config import get_stream_writer

    try:
        writer = get_stream_writer()
    except RuntimeError:
        return
    writer(event)
