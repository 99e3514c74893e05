"""What the page shows of a thread: its conversation, board, pending gates and outcome.

Everything here is read from the thread's checkpoint (and the thread index), so opening a
thread in a new browser tab, or after a restart, shows the same page.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from podium.lifecycle import RunStatus
from podium.render import age
from podium.ui.board import BoardRow, board_rows
from podium.ui.cards import GateCard, gate_card

#: Run statuses after which the page says how the run ended.
UNHAPPY = (RunStatus.FAILED, RunStatus.PARTIAL)
_HEADING = re.compile(r"^(#{1,4})(?=\s)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class ChatLine:
    """One chat bubble: `role` is "user" or "assistant"."""

    role: str
    text: str

    @property
    def markdown(self) -> str:
        """The text with its Markdown headings two levels smaller, to fit a chat bubble."""
        return _HEADING.sub(lambda m: "#" * min(6, len(m.group(1)) + 2), self.text)


@dataclass(frozen=True, slots=True)
class ThreadView:
    """A thread as the page draws it.

    Attributes:
        status: The run's status from the state ("running", "completed", "partial"...),
            or None for a thread that has not run yet.
        stalled: The run stopped between steps (a crash, a closed tab) with no gate
            pending: it can continue from its last checkpoint.
        error: Why the run failed or ended partial, when it says.
    """

    thread_id: str | None
    status: str | None = None
    round: int = 0
    messages: tuple[ChatLine, ...] = ()
    board: tuple[BoardRow, ...] = ()
    cards: tuple[GateCard, ...] = ()
    stalled: bool = False
    error: str | None = None

    @property
    def waiting(self) -> bool:
        """Whether the run waits for a person (a gate is pending)."""
        return bool(self.cards)

    @property
    def outcome(self) -> str | None:
        """A sentence on an unhappy ending (failed or partial), else None."""
        if self.waiting or self.status not in UNHAPPY:
            return None
        reason = f": {self.error}" if self.error else ""
        return f"The run ended {self.status}{reason}"


def chat_lines(messages: Iterable[BaseMessage]) -> list[ChatLine]:
    """User messages and the assistant's answers; tool calls and empty turns are left out."""
    lines = []
    for message in messages:
        if isinstance(message, HumanMessage):
            lines.append(ChatLine("user", message.text))
        elif isinstance(message, AIMessage) and not message.tool_calls and message.text:
            lines.append(ChatLine("assistant", message.text))
    return lines


def thread_view(
    thread_id: str | None,
    values: Mapping[str, Any],
    gates: Sequence[Any] = (),
    *,
    tasks: Sequence[Any] = (),
) -> ThreadView:
    """The view of a thread from its checkpoint.

    Args:
        values: `app.get_state(config).values` ({} for a thread that never ran).
        gates: `podium.gates.decision.pending_gates(app, thread_id)`.
        tasks: `app.get_state(config).tasks`: the steps of the current superstep not yet
            committed (`next` alone misses a step whose tasks all finished before the
            run stopped: their writes wait in the checkpoint).
    """
    if not values:
        return ThreadView(thread_id)
    return ThreadView(
        thread_id=thread_id,
        status=values.get("status"),
        round=int(values.get("round") or 0),
        messages=tuple(chat_lines(values.get("messages") or ())),
        board=tuple(board_rows(values, gates)),
        cards=tuple(gate_card(g) for g in gates),
        stalled=bool(tasks) and not gates,
        error=values.get("error"),
    )


#: Characters of a thread's title in the sidebar.
TITLE_CHARS = 42


@dataclass(frozen=True, slots=True)
class ThreadEntry:
    """A thread in the sidebar list.

    Attributes:
        tag: A short part of the thread id, shown when another entry's title reads the
            same (the same goal twice, or titles that differ only past the cut), so no two
            entries look alike; empty otherwise.
    """

    thread_id: str
    workflow: str
    title: str
    status: str
    age: str
    tag: str = ""

    @property
    def short_title(self) -> str:
        if len(self.title) <= TITLE_CHARS:
            return self.title
        return self.title[: TITLE_CHARS - 1] + "…"

    @property
    def label(self) -> str:
        tag = f" #{self.tag}" if self.tag else ""
        return f"{self.short_title}{tag} · {self.status} · {self.age}"


def thread_entries(
    threads: Iterable[Any], *, now: float, waiting: Iterable[str] = ()
) -> list[ThreadEntry]:
    """Sidebar entries from `ThreadIndex.list` rows, newest first as given.

    Args:
        waiting: Ids of threads with a pending gate; their status reads "waiting".
    """
    gated = set(waiting)
    entries = [
        ThreadEntry(
            thread_id=t.thread_id,
            workflow=t.workflow,
            title=t.title or t.thread_id,
            status=(
                RunStatus.WAITING.value
                if t.thread_id in gated and t.status == RunStatus.RUNNING
                else t.status
            ),
            age=age(now - t.updated_at),
        )
        for t in threads
    ]
    seen = Counter(e.short_title for e in entries)
    return [replace(e, tag=_tag(e.thread_id)) if seen[e.short_title] > 1 else e for e in entries]


def _tag(thread_id: str) -> str:
    """The end of a thread id (its random part, for ids like `research_brief-1a2b3c4d`)."""
    return thread_id[-8:]
