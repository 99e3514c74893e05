"""Approval cards: what a pending gate asks, and the decision a click or an edit makes.

`gate_card` turns a `podium.gates.decision.PendingGate` into what the page shows (the tool
and its arguments, the plan, the answer or the question, who may decide). `decision_for`
turns a verb and the text a person typed into a `podium.gates.request.Decision`; an edit whose
JSON does not parse raises `EditError` with a message for the page, and nothing is
resumed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from podium.errors import PodiumError
from podium.gates.request import Decision
from podium.words import count

#: What each gate kind can be answered with, in the order the buttons appear.
VERBS: dict[str, tuple[str, ...]] = {
    "tool": ("approve", "edit", "reject"),
    "plan": ("approve", "edit", "reject"),
    "answer": ("approve", "edit", "reject"),
    "question": ("respond", "reject"),
    "effect": ("done", "retry", "abandon"),
}


class EditError(PodiumError):
    """An edit a person typed that cannot become a decision (bad JSON, wrong shape)."""


@dataclass(frozen=True, slots=True)
class GateCard:
    """A pending gate as the page shows it.

    Attributes:
        title: One line: who wants what ("writer wants to call publish_report").
        body: The tool arguments or plan as pretty JSON, the answer, or the question.
        body_format: "json" or "markdown", how to show `body`.
        editable: What the Edit box starts with (JSON for arguments and plans, text for
            an answer); None when the gate cannot be edited.
        roles: Roles that may decide (empty: anyone).
        note: Why the previous decision did not pass, when the gate was raised again.
        fields: A tool call's arguments one by one, as (name, text, language): text
            arguments as they read, other values as JSON.
    """

    gate_id: str
    kind: str
    title: str
    body: str
    body_format: str
    editable: str | None
    agent: str | None
    tool: str | None
    rule: str
    roles: tuple[str, ...]
    note: str | None = None
    fields: tuple[tuple[str, str, str], ...] = ()

    @property
    def verbs(self) -> tuple[str, ...]:
        return VERBS[self.kind]

    def allows(self, roles: Iterable[str]) -> bool:
        """Whether a user with `roles` may decide (mirrors `podium.gates.request.may_decide`)."""
        return not self.roles or bool(set(self.roles) & set(roles))

    @property
    def edit_label(self) -> str:
        return {
            "tool": "Arguments (JSON object)",
            "plan": "Plan (JSON list of tasks)",
            "answer": "Answer",
        }.get(self.kind, "Edit")


def gate_card(gate: Any) -> GateCard:
    """The card of a `PendingGate`."""
    r = gate.request
    if r.kind == "tool":
        title = f"{r.agent or 'an agent'} wants to call {r.tool}"
        body = _pretty(r.args or {})
        fmt, editable = "json", body
    elif r.kind == "plan":
        title = f"the supervisor proposes a plan of {count(len(r.plan or []), 'task')}"
        body = _pretty(r.plan or [])
        fmt, editable = "json", body
    elif r.kind == "answer":
        title = "the final answer is ready for review"
        body = r.answer or ""
        fmt, editable = "markdown", body
    elif r.kind == "effect":
        title = f"did {r.tool} of {r.agent or 'an agent'} happen? (the ledger cannot confirm it)"
        body = f"{r.question or ''}\n\n```json\n{_pretty(r.args or {})}\n```"
        fmt, editable = "markdown", None
    else:
        title = f"{r.agent or 'an agent'} asks a question"
        body = r.question or ""
        fmt, editable = "markdown", None
    return GateCard(
        gate_id=r.gate_id,
        kind=r.kind,
        title=title,
        body=body,
        body_format=fmt,
        editable=editable,
        agent=r.agent,
        tool=r.tool,
        rule=r.rule,
        roles=tuple(r.roles),
        note=gate.note,
        fields=_fields(r.args) if r.kind == "tool" else (),
    )


def _fields(args: dict[str, Any] | None) -> tuple[tuple[str, str, str], ...]:
    fields = []
    for name, value in (args or {}).items():
        if isinstance(value, str):
            fields.append((name, value, "markdown" if "\n" in value else "text"))
        else:
            fields.append((name, _pretty(value), "json"))
    return tuple(fields)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def decision_for(
    card: GateCard,
    verb: str,
    *,
    comment: str = "",
    text: str | None = None,
    user: str | None = None,
) -> Decision:
    """The decision for `verb` on `card`.

    Args:
        verb: "approve", "reject", "edit" (with `text`) or "respond" (with `text`).
        comment: Kept with the decision; a rejection's comment goes back to the agent.
        text: The edited arguments or plan (JSON) or answer, or the response.
        user: Who decides: None, or the caller (a decision naming anyone else is refused).

    Raises:
        EditError: a verb the gate does not take, JSON that does not parse, or JSON of
            the wrong shape; the message says what to fix.
    """
    if verb not in card.verbs:
        raise EditError(f"a {card.kind} gate takes {', '.join(card.verbs)}; got {verb!r}")
    comment, text = comment.strip(), text or ""
    if verb == "approve":
        return Decision(decision="approve", comment=comment, user=user)
    if verb == "reject":
        return Decision(decision="reject", comment=comment, user=user)
    if verb in ("done", "retry", "abandon"):
        return Decision(decision=verb, comment=comment, user=user)  # type: ignore[arg-type]
    if verb == "respond":
        if not text.strip():
            raise EditError("write an answer to the agent's question before sending it")
        return Decision(decision="respond", response=text.strip(), comment=comment, user=user)
    return _edit(card, text, comment, user)


def _edit(card: GateCard, text: str, comment: str, user: str | None) -> Decision:
    if card.kind == "answer":
        if not text.strip():
            raise EditError("the edited answer is empty; write the answer or approve it as it is")
        return Decision(decision="edit", answer=text, comment=comment, user=user)
    what = "arguments are" if card.kind == "tool" else "plan is"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EditError(
            f"the edited {what} not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}; fix the text and submit again"
        ) from None
    if card.kind == "tool":
        if not isinstance(value, dict):
            raise EditError(
                f'the edited arguments must be a JSON object ({{"name": value, ...}}), '
                f"got {type(value).__name__}"
            )
        return Decision(decision="edit", args=value, comment=comment, user=user)
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise EditError(
            "the edited plan must be a JSON list of task objects "
            '([{"id": "t1", "agent": "...", "instruction": "...", "depends_on": []}, ...])'
        )
    return Decision(decision="edit", plan=value, comment=comment, user=user)
