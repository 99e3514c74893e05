"""Replay of recorded model replies within one run of a task, and the run's attempt.

The task node gives each run of a task a `TaskReplies` (in its scope) and begins it before
the task's worker runs: that counts the run (`attempt`: 2 or more when the task runs
again after its previous run died) and reads what earlier runs recorded. The governor
asks it, before each model call of the task, for the call's step and a recorded reply; a
recorded reply is returned instead of calling the model, and a new reply is recorded
(with its bill) before it is returned, so before its tool calls can run.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from langchain_core.messages import AIMessage, BaseMessage

if TYPE_CHECKING:
    from podium.stores.budgets.store import Settlement
    from podium.stores.ledger import UsageEntry
    from podium.stores.replies import ModelReplies, TaskKey


class TaskReplies:
    """The recorded replies of one task, read once, and the steps of its model calls."""

    def __init__(self, store: ModelReplies, key: TaskKey) -> None:
        self.key = key
        self._store = store
        self._recorded: dict[str, AIMessage] | None = None
        self._calls: dict[int, int] = {}
        self._lock = threading.Lock()
        #: Which run of the task this is (1 until `begin` counts it).
        self.attempt = 1

    def begin(self) -> None:
        """Count this run of the task and read the replies earlier runs recorded."""
        start = self._store.begin(self.key)
        with self._lock:
            self.attempt, self._recorded = start.attempt, start.replies

    def pause(self) -> None:
        """This run stops at a gate (or waits for one): the run that continues the task
        is no retry."""
        self._store.pause(self.key)

    def step(self, messages: Sequence[BaseMessage]) -> str:
        """The step of a model call: how many replies the conversation holds already,
        and how many calls this run of the task made on that many (a loop makes one)."""
        replies = sum(isinstance(m, AIMessage) for m in messages)
        with self._lock:
            nth = self._calls[replies] = self._calls.get(replies, -1) + 1
        return f"{replies}.{nth}"

    @property
    def loaded(self) -> bool:
        """Whether the recorded replies were read (so `recorded` does no I/O)."""
        return self._recorded is not None

    def recorded(self, step: str) -> AIMessage | None:
        """The reply recorded at `step` by an earlier run of the task, if any."""
        if self._recorded is None:
            loaded = self._store.load(self.key)
            with self._lock:
                if self._recorded is None:
                    self._recorded = loaded
        return self._recorded.get(step)

    def record(
        self,
        step: str,
        reply: AIMessage,
        usage: Sequence[UsageEntry],
        settlement: Settlement | None = None,
    ) -> AIMessage:
        """Record `reply` (its tool calls given ids when they have none), its bill and its
        budget settlement; returns the reply to use (an earlier run's, when two runs
        raced)."""
        prefix = f"call-r{self.key.round}-{self.key.task_id}-{step}"
        reply = with_call_ids(reply, prefix)
        return self._store.record(self.key, step, reply, usage, settlement)


def with_call_ids(reply: AIMessage, prefix: str | None = None) -> AIMessage:
    """`reply` with an id on every tool call: a missing or empty one is derived from
    `prefix` and the call's position, so two calls never share an id (and so an effect
    key)."""
    if not reply.tool_calls or all(c.get("id") for c in reply.tool_calls):
        return reply
    base = prefix or f"call-{uuid.uuid4().hex[:12]}"
    calls = [
        {**c, "id": c.get("id") or f"{base}-{position}"}
        for position, c in enumerate(reply.tool_calls)
    ]
    return reply.model_copy(update={"tool_calls": calls})
