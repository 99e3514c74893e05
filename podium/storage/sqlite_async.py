"""An async face on LangGraph's synchronous SQLite saver.

`AsyncSqliteSaver` keeps a write transaction open across an `await` (execute, then
commit). podium's own tables live in the same file on a second connection, written
synchronously; when such a write blocks the event loop inside that window, each
connection waits for the other until the busy timeout. Running the synchronous saver
inline (each call is a short local transaction) removes the window: every transaction
in the process completes before the loop moves on. For the same reason `alist` reads
every row before it yields the first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.sqlite import SqliteSaver


class InlineAsyncSqliteSaver(SqliteSaver):
    """`SqliteSaver` whose async methods run the synchronous ones inline."""

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        # `SqliteSaver.list` holds the saver's lock while it yields. Iterated lazily here,
        # the lock would stay held across the caller's awaits, and any other saver call on
        # the loop would then block the loop for good. Read every row first, then yield.
        items = list(self.list(config, filter=filter, before=before, limit=limit))
        for item in items:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)
