"""app.py under Streamlit's AppTest: chat, approvals, threads and errors on the demo model.

Each test points PODIUM_DATABASE_URL at its own SQLite file before the page script runs.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from podium.graphs.research_brief import DEMO_GOAL

if os.environ.get("CI"):
    from streamlit.testing.v1 import AppTest  # CI installs podium[dev]: never skip there
else:
    AppTest = pytest.importorskip(
        "streamlit.testing.v1", reason="streamlit is not installed (pip install -e '.[dev]')"
    ).AppTest

APP = Path(__file__).resolve().parents[2] / "app.py"
#: Variables the page reads; each test starts from none of them.
APP_ENV = (
    "PODIUM_DATABASE_URL",
    "PODIUM_MODEL",
    "PODIUM_WORKFLOWS",
    "PODIUM_AUDIT_KEY",
    "LANGFUSE_HOST",
    "LANGFUSE_PUBLIC_KEY",
    "LANGFUSE_SECRET_KEY",
    "PODIUM_SERVER_URL",
    "PODIUM_API_KEY",
    "PODIUM_SERVER_TOKEN",
)


@pytest.fixture
def page(tmp_path, monkeypatch):
    """Make a fresh browser session of app.py on this test's database."""
    for name in APP_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PODIUM_DATABASE_URL", f"sqlite:///{tmp_path / 'podium.db'}")

    def make() -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    yield make
    import streamlit as st

    st.cache_resource.clear()  # the next test opens its own database
    gc.collect()


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def chat(at: AppTest) -> list[tuple[str, str]]:
    """(role, text) of every chat bubble on the page."""
    return [(m.name, " ".join(texts(m.markdown))) for m in at.chat_message]


def button(at: AppTest, label: str):
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no {label!r} button; buttons: {[b.label for b in at.button]}"
    return matches[0]


def gate_keys(at: AppTest) -> list[str]:
    return [b.key.removeprefix("approve-") for b in at.button if b.label == "Approve"]


def board(at: AppTest) -> dict[str, str]:
    """task -> status of the task board."""
    frame = next(d.value for d in at.dataframe if "status" in d.value.columns)
    return dict(zip(frame["task"], frame["status"], strict=True))


def thread_of(at: AppTest) -> str:
    """The open thread, from the page's `?thread=` query parameter."""
    value = at.query_params["thread"]
    return value if isinstance(value, str) else value[0]


def send(at: AppTest, text: str) -> AppTest:
    at.chat_input[0].set_value(text).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, texts(at.error)
    return at


def test_goal_gate_card_then_approve_shows_the_answer(page):
    at = page()
    assert "Type a goal below" in " ".join(texts(at.info))
    ok(send(at, DEMO_GOAL))
    cards = [m for m in texts(at.markdown) if m.startswith("**Approval needed:**")]
    assert cards == ["**Approval needed:** writer wants to call publish_report"]
    assert "filename" in texts(at.markdown) or "`filename`" in texts(at.markdown)
    assert board(at) == {"t1": "completed", "t2": "completed", "t3": "completed", "t4": "waiting"}
    assert chat(at) == [("user", DEMO_GOAL)]
    assert at.chat_input[0].disabled  # decide first

    ok(button(at, "Approve").click().run())
    assert not gate_keys(at)
    (user, answer) = chat(at)
    assert user == ("user", DEMO_GOAL)
    assert answer[0] == "assistant" and "Publishing: published reports/" in answer[1]
    assert set(board(at).values()) == {"completed"}
    assert not at.chat_input[0].disabled
    # The insight tabs follow the thread: tokens per agent, the audit chain, the graph.
    assert any("audit chain intact" in s for s in texts(at.success))
    assert any(m.startswith("```mermaid") for m in texts(at.markdown))
    frames = [d.value for d in at.dataframe]
    costs = next(f for f in frames if "cost (USD)" in f.columns)
    assert set(costs["agent"]) == {"supervisor", "researcher", "analyst", "writer", "total"}
    assert any("model_call" in set(f.get("kind", [])) for f in frames)


def test_reject_with_a_comment_is_visible_in_the_answer(page):
    at = ok(send(page(), DEMO_GOAL))
    (gate,) = gate_keys(at)
    at.text_input(key=f"note-{gate}").input("not before Monday")
    ok(at.button(key=f"reject-{gate}").click().run())
    answer = chat(at)[-1]
    assert answer[0] == "assistant"
    assert "Rejected by you: not before Monday. The tool was not run." in answer[1]
    assert not gate_keys(at)


def test_edit_with_bad_json_shows_the_error_then_a_good_edit_publishes(page):
    at = ok(send(page(), DEMO_GOAL))
    (gate,) = gate_keys(at)
    at.button(key=f"edit-{gate}").click().run()
    at.text_area(key=f"edit-text-{gate}").input('{"filename": "edited.md", ').run()
    at.button(key=f"submit-{gate}").click().run()
    assert not at.exception
    assert any("the edited arguments are not valid JSON" in e for e in texts(at.error))
    assert gate_keys(at) == [gate]  # nothing resumed

    good = '{"filename": "edited.md", "content": "# Edited brief"}'
    at.text_area(key=f"edit-text-{gate}").input(good).run()
    ok(at.button(key=f"submit-{gate}").click().run())
    assert "published reports/edited.md" in chat(at)[-1][1]


def test_a_follow_up_starts_a_new_round_on_the_same_thread(page):
    at = ok(send(page(), DEMO_GOAL))
    ok(button(at, "Approve").click().run())
    ok(send(at, "Now only grid storage, please"))
    assert [role for role, _ in chat(at)] == ["user", "assistant", "user"]
    assert len(gate_keys(at)) == 1
    ok(button(at, "Approve").click().run())
    assert [role for role, _ in chat(at)] == ["user", "assistant", "user", "assistant"]
    assert len([b for b in at.button if b.key and b.key.startswith("thread-")]) == 1


def test_reopening_a_thread_from_the_sidebar_restores_conversation_and_board(page):
    first = ok(send(page(), DEMO_GOAL))
    ok(button(first, "Approve").click().run())
    conversation, tasks = chat(first), board(first)

    at = page()  # a new browser session on the same database
    assert chat(at) == []
    (entry,) = [b for b in at.sidebar.button if b.key and b.key.startswith("thread-")]
    assert entry.label.startswith("Write a brief on heat pump") and "completed" in entry.label
    ok(entry.click().run())
    assert chat(at) == conversation
    assert board(at) == tasks

    ok(button(at, "New chat").click().run())
    assert chat(at) == []


def test_a_thread_waiting_at_a_gate_reopens_with_its_card(page):
    ok(send(page(), DEMO_GOAL))
    at = page()
    (entry,) = [b for b in at.sidebar.button if b.key and b.key.startswith("thread-")]
    assert "waiting" in entry.label
    ok(entry.click().run())
    assert len(gate_keys(at)) == 1 and board(at)["t4"] == "waiting"
    ok(button(at, "Approve").click().run())
    assert "Publishing: published" in chat(at)[-1][1]


def test_a_user_without_the_editor_role_cannot_press_the_decision_buttons(page):
    # (A decision by such a user is refused below the page too: test_ui_workbench.)
    at = ok(send(page(), DEMO_GOAL))
    at.multiselect(key="roles").set_value([]).run()
    assert any("cannot decide this gate; it needs one of: editor" in i for i in texts(at.info)), (
        texts(at.info)
    )
    for label in ("Approve", "Edit", "Reject"):
        assert button(at, label).disabled, label
    assert len(gate_keys(at)) == 1
    at.multiselect(key="roles").set_value(["editor"]).run()
    assert not any(button(at, label).disabled for label in ("Approve", "Edit", "Reject"))
    ok(button(at, "Approve").click().run())
    assert "Publishing: published" in chat(at)[-1][1]


def test_a_bad_database_url_is_an_error_message(page, monkeypatch):
    monkeypatch.setenv("PODIUM_DATABASE_URL", "mysql://ana:s3cret@db/podium")
    at = page()
    (error,) = texts(at.error)
    assert error.startswith("podium cannot start: unsupported database URL")
    assert "mysql://ana:***@db/podium" in error and "s3cret" not in error


def test_an_unreachable_database_is_an_error_message(page, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("PODIUM_DATABASE_URL", f"sqlite:///{blocker}/podium.db")
    at = page()
    assert len(at.error) == 1 and at.error[0].value.startswith("podium cannot start:")


def test_an_unknown_workflow_link_is_an_error_message(page):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["workflow"] = "reseach_brief"
    at.run()
    assert not at.exception
    (error,) = texts(at.error)
    # Other tests of the session may register workflows of their own: the list names them too.
    assert error.startswith("unknown workflow 'reseach_brief'; known workflows: ")
    assert "research_brief" in error
    assert at.selectbox(key="workflow").value == "research_brief"


def test_a_broken_workflow_and_a_budget_stop_are_error_messages(page, monkeypatch):
    monkeypatch.setenv(
        "PODIUM_WORKFLOWS",
        "broken=no_such_module:factory,tight_budget=test_ui_workbench:tight_budget",
    )
    at = page()
    at.selectbox(key="workflow").set_value("broken").run()
    send(at, DEMO_GOAL)
    broken = "cannot load workflow factory 'no_such_module:factory'"
    assert any(broken in e for e in texts(at.error))

    at.selectbox(key="workflow").set_value("tight_budget").run()
    send(at, DEMO_GOAL)
    assert any("budget" in e and "300 tokens" in e for e in texts(at.error))


def test_an_unknown_model_is_an_error_message(page):
    at = page()
    at.text_input(key="model").input("nosuch:model").run()
    send(at, DEMO_GOAL)
    assert any(e.startswith("cannot create model 'nosuch:model'") for e in texts(at.error))


def test_the_database_url_is_shown_masked(page, monkeypatch, tmp_path):
    at = page()
    captions = " ".join(texts(at.caption))
    assert f"sqlite:///{tmp_path / 'podium.db'}" in captions


def test_a_thread_link_opens_the_thread(page):
    first = ok(send(page(), DEMO_GOAL))
    thread = thread_of(first)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["thread"] = thread
    ok(at.run())
    assert chat(at) == [("user", DEMO_GOAL)] and len(gate_keys(at)) == 1
    assert f"thread `{thread}`" in " ".join(texts(at.caption))


def test_the_langfuse_link_when_a_host_is_configured(page, monkeypatch):
    monkeypatch.setenv("LANGFUSE_HOST", "https://langfuse.example")
    monkeypatch.setenv("LANGFUSE_PROJECT_ID", "proj-1")
    at = page()
    assert not any("Langfuse" in m for m in texts(at.markdown))  # no thread yet
    ok(send(at, DEMO_GOAL))
    thread = thread_of(at)
    link = f"https://langfuse.example/project/proj-1/sessions/{thread}"
    assert f"[Langfuse trace of this thread]({link})" in texts(at.markdown)


def test_a_thread_of_a_workflow_no_longer_installed_shows_an_error(page, monkeypatch):
    monkeypatch.setenv("PODIUM_WORKFLOWS", "gone=test_ui_workbench:gone")
    at = page()
    at.selectbox(key="workflow").set_value("gone").run()
    ok(send(at, DEMO_GOAL))
    monkeypatch.delenv("PODIUM_WORKFLOWS")
    at = page()
    (entry,) = [b for b in at.sidebar.button if b.key and b.key.startswith("thread-")]
    entry.click().run()
    assert not at.exception
    assert any(e.startswith("unknown workflow 'gone'; known workflows:") for e in texts(at.error))
    assert at.chat_input  # the page is still usable
    ok(button(at, "New chat").click().run())
