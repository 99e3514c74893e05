"""Helpers shared by test modules (not fixtures)."""

from __future__ import annotations

from typing import Any

import podium
from podium.decisions import adecide, apending_gates, decide, pending_gates
from podium.graphs.research_brief import DEMO_GOAL

EDITOR = frozenset({"editor"})


def run_demo(
    app: Any,
    thread: str,
    *,
    tenant: str = "default",
    goal: str = DEMO_GOAL,
    inputs: dict | None = None,
) -> dict:
    """Run research_brief to the end, approving its publish gate as an editor."""
    config = {"configurable": {"thread_id": thread}}
    out = app.invoke(inputs or {"goal": goal}, config, context=podium.RunContext(tenant_id=tenant))
    while pending_gates(app, thread):
        out = decide(
            app,
            thread,
            "approve",
            context=podium.RunContext(tenant_id=tenant, user_id="ed", roles=EDITOR),
        )
    return out


async def arun_demo(app: Any, thread: str, *, tenant: str = "default") -> dict:
    """`run_demo` for async runs."""
    config = {"configurable": {"thread_id": thread}}
    out = await app.ainvoke(
        {"goal": DEMO_GOAL}, config, context=podium.RunContext(tenant_id=tenant)
    )
    while await apending_gates(app, thread):
        out = await adecide(
            app,
            thread,
            "approve",
            context=podium.RunContext(tenant_id=tenant, user_id="ed", roles=EDITOR),
        )
    return out


class Clock:
    """A clock tests move by hand (`clock.now += 61`); `sleep` advances it instead of waiting."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
