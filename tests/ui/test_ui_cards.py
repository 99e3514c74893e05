"""podium.ui.cards: what a pending gate shows and which decision a click or an edit makes."""

from __future__ import annotations

import pytest

from podium.gates.decision import PendingGate
from podium.gates.request import GateRequest
from podium.ui import EditError, decision_for, gate_card


def _pending(kind: str, note: str | None = None, **fields) -> PendingGate:
    request = GateRequest(
        gate_id="g-1",
        kind=kind,
        workflow="research_brief",
        agent="writer",
        rule="tools.publish_report.requires_approval",
        roles=["editor"],
        requested_at=0.0,
        **fields,
    )
    return PendingGate("i-1", request, note)


TOOL = _pending(
    "tool",
    tool="publish_report",
    args={"filename": "brief.md", "content": "# Brief\n\ntext", "copies": 2},
)
PLAN = _pending("plan", plan=[{"id": "t1", "agent": "writer", "instruction": "w"}])
ANSWER = _pending("answer", answer="The answer.")
QUESTION = _pending("question", question="Which region?", note="invalid decision: x")


def test_tool_card_shows_the_call_argument_by_argument():
    card = gate_card(TOOL)
    assert card.title == "writer wants to call publish_report"
    assert card.verbs == ("approve", "edit", "reject")
    assert card.fields == (
        ("filename", "brief.md", "text"),
        ("content", "# Brief\n\ntext", "markdown"),
        ("copies", "2", "json"),
    )
    assert '"filename": "brief.md"' in card.editable
    assert card.roles == ("editor",)


@pytest.mark.parametrize(
    ("pending", "title", "fmt", "editable", "verbs"),
    [
        (PLAN, "the supervisor proposes a plan of 1 task", "json", True, "approve edit reject"),
        (ANSWER, "the final answer is ready for review", "markdown", True, "approve edit reject"),
        (QUESTION, "writer asks a question", "markdown", False, "respond reject"),
    ],
)
def test_other_kinds(pending, title, fmt, editable, verbs):
    card = gate_card(pending)
    assert (card.title, card.body_format, card.editable is not None) == (title, fmt, editable)
    assert card.verbs == tuple(verbs.split())
    assert card.fields == ()


def test_the_note_of_a_refused_decision_is_kept():
    assert gate_card(QUESTION).note == "invalid decision: x"


@pytest.mark.parametrize(
    ("roles", "allowed"),
    [(["editor"], True), (["editor", "admin"], True), (["admin"], False), ([], False)],
)
def test_who_may_decide(roles, allowed):
    assert gate_card(TOOL).allows(roles) is allowed


def test_approve_and_reject_carry_the_comment():
    card = gate_card(TOOL)
    assert decision_for(card, "approve").decision == "approve"
    reject = decision_for(card, "reject", comment="  not today ")
    assert (reject.decision, reject.comment) == ("reject", "not today")


def test_edit_of_tool_arguments_parses_json():
    decision = decision_for(gate_card(TOOL), "edit", text='{"filename": "x.md", "content": "c"}')
    assert decision.args == {"filename": "x.md", "content": "c"}


@pytest.mark.parametrize(
    ("pending", "text", "message"),
    [
        (TOOL, '{"filename": "x.md",', "the edited arguments are not valid JSON"),
        (TOOL, "[1, 2]", "must be a JSON object"),
        (PLAN, '{"id": "t1"}', "must be a JSON list of task objects"),
        (PLAN, "not json", "the edited plan is not valid JSON"),
        (ANSWER, "   ", "the edited answer is empty"),
        (QUESTION, "", "write an answer"),
    ],
)
def test_bad_edits_raise_a_readable_error(pending, text, message):
    card = gate_card(pending)
    verb = "respond" if pending is QUESTION else "edit"
    with pytest.raises(EditError, match=message):
        decision_for(card, verb, text=text)


def test_json_errors_say_where():
    with pytest.raises(EditError, match=r"line 1, column 21; fix the text and submit again"):
        decision_for(gate_card(TOOL), "edit", text='{"filename": "x.md",')


def test_edits_of_plans_and_answers_and_responses():
    plan = decision_for(gate_card(PLAN), "edit", text='[{"id": "t1", "agent": "writer"}]')
    assert plan.plan == [{"id": "t1", "agent": "writer"}]
    assert decision_for(gate_card(ANSWER), "edit", text="Better.").answer == "Better."
    assert decision_for(gate_card(QUESTION), "respond", text=" North ").response == "North"


def test_a_verb_the_gate_does_not_take_is_refused():
    with pytest.raises(EditError, match="a question gate takes respond, reject; got 'approve'"):
        decision_for(gate_card(QUESTION), "approve")
