"""The app's streamed answer (podium/ui/live.py), fed by the embedded workbench."""

from __future__ import annotations

import itertools

import pytest

import podium
from podium.testing import StreamingChatModel
from podium.ui import LiveAnswer, is_token
from podium.ui.settings import AppConfig
from podium.ui.workbench import Workbench

ANSWER = "Storage grew fourfold while heat pump sales rose by half."


def streaming_brief(model=None):
    """researcher -> writer on streaming fakes (a new pair for every compile)."""
    researcher = StreamingChatModel(responses=["Findings: storage, heat pumps."], name="r")
    writer = StreamingChatModel(responses=[ANSWER], name="w", first_token_delay=0.05)
    return podium.build_workflow(
        [
            podium.AgentSpec(name="researcher", model=researcher),
            podium.AgentSpec(name="writer", model=writer),
        ],
        name="streaming_brief",
        supervisor=podium.Plan(
            tasks=[
                podium.PlannedTask(id="t1", agent="researcher", instruction="find"),
                podium.PlannedTask(id="t2", agent="writer", instruction="write", depends_on=["t1"]),
            ]
        ),
    )


@pytest.fixture
def bench(tmp_path):
    workbench = Workbench(
        AppConfig(
            database_url=f"sqlite:///{tmp_path / 'podium.db'}",
            workflows=f"streaming_brief={__name__}:streaming_brief",
        )
    )
    yield workbench
    workbench.close()


def test_the_workbench_hands_tokens_and_progress_events_in_order(bench) -> None:
    events: list[dict] = []
    live = LiveAnswer()
    shown: list[str] = []

    def on_event(event):
        events.append(dict(event))
        if live.apply(event):
            shown.append(live.writing.markdown)

    ctx = podium.RunContext(tenant_id="acme", user_id="ana")
    outcome = bench.send("streaming_brief", "th-1", "brief", ctx, on_event=on_event)
    assert (outcome.error, outcome.status) == (None, "completed")
    kinds = [e["event"] for e in events]
    # Every progress event still arrives, in order, with the tokens between them.
    progress = [k for k in kinds if k != "token"]
    assert progress == [
        "plan",
        "task_started",
        "task_finished",
        "task_started",
        "task_finished",
        "run_finished",
    ]
    writer_tokens = [e for e in events if is_token(e) and e["task_id"] == "t2"]
    assert len(writer_tokens) >= len(ANSWER.split())
    assert kinds.index("token") < kinds.index("run_finished")
    last_writer_token = max(i for i, e in enumerate(events) if e in writer_tokens)
    assert last_writer_token < kinds.index("run_finished")
    # The page first shows the researcher at work, then the answer growing to the end.
    assert shown[0].startswith("_t1 · researcher is writing…_")
    answers = [s for s in shown if not s.startswith("_")]
    assert answers[0] == ANSWER.split()[0] + " " and answers[-1] == ANSWER
    assert all(b.startswith(a) for a, b in itertools.pairwise(answers))
    assert bench.view("streaming_brief", "th-1").messages[-1].text == ANSWER
