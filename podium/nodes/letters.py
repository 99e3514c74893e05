"""Dead letters a finished run settles.

A replay whose run stopped early (it raised, or its reader stopped) once its task was
back on the thread finishes its letter as the thread stood, with why it stopped, and
leaves the thread unfinished. Whatever run finishes the thread later (`podium resume`,
the app's "continue", a server run, `invoke` from Python) ends in the aggregate node or
the answer gate, which call `settle_stopped_replays`: the letter then tells the task's
final outcome, as a replay that ran to the end would have.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig

from podium.governance.binding import bound
from podium.stores.dead_letters.letters import replay_result


def settle_stopped_replays(
    config: RunnableConfig, tenant_id: str, state: Mapping[str, Any]
) -> None:
    """Record the final outcome of each task of this round that a stopped replay put back
    (root graph only; nested workflows share the thread)."""
    configurable = config.get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None or "|" in configurable.get("checkpoint_ns", ""):
        return
    letters = bound(config).services.dead_letters
    tasks = state.get("tasks") or {}
    round_ = state.get("round", 0)
    for letter in letters.stopped_replays(tenant_id, str(thread_id)):
        stopped = (letter.resolution or {}).get("result") or {}
        task = tasks.get(letter.task_id)
        # A task of a later round has the same id but is another task.
        if task is None or stopped.get("round", round_) != round_:
            continue
        letters.settle_stopped_replay(letter.id, tenant_id, result=replay_result(task, letter.id))
