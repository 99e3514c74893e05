"""The answer as it streams into the chat, before the run ends.

The workbench hands the page each token of the tasks' model calls as a
`{"event": "token", ...}` event next to the progress events (`podium.streaming`).
`LiveAnswer` keeps the text they add up to: the answer as far as it is written, and
the text of the task writing now, so the page can show it growing. When the run ends
the page draws the thread from its checkpoint: the stored answer (after the policy's
output filters) replaces the streamed text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from podium.streaming import TOKEN_EVENT, AnswerText, Token


def is_token(event: Mapping[str, Any]) -> bool:
    """Whether a run event is a model token (not a progress event)."""
    return event.get("event") == TOKEN_EVENT


@dataclass(frozen=True, slots=True)
class Writing:
    """What the page shows while the run works.

    Attributes:
        answer: The answer as streamed so far ("" until a sink task writes).
        task_id: The task that wrote last (None before any text).
        agent: Its agent.
        text: Its latest reply as streamed so far.
    """

    answer: str = ""
    task_id: str | None = None
    agent: str | None = None
    text: str = ""

    @property
    def markdown(self) -> str:
        """The streamed answer, or else what the task writing now wrote so far."""
        if self.answer:
            return self.answer
        if self.task_id and self.text:
            return f"_{self.task_id} · {self.agent} is writing…_\n\n{self.text}"
        return ""


class LiveAnswer:
    """Follows a run's events: `apply` each one, draw `writing` when it says so."""

    def __init__(self) -> None:
        self._text = AnswerText()
        self._last: Token | None = None
        self.tokens = 0

    def apply(self, event: Mapping[str, Any]) -> bool:
        """Take a progress event or a token; returns whether the text to show changed."""
        if not is_token(event):
            self._text.progress(event)
            return False
        token = Token.of_event(event)
        self.tokens += 1
        self._last = token
        return bool(self._text.add(token))

    @property
    def writing(self) -> Writing:
        last = self._last
        if last is None:
            return Writing()
        return Writing(
            self._text.answer, last.task_id, last.agent, self._text.task_text(last.task_id)
        )
