"""podium.ui.view and podium.ui.insight: conversation, thread list, costs, audit, links."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from podium.stores.audit.log import Actor, ChainReport, Head, Problem, StoredEvent, VerifyReport
from podium.stores.ledger import CostRow
from podium.stores.threads import ThreadInfo
from podium.ui import (
    ChatLine,
    chain_status,
    chat_lines,
    cost_chart,
    cost_table,
    mermaid_block,
    summarize,
    thread_entries,
    thread_view,
    timeline_rows,
    trace_link,
)


def test_chat_lines_keep_what_people_read():
    messages = [
        HumanMessage("Write a brief"),
        AIMessage("", tool_calls=[{"name": "t", "args": {}, "id": "c1"}]),
        ToolMessage("result", tool_call_id="c1"),
        AIMessage("# Brief\n\ntext"),
        HumanMessage("shorter"),
    ]
    assert chat_lines(messages) == [
        ChatLine("user", "Write a brief"),
        ChatLine("assistant", "# Brief\n\ntext"),
        ChatLine("user", "shorter"),
    ]


def test_headings_are_made_smaller_for_a_chat_bubble():
    line = ChatLine("assistant", "# Brief\n## Findings\nnot # a heading\n#hashtag")
    assert line.markdown == "### Brief\n#### Findings\nnot # a heading\n#hashtag"


def test_thread_view_of_a_new_thread_is_empty():
    view = thread_view("t", {})
    assert view.messages == () and view.board == () and not view.waiting
    assert view.outcome is None


def test_thread_view_says_how_an_unhappy_run_ended_and_when_it_stalled():
    values = {"status": "partial", "error": "task 't2' failed", "messages": [], "round": 2}
    view = thread_view("t", values, tasks=("a pending task",))
    assert view.outcome == "The run ended partial: task 't2' failed"
    assert view.stalled and view.round == 2
    assert thread_view("t", {"status": "completed"}).outcome is None


def test_thread_entries_label_status_and_age():
    threads = [
        ThreadInfo("t1", "default", "research_brief", "A very long title " * 4, "running", 0, 40),
        ThreadInfo("t2", "default", "research_brief", "", "completed", 0, 100 - 7200),
    ]
    first, second = thread_entries(threads, now=100.0, waiting={"t1"})
    assert first.status == "waiting" and first.age == "1m ago"
    assert first.label.startswith("A very long title A very long title") and "…" in first.label
    assert second.label == "t2 · completed · 2h ago"


def test_threads_whose_titles_read_the_same_are_told_apart_by_their_id():
    goal = "Write a brief on heat pump adoption and grid storage costs"
    threads = [
        ThreadInfo(
            "research_brief-1a2b3c4d", "default", "research_brief", goal, "completed", 0, 90
        ),
        ThreadInfo("research_brief-9f8e7d6c", "default", "research_brief", goal, "running", 0, 80),
        ThreadInfo(
            "research_brief-5e5e5e5e", "default", "research_brief", goal + "?", "failed", 0, 70
        ),
        ThreadInfo("other-thread", "default", "research_brief", "Heat pumps", "completed", 0, 60),
    ]
    entries = thread_entries(threads, now=100.0)
    labels = [e.label for e in entries]
    assert len(set(labels)) == 4, labels
    assert labels[0] == "Write a brief on heat pump adoption and g… #1a2b3c4d · completed · 10s ago"
    assert "#9f8e7d6c" in labels[1] and "#5e5e5e5e" in labels[2]  # same text up to the cut
    assert labels[3] == "Heat pumps · completed · 40s ago"  # unique titles carry no tag


ROWS = [
    CostRow("writer", 2, 800, 600, 0, 1400, 0.002),
    CostRow("researcher", 4, 500, 300, 0, 800, 0.001),
]


def test_costs_for_the_chart_and_the_table():
    assert cost_chart(ROWS) == {
        "agent": ["writer", "researcher"],
        "input tokens": [800, 500],
        "output tokens": [600, 300],
    }
    table = cost_table(ROWS)
    assert table[-1] == {
        "agent": "total",
        "calls": 6,
        "input tokens": 1300,
        "output tokens": 900,
        "total tokens": 2200,
        "cost (USD)": 0.003,
    }
    assert cost_table([]) == []


def _event(seq: int, kind: str, payload: dict) -> StoredEvent:
    return StoredEvent(
        "default", seq, 1_700_000_000.25, kind, Actor("agent", "writer"), payload,
        "w", "t", None, "t1", None, "prev", "hash", "sha256",
    )  # fmt: skip


def test_timeline_rows_summarize_payloads():
    events = [
        _event(1, "transition", {"from": "queued", "to": "running", "extra": 1}),
        _event(2, "custom.kind", {"a": 1, "b": "x" * 80}),
    ]
    rows = timeline_rows(events)
    assert rows[0]["summary"] == "from=queued to=running"
    assert rows[0]["actor"] == "agent:writer" and rows[0]["task"] == "t1"
    assert rows[0]["time"].endswith(".250")
    assert rows[1]["summary"].startswith("a=1 b=xxx") and rows[1]["summary"].endswith("…")
    assert timeline_rows(events, limit=1) == rows[1:]
    assert len(summarize({"reason": "r" * 300, "error": "e" * 300}, width=50)) == 50


def test_chain_status_sentences():
    good = VerifyReport((ChainReport("default", 28, Head("default", 28, "abcdef" * 10)),))
    assert chain_status(good, "default").ok
    assert "intact: 28 events" in chain_status(good, "default").text
    bad = VerifyReport(
        (ChainReport("default", 3, Head("default", 3, "x"), Problem(4, "edited", "row 4")),)
    )
    status = chain_status(bad, "default")
    assert not status.ok and status.text.startswith("audit chain broken at seq 4 (edited)")
    assert "no audit events yet" in chain_status(VerifyReport(()), "acme").text


def test_mermaid_block():
    assert mermaid_block("graph TD;\n a-->b\n") == "```mermaid\ngraph TD;\n a-->b\n```"
    assert mermaid_block("s([<p>__start__</p>])") == "```mermaid\ns([__start__])\n```"


def test_trace_links():
    host = "https://lf.example/"
    assert trace_link(None, thread_id="t") is None
    assert trace_link(host, thread_id="t", trace_id="abc") == "https://lf.example/trace/abc"
    assert (
        trace_link(host, thread_id="t 1", project_id="p")
        == "https://lf.example/project/p/sessions/t%201"
    )
    assert trace_link(host, thread_id="t") == "https://lf.example"
