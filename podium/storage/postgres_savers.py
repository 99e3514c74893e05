"""LangGraph's PostgreSQL savers, with every call retried through lost connections.

Checkpoint writes are upserts keyed by thread, namespace, checkpoint and task, and reads
have no effect, so each call can run again after its connection dropped
(`podium.storage.faults`); after the retry window the run stops with
`DatabaseUnavailable`, resumable from its last checkpoint. The savers retry through
podium's `PostgresDatabase` of the same URL, so they share its view of an outage: once
the database was found unavailable, the reads that report a stopped run try once instead
of waiting the whole window again.

Every write is fenced by the run's writer lock: a run whose lock session ended, and whose
thread another run took meanwhile, is refused its next checkpoint write, even in the
middle of a step, so the thread never gets a second writer (`podium.storage.fence`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from podium.storage.database import PostgresDatabase
from podium.storage.fence import suspect_fence

T = TypeVar("T")


class RetryingPostgresSaver(PostgresSaver):
    """`PostgresSaver` whose calls survive a dropped connection (see the module)."""

    def __init__(self, conn: Any, *, db: PostgresDatabase) -> None:
        super().__init__(conn)
        self._db = db

    def _again(self, fn: Callable[[], T]) -> T:
        return self._db.retrying(fn)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        parent = super().get_tuple
        return self._again(lambda: parent(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        parent = super().list
        yield from self._again(lambda: [*parent(config, filter=filter, before=before, limit=limit)])

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        parent = super().put
        if (fence := suspect_fence(config)) is not None:
            fence.check()
        return self._again(lambda: parent(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        parent = super().put_writes
        if (fence := suspect_fence(config)) is not None:
            fence.check()
        self._again(lambda: parent(config, writes, task_id, task_path))


class RetryingAsyncPostgresSaver(AsyncPostgresSaver):
    """`AsyncPostgresSaver` whose calls survive a dropped connection (see the module)."""

    def __init__(self, conn: Any, *, db: PostgresDatabase) -> None:
        super().__init__(conn)
        self._db = db

    async def _again(self, fn: Callable[[], Awaitable[T]]) -> T:
        return await self._db.aretrying(fn)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        parent = super().aget_tuple
        return await self._again(lambda: parent(config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        parent = super().alist

        async def read() -> list[CheckpointTuple]:
            return [
                item async for item in parent(config, filter=filter, before=before, limit=limit)
            ]

        for item in await self._again(read):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        parent = super().aput
        if (fence := suspect_fence(config)) is not None:
            await asyncio.to_thread(fence.check)  # rare: only when the session may be gone
        return await self._again(lambda: parent(config, checkpoint, metadata, new_versions))

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        parent = super().aput_writes
        if (fence := suspect_fence(config)) is not None:
            await asyncio.to_thread(fence.check)
        await self._again(lambda: parent(config, writes, task_id, task_path))
