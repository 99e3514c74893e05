"""Token streaming (podium/streaming.py): the answer's tokens reach the CLI before the run
ends, through the governed model path, with usage, budgets and recorded replies intact."""

from __future__ import annotations

import datetime as dt
import io
import time

import pytest
from langchain_core.messages import HumanMessage

import podium
from podium.commands._runner import execute
from podium.streaming import STREAM_MODES, AnswerText, Token, parts
from podium.testing import ScriptExhausted, StreamingChatModel

ANSWER = "Heat pumps sold half again as many units in three years, and storage grew fourfold."
CTX = podium.RunContext(tenant_id="acme", user_id="ana")
BUDGET = """
global:
  budgets:
    per_run: {tokens: 100000}
    per_day: {tokens: 1000000}
"""


def two_step(writer_delay: float = 0.3, policies=None):
    """researcher -> writer; the writer streams its answer after `writer_delay`."""
    researcher = StreamingChatModel(responses=["Sales rose; storage grew."], name="researcher")
    writer = StreamingChatModel(
        responses=[ANSWER], name="writer", first_token_delay=writer_delay, token_delay=0.02
    )
    graph = podium.build_workflow(
        [
            podium.AgentSpec(name="researcher", model=researcher),
            podium.AgentSpec(name="writer", model=writer),
        ],
        name="brief",
        supervisor=podium.Plan(
            tasks=[
                podium.PlannedTask(id="t1", agent="researcher", instruction="find"),
                podium.PlannedTask(id="t2", agent="writer", instruction="write", depends_on=["t1"]),
            ]
        ),
        policies=policies,
    )
    return graph, researcher, writer


class Stamped(io.StringIO):
    """A terminal-like stream that remembers when each piece was written."""

    def __init__(self, log: list) -> None:
        super().__init__()
        self.log = log

    def write(self, text: str) -> int:
        self.log.append((time.monotonic(), self, text))
        return super().write(text)

    def isatty(self) -> bool:
        return True


def test_the_cli_prints_the_answer_token_by_token_before_the_run_ends(monkeypatch) -> None:
    graph, researcher, writer = two_step()
    log: list = []
    out, err = Stamped(log), Stamped(log)
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        code = execute(rt, app, {"goal": "brief"}, "th-1", CTX)
    assert code == 0
    assert writer.streamed == 1 and researcher.streamed == 1
    researcher.assert_consumed()
    writer.assert_consumed()
    tokens = [(t, s) for t, where, s in log if where is out and s.strip() and s in ANSWER]
    finished = next(t for t, where, s in log if where is err and "run completed" in s)
    table = next(t for t, where, s in log if where is out and s.startswith("task"))
    # Many pieces, the first one well before the run ended (the writer takes ~0.6 s).
    assert len(tokens) >= len(ANSWER.split()) - 1
    assert tokens[0][0] < tokens[-1][0] < finished < table
    assert tokens[-1][0] - tokens[0][0] > 0.2
    # The researcher's text feeds the writer: it is not printed as the answer.
    text = out.getvalue()
    assert "Sales rose" not in text
    # The answer was printed once, as it streamed; the report did not repeat it.
    assert text.count(ANSWER) == 1
    assert text.index(ANSWER) < text.index("task ")


def test_output_off_a_terminal_stays_as_it_was(capsys) -> None:
    graph, _, _ = two_step(writer_delay=0.0)
    with podium.open_runtime("memory://") as rt:
        code = execute(rt, rt.compile(graph), {"goal": "brief"}, "th-2", CTX)
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(ANSWER + "\n\n" + "task ")
    assert out.count(ANSWER) == 1


def test_streamed_calls_are_billed_budgeted_and_recorded_like_whole_ones(tmp_path) -> None:
    policy = tmp_path / "budget.yaml"
    policy.write_text(BUDGET)
    results = {}
    for mode in ("whole", "streamed"):
        graph, _researcher, writer = two_step(writer_delay=0.0, policies=policy)
        with podium.open_runtime(f"sqlite:///{tmp_path / mode}.db") as rt:
            app = rt.compile(graph)
            config = {"configurable": {"thread_id": "th"}}
            if mode == "whole":
                app.invoke({"goal": "brief"}, config, context=CTX)
            else:
                list(app.stream({"goal": "brief"}, config, context=CTX, **_modes()))
            values = app.get_state(config).values
            ledger = rt.services.ledger.for_thread("th", "acme")
            audit = rt.services.audit.timeline("th", "acme")
            day = f"tenant_day:{dt.datetime.now(dt.UTC).date().isoformat()}"
            settled = rt.services.budgets.spent("acme", day, "tokens")
        total = sum(u["total_tokens"] for u in values["usage"].values())
        assert settled == total  # the budget settled what the calls used, no more
        results[mode] = (
            values["answer"],
            values["usage"],
            sorted((r.key, r.calls, r.input_tokens, r.output_tokens) for r in ledger),
            sorted(e.kind for e in audit),
            settled,
        )
        assert writer.streamed == (1 if mode == "streamed" else 0)
    assert results["whole"] == results["streamed"]
    assert results["streamed"][0] == ANSWER
    assert results["streamed"][1]["writer"]["output_tokens"] > 0


def test_the_sink_tasks_tokens_add_up_to_the_stored_answer(tmp_path) -> None:
    graph, _researcher, _writer = two_step(writer_delay=0.0)
    with podium.open_runtime(f"sqlite:///{tmp_path / 'r.db'}") as rt:
        app = rt.compile(graph)
        config = {"configurable": {"thread_id": "th"}}
        items = list(parts(app.stream({"goal": "brief"}, config, context=CTX, **_modes())))
    streamed = "".join(d.text for k, d in items if k == "token" and d.task_id == "t2")
    assert streamed == ANSWER


def test_the_streaming_model_fails_loudly_when_over_or_under_used() -> None:
    model = StreamingChatModel(responses=["one", "two"], name="w")
    assert [c.content for c in model.stream([HumanMessage("hi")])] == ["one"]
    with pytest.raises(AssertionError, match="1 unused"):
        model.assert_consumed()
    model.invoke([HumanMessage("again")])
    with pytest.raises(ScriptExhausted, match="'w' called 3 times"):
        list(model.stream([HumanMessage("more")]))


def test_the_answer_is_the_sink_tasks_latest_reply() -> None:
    text = AnswerText()
    text.progress({"event": "plan", "tasks": [{"id": "t1", "depends_on": []}]})
    assert text.add(Token("t1", "r", "m1", "Draft ")) == "Draft "
    assert text.answer == "Draft "
    # The router adds t2 after t1: t1 feeds it now, t2 is the answer.
    text.progress({"event": "plan", "tasks": [{"id": "t2", "depends_on": ["t1"]}]})
    text.add(Token("t2", "w", "m2", "Final"))
    text.add(Token("t2", "w", "m2", " text"))
    assert text.answer == "Final text" and text.task_text("t1") == "Draft "
    # A whole reply with the same id adds only what was not streamed.
    assert text.add(Token("t2", "w", "m2", "Final text.", whole=True)) == "."
    # A later reply of the same task supersedes the earlier one.
    text.add(Token("t2", "w", "m3", "Second"))
    assert text.answer == "Second"


def _modes() -> dict:
    return {"stream_mode": STREAM_MODES, "subgraphs": True}
