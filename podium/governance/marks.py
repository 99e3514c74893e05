"""Marks of calls podium already governs, so the callback guard lets them through.

A governed call (a tool call inside the one decision, a governed model's call) runs
inside `governed()`; a governed model's reply carries `GOVERNED_REPLY` in its
`llm_output`, because LangChain reports it to callbacks after the mark is gone.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

#: The `_llm_type` of podium's governed model, as callbacks see it in a call's
#: invocation params (the guard leaves its calls to the governor).
GOVERNED_MODEL_TYPE = "podium-governed"
#: `llm_output` marker of a reply of podium's governed model (accounted already).
GOVERNED_REPLY = "podium_governed"

_GOVERNED: contextvars.ContextVar[bool] = contextvars.ContextVar("podium_governed", default=False)


@contextmanager
def governed() -> Iterator[None]:
    """Mark the calls made inside as already governed (the guard lets them through)."""
    token = _GOVERNED.set(True)
    try:
        yield
    finally:
        _GOVERNED.reset(token)


def is_governed() -> bool:
    """Whether the caller runs inside `governed()`."""
    return _GOVERNED.get()
