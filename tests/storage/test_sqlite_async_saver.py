"""The inline async SQLite saver never blocks the event loop."""

from __future__ import annotations

import asyncio

import podium
from podium.runtime import open_async_runtime


async def test_a_lazy_alist_beside_a_running_graph_does_not_freeze_the_loop(tmp_path, scripted):
    flow = podium.build_workflow(
        [podium.AgentSpec(name="worker", model=scripted("one", "two", name="worker"))],
        name="lazy",
        supervisor=podium.Plan.chain(("worker", "a")),
    )
    async with open_async_runtime(f"sqlite:///{tmp_path / 'p.db'}") as rt:
        app = rt.compile(flow)
        await app.ainvoke({"goal": "first"}, {"configurable": {"thread_id": "old"}})
        # Start reading the history and stop after the first item, as a paging UI would.
        history = rt.checkpointer.alist({"configurable": {"thread_id": "old"}})
        first = await anext(history)
        assert first.config["configurable"]["thread_id"] == "old"
        # Another run on the loop meanwhile must finish (it writes checkpoints).
        out = await asyncio.wait_for(
            app.ainvoke({"goal": "second"}, {"configurable": {"thread_id": "new"}}), timeout=20
        )
        assert out["status"] == "completed"
        rest = [item async for item in history]
        assert len(rest) >= 3  # the first run's other checkpoints are still there
