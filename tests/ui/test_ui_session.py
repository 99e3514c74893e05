"""podium.ui.session and podium.ui.settings: page state on a plain dict, settings from env."""

from __future__ import annotations

import pytest

from podium.gates.decision import PendingGate
from podium.gates.request import GateRequest
from podium.ui import (
    AppConfig,
    ChatSession,
    Continue,
    Decide,
    Send,
    UserSettings,
    choose_workflow,
    config_from_env,
    gate_card,
    new_thread_id,
    session_of,
)


def test_session_lives_in_the_mapping_it_is_given():
    state: dict = {}
    session = session_of(state)
    assert session_of(state) is session
    state["podium.chat"] = "something else"
    assert isinstance(session_of(state), ChatSession)


def test_actions_are_taken_once():
    session = ChatSession()
    assert not session.queue_send("   ")
    assert session.queue_send("  a goal ")
    assert session.take_action() == Send("a goal")
    assert session.take_action() is None
    session.queue(Continue())
    assert session.take_action() == Continue()


def test_threads_open_close_and_follow_the_tenant():
    session = ChatSession()
    thread = session.ensure_thread("research_brief", "acme")
    assert thread.startswith("research_brief-") and session.ensure_thread("x", "acme") == thread
    session.follow_tenant("acme")
    assert session.thread_id == thread
    session.follow_tenant("globex")
    assert session.thread_id is None
    assert [n.text for n in session.take_notices()] == [
        "switched to tenant 'globex': started a new chat"
    ]
    assert session.take_notices() == []
    session.open_thread("t-1", "research_brief", "acme")
    assert (session.thread_id, session.workflow, session.tenant_id) == (
        "t-1",
        "research_brief",
        "acme",
    )
    session.new_chat()
    assert session.thread_id is None and session.workflow is None


def test_new_thread_ids_are_unique_and_named_after_the_workflow():
    ids = {new_thread_id("w") for _ in range(50)}
    assert len(ids) == 50 and all(i.startswith("w-") for i in ids)


def _card():
    request = GateRequest(
        gate_id="g-1",
        kind="tool",
        workflow="w",
        tool="publish_report",
        args={"filename": "a.md"},
        requested_at=0.0,
    )
    return gate_card(PendingGate("i-1", request))


def test_a_bad_edit_is_kept_for_the_card_and_queues_nothing():
    session = ChatSession()
    card = _card()
    session.toggle_edit("g-1")
    assert not session.queue_decision(card, "edit", text="{oops")
    assert "not valid JSON" in session.edit_errors["g-1"]
    assert session.action is None
    assert session.queue_decision(card, "edit", text='{"filename": "b.md"}')
    assert "g-1" not in session.edit_errors
    action = session.take_action()
    assert isinstance(action, Decide) and action.decision.args == {"filename": "b.md"}
    session.decided("g-1")
    assert "g-1" not in session.editing


def test_toggle_edit():
    session = ChatSession()
    session.toggle_edit("g")
    assert session.editing == {"g"}
    session.toggle_edit("g")
    assert session.editing == set()


def test_config_from_env_defaults_and_values():
    assert config_from_env({}) == AppConfig()
    config = config_from_env(
        {
            "PODIUM_DATABASE_URL": "postgresql://ana:s3cret@db:5432/podium",
            "PODIUM_MODEL": " openai:gpt-4o-mini ",
            "PODIUM_WORKFLOWS": "x=m:f",
            "PODIUM_AUDIT_KEY": "k",
            "LANGFUSE_HOST": "https://lf.example",
            "LANGFUSE_PUBLIC_KEY": "pk",
        }
    )
    assert config.model == "openai:gpt-4o-mini" and config.workflows == "x=m:f"
    assert config.masked_url == "postgresql://ana:***@db:5432/podium"
    assert config.audit_key == b"k" and config.tracing
    assert "s3cret" not in repr(config) and "k'" not in repr(config)
    assert config.cache_key != AppConfig().cache_key


def test_server_settings_are_read_and_their_secrets_never_shown():
    embedded = config_from_env({})
    assert not embedded.remote and embedded.masked_server_url is None
    config = config_from_env(
        {
            "PODIUM_SERVER_URL": "https://ops:pw@lg.example:8123",
            "PODIUM_API_KEY": "key-123",
            "PODIUM_SERVER_TOKEN": "tok-456",
        }
    )
    assert config.remote and config.masked_server_url == "https://ops:***@lg.example:8123"
    assert (config.server_key, config.server_token) == ("key-123", "tok-456")
    for secret in ("pw", "key-123", "tok-456"):
        assert secret not in repr(config)
    keyed = config_from_env({"PODIUM_SERVER_URL": "http://x", "PODIUM_API_KEY": "other"})
    assert keyed.cache_key != config_from_env({"PODIUM_SERVER_URL": "http://x"}).cache_key


def test_user_settings_fall_back_and_make_the_run_context():
    settings = UserSettings.of(" ", "", ["editor", "admin", "editor"], " ", default_model="demo")
    assert settings == UserSettings("default", "you", ("admin", "editor"), "demo")
    ctx = settings.context
    assert (ctx.tenant_id, ctx.user_id, ctx.roles) == ("default", "you", {"admin", "editor"})


@pytest.mark.parametrize(
    ("requested", "known", "expected", "error"),
    [
        (None, ["a", "research_brief"], "research_brief", None),
        ("a", ["a", "research_brief"], "a", None),
        ("nope", ["a"], "a", "unknown workflow 'nope'; known workflows: a"),
        (None, [], None, None),
    ],
)
def test_choose_workflow(requested, known, expected, error):
    name, problem = choose_workflow(requested, known)
    assert name == expected
    assert (problem or "").startswith(error or "")
    assert (problem is None) is (error is None)
