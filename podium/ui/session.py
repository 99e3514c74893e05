"""Session state of the chat page: which thread is open, what to do next, what to tell.

Streamlit reruns the page script on every click. Widget callbacks only *queue* an action
here (`Send`, `Decide`, `Continue`); the script takes it once, runs it while drawing the
live board, then draws the page from the checkpoint. Works on any mutable mapping, so
`st.session_state` in the app and a plain dict in tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from podium.gates.request import Decision
from podium.ui.cards import EditError, GateCard, decision_for

SESSION_KEY = "podium.chat"
Level = Literal["error", "warning", "info", "success"]


@dataclass(frozen=True, slots=True)
class Send:
    """A goal (first message of a thread) or a follow-up (a new round)."""

    text: str


@dataclass(frozen=True, slots=True)
class Decide:
    """A decision on one pending gate."""

    gate_id: str
    decision: Decision


@dataclass(frozen=True, slots=True)
class Continue:
    """Continue a run that stopped between steps from its last checkpoint."""


Action = Send | Decide | Continue


@dataclass(frozen=True, slots=True)
class Notice:
    """A message for the next drawing of the page (an error, a refusal, a result)."""

    level: Level
    text: str


def new_thread_id(workflow: str) -> str:
    """A fresh thread id, named after its workflow as the CLI names them."""
    return f"{workflow}-{uuid.uuid4().hex[:8]}"


@dataclass
class ChatSession:
    """The page's state for one browser session.

    Attributes:
        thread_id: The open thread; None until the first message of a new chat.
        workflow: The open thread's workflow (None: the one picked in the sidebar).
        tenant_id: The tenant the open thread belongs to.
        editing: Gates whose Edit box is open.
        edit_errors: Why the last edit of a gate was not accepted, by gate id.
        links_read: Whether the page's `?thread=` / `?workflow=` link was applied.
    """

    thread_id: str | None = None
    workflow: str | None = None
    tenant_id: str | None = None
    action: Action | None = None
    notices: list[Notice] = field(default_factory=list)
    editing: set[str] = field(default_factory=set)
    edit_errors: dict[str, str] = field(default_factory=dict)
    links_read: bool = False

    def new_chat(self) -> None:
        """Close the open thread; the next message starts a new one."""
        self.thread_id = self.workflow = self.tenant_id = None
        self.action = None
        self.editing.clear()
        self.edit_errors.clear()

    def open_thread(self, thread_id: str, workflow: str, tenant_id: str) -> None:
        """Open an existing thread (the sidebar list, or a `?thread=` link)."""
        self.thread_id, self.workflow, self.tenant_id = thread_id, workflow, tenant_id
        self.action = None
        self.editing.clear()
        self.edit_errors.clear()

    def ensure_thread(
        self, workflow: str, tenant_id: str, make_id: Callable[[str], str] = new_thread_id
    ) -> str:
        """The open thread, or a new one of `workflow` for `tenant_id` (its id from
        `make_id(workflow)`: a LangGraph server wants UUIDs)."""
        if self.thread_id is None:
            self.open_thread(make_id(workflow), workflow, tenant_id)

        return self.thread_id  # type: ignore[return-value]

    def follow_tenant(self, tenant_id: str) -> None:
        """A thread belongs to one tenant: switching tenants closes it."""
        if self.thread_id is not None and self.tenant_id != tenant_id:
            self.notify("info", f"switched to tenant {tenant_id!r}: started a new chat")
            self.new_chat()

    def queue(self, action: Action) -> None:
        """Remember what to do on the next run of the page script."""
        self.action = action

    def queue_send(self, text: str | None) -> bool:
        """Queue a message; blank text is ignored. Returns whether one was queued."""
        text = (text or "").strip()
        if not text:
            return False
        self.queue(Send(text))
        return True

    def take_action(self) -> Action | None:
        """The queued action, removed so a rerun never repeats it."""
        action, self.action = self.action, None
        return action

    def queue_decision(
        self, card: GateCard, verb: str, *, comment: str = "", text: str | None = None
    ) -> bool:
        """Queue a decision on `card`; an edit that does not parse is kept in `edit_errors`
        for the card to show, and nothing is queued. Returns whether one was queued."""
        try:
            decision = decision_for(card, verb, comment=comment, text=text)
        except EditError as exc:
            self.edit_errors[card.gate_id] = str(exc)
            return False
        self.edit_errors.pop(card.gate_id, None)
        self.queue(Decide(card.gate_id, decision))
        return True

    def decided(self, gate_id: str) -> None:
        """Forget the Edit box of a gate that was decided."""
        self.editing.discard(gate_id)
        self.edit_errors.pop(gate_id, None)

    def toggle_edit(self, gate_id: str) -> None:
        if gate_id in self.editing:
            self.editing.discard(gate_id)
        else:
            self.editing.add(gate_id)

    def notify(self, level: Level, text: str) -> None:
        self.notices.append(Notice(level, text))

    def take_notices(self) -> list[Notice]:
        notices, self.notices = self.notices, []
        return notices


class StateMapping(Protocol):
    """What `session_of` needs of its mapping (`st.session_state`, or a dict)."""

    def get(self, key: str, /) -> Any: ...

    def __setitem__(self, key: str, value: Any, /) -> None: ...


def session_of(state: StateMapping) -> ChatSession:
    """The chat session kept in `state` (`st.session_state`), created on first use."""
    session = state.get(SESSION_KEY)
    if not isinstance(session, ChatSession):
        session = ChatSession()
        state[SESSION_KEY] = session
    return session
