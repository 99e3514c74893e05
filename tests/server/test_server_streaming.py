"""Token streaming on a real LangGraph dev server: `RemoteWorkbench` streams
["custom", "messages-tuple"] with subgraphs and hands the page tokens and progress events."""

from __future__ import annotations

from podium.graphs.research_brief import DEMO_GOAL
from podium.streaming import AnswerText, Token
from podium.ui import decision_for, is_token
from podium.ui.remote import RemoteWorkbench
from podium.ui.settings import AppConfig

ACME_EDITOR = "acme-editor-key"


def test_the_server_streams_the_answer_and_every_progress_event(server) -> None:
    ana = RemoteWorkbench(AppConfig(server_url=server.url, server_key=ACME_EDITOR))
    thread_id = ana.new_thread_id("research_brief")
    before: list[dict] = []
    outcome = ana.send(
        "research_brief", thread_id, DEMO_GOAL, ana.identity.context, on_event=before.append
    )
    assert (outcome.error, outcome.waiting) == (None, True)
    progress = [e["event"] for e in before if not is_token(e)]
    assert progress[0] == "plan" and progress[-1] == "gate_raised"
    assert progress.count("task_finished") == 3
    # The researchers' and the analyst's replies streamed, tagged with their tasks.
    streamed = {e["task_id"] for e in before if is_token(e) and e["text"]}
    assert {"t1", "t2", "t3"} <= streamed

    (card,) = ana.view("research_brief", thread_id).cards
    after: list[dict] = []
    outcome = ana.decide(
        "research_brief",
        thread_id,
        card.gate_id,
        decision_for(card, "approve"),
        ana.identity.context,
        on_event=after.append,
    )
    assert (outcome.error, outcome.status) == (None, "completed")
    kinds = [e["event"] for e in after]
    assert kinds[-1] == "run_finished" and "task_finished" in kinds
    writer = [i for i, e in enumerate(after) if is_token(e) and e["task_id"] == "t4"]
    assert len(writer) > 10  # token by token, not one piece
    assert max(writer) < kinds.index("run_finished")
    text = AnswerText()
    for event in before + after:
        if is_token(event):
            text.add(Token.of_event(event))
        else:
            text.progress(event)
    answer = ana.view("research_brief", thread_id).messages[-1].text
    assert text.answer == answer and answer.startswith("# Brief")
