"""Token streaming over OpenAI's wire protocol: `langchain-openai` streaming from the scripted
server's SSE stream (tests/fake_openai), through podium to `stream_mode="messages"` and to
the CLI, with the usage the stream reports at its end (`stream_options.include_usage`), and
streams cut mid-answer retried or reported, never kept as a truncated answer."""

from __future__ import annotations

import io
import time

import pytest

import podium
from podium import AgentSpec, Plan
from podium.cli import main
from podium.streaming import TASK_KEY
from tests.fake_openai import Cut, FakeOpenAI, Reply, chat

ANSWER = "Heat pumps sold half again as many units in three years, and storage grew fourfold."
USAGE = {"prompt": 40, "completion": 17, "cached": 8}
#: gpt-4o-mini per 1M tokens: 0.15 input, 0.075 cached input, 0.60 output.
COST = (32 * 0.15 + 8 * 0.075 + 17 * 0.60) / 1_000_000


def wire_workflow(model=None):
    """One writer task on `model` (the CLI passes PODIUM_MODEL's string)."""
    return podium.build_workflow(
        [AgentSpec(name="writer", description="writes briefs")],
        name="wire",
        supervisor=Plan.chain(("writer", "Write the brief.")),
        model=model,
    )


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


def test_the_answer_streams_token_by_token_with_the_usage_the_stream_reports(
    openai_server, tmp_path
):
    fake = openai_server(
        {"gpt-4o-mini": [Reply(ANSWER, usage=USAGE)]},
        token_delay=0.01,
    )
    model = chat(fake, streaming=True, stream_usage=True)
    with podium.open_runtime(f"sqlite:///{tmp_path / 'w.db'}") as rt:
        app = rt.compile(wire_workflow(model))
        config = {"configurable": {"thread_id": "w"}}
        pieces = [
            (time.monotonic(), chunk.text)
            for _ns, (chunk, meta) in app.stream(
                {"goal": "heat pumps"}, config, stream_mode="messages", subgraphs=True
            )
            if meta.get(TASK_KEY) == "t1"
        ]
        values = app.get_state(config).values
        [row] = rt.services.ledger.for_thread("w", "default")
    [request] = fake.requests["gpt-4o-mini"]
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}
    text = [t for _, t in pieces if t]
    assert len(text) == len(ANSWER.split())  # one piece per streamed delta, in order
    assert "".join(text) == ANSWER == values["answer"]
    # The pieces arrived as the server sent them, not all at the end.
    assert pieces[0][0] < fake.sent["gpt-4o-mini"][-1]
    usage = values["usage"]["writer"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (40, 17)
    assert usage["cost_usd"] == pytest.approx(COST)
    assert (row.input_tokens, row.output_tokens, row.cached_tokens) == (40, 17, 8)
    assert row.cost_usd == pytest.approx(COST)


@pytest.fixture
def cli_on_the_wire(monkeypatch, tmp_path, models_from_env):
    """`podium run wire ...` with PODIUM_MODEL=openai:gpt-4o-mini on the given fake server,
    stdout and stderr a terminal that records when each piece was written."""

    def run(fake: FakeOpenAI, *args: str) -> tuple[int, list, Stamped, Stamped]:
        monkeypatch.setenv("PODIUM_MODEL", "openai:gpt-4o-mini")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("PODIUM_WORKFLOWS", f"wire={__name__}:wire_workflow")
        monkeypatch.setenv("PODIUM_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
        log: list = []
        out, err = Stamped(log), Stamped(log)
        monkeypatch.setattr("sys.stdout", out)
        monkeypatch.setattr("sys.stderr", err)
        code = main(["run", "wire", "heat pumps", *args])
        monkeypatch.undo()
        return code, log, out, err

    return run


def test_the_cli_prints_a_real_clients_tokens_as_they_arrive(openai_server, cli_on_the_wire):
    fake = openai_server({"gpt-4o-mini": [Reply(ANSWER, usage=USAGE)]}, token_delay=0.03)
    code, log, out, err = cli_on_the_wire(fake, "--thread", "cli-1")
    assert code == 0, err.getvalue()
    # podium made the model from the string and asked for the stream's usage itself.
    [request] = fake.requests["gpt-4o-mini"]
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}
    words = [(t, s) for t, where, s in log if where is out and s.strip() and s in ANSWER]
    assert len(words) >= len(ANSWER.split()) - 1
    # The first word was on the terminal before the server sent the last one.
    assert words[0][0] < fake.sent["gpt-4o-mini"][-1]
    text = out.getvalue()
    assert text.count(ANSWER) == 1
    [writer] = [line.split() for line in text.splitlines() if line.startswith("writer ")]
    assert writer[1:4] == ["1", "40", "17"]  # calls, input, output: from the stream's usage


def test_the_cli_shows_a_stream_cut_mid_answer_and_its_retry(openai_server, cli_on_the_wire):
    fake = openai_server(
        {"gpt-4o-mini": [Cut("Heat pumps sold"), Reply(ANSWER, usage=USAGE)]},
    )
    code, log, out, err = cli_on_the_wire(fake, "--thread", "cli-2")
    assert code == 0, err.getvalue()
    (retry,) = [s for _, where, s in log if where is err and "retry" in s]
    assert "t1 writer: model:gpt-4o-mini failed (" in retry and "try 2 in" in retry
    # The cut draft, then the retry's line, then the whole answer streamed again.
    cut = next(t for t, where, s in log if where is out and s == "Heat")
    said = next(t for t, where, s in log if where is err and "retry" in s)
    whole = [t for t, where, s in log if where is out and s.strip() == "fourfold."]
    assert cut < said < whole[-1]
    text = out.getvalue()
    assert text.count(ANSWER) == 1
    [writer] = [line.split() for line in text.splitlines() if line.startswith("writer ")]
    assert writer[1:4] == ["1", "40", "17"]  # the cut stream reported no usage: one call billed


def test_streams_cut_on_every_try_fail_the_task_instead_of_keeping_a_truncated_answer(
    openai_server, tmp_path
):
    fake = openai_server({"gpt-4o-mini": [Cut("Heat pumps sold")] * 3})
    waits: list[float] = []
    with podium.open_runtime("memory://", sleep=waits.append) as rt:
        app = rt.compile(wire_workflow(chat(fake, streaming=True, stream_usage=True)))
        config = {"configurable": {"thread_id": "cut"}}
        events = [
            data
            for _ns, mode, data in app.stream(
                {"goal": "heat pumps"}, config, stream_mode=["custom", "messages"], subgraphs=True
            )
            if mode == "custom"
        ]
        values = app.get_state(config).values
    assert len(waits) == 2  # the first try and the policy's two retries
    assert [e["attempt"] for e in events if e["event"] == "retry"] == [1, 2]
    assert values["status"] == "failed"
    assert "t1" not in (values.get("results") or {})
    assert values["answer"].startswith("Not completed:") and "Heat pumps" not in values["answer"]
    task = values["tasks"]["t1"]
    assert task["status"] == "dead_lettered"
    # The SDK says "Connection error."; its cause says what happened.
    assert "peer closed connection without sending complete message body" in task["error"]
