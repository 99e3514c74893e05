"""The chat app against a real LangGraph dev server, through langgraph-sdk.

`RemoteWorkbench` is what the page uses when PODIUM_SERVER_URL is set; the last tests run
app.py itself under AppTest on the same server. Tenant acme has an editor (ana) and a
user without roles (bob); globex has an editor (gus).
"""

from __future__ import annotations

import collections
import uuid
from typing import Any

import httpx
import pytest

from podium.errors import ThreadNotFound
from podium.graphs.research_brief import DEMO_GOAL
from podium.ui import chain_status, decision_for
from podium.ui.remote import RemoteWorkbench, ServerError
from podium.ui.settings import AppConfig

ACME_EDITOR, ACME_VIEWER, GLOBEX_EDITOR = "acme-editor-key", "acme-viewer-key", "globex-editor-key"


def bench(server, key: str | None) -> RemoteWorkbench:
    return RemoteWorkbench(AppConfig(server_url=server.url, server_key=key))


def to_gate(b: RemoteWorkbench) -> tuple[str, list[dict]]:
    """A new research_brief thread run up to its publish gate; returns its id and events."""
    events: list[dict] = []
    thread_id = b.new_thread_id("research_brief")
    outcome = b.send(
        "research_brief", thread_id, DEMO_GOAL, b.identity.context, on_event=events.append
    )
    assert (outcome.error, outcome.status, outcome.waiting) == (None, "running", True)
    return thread_id, events


def decide_open_gate(b: RemoteWorkbench, thread_id: str, verb: str, **fields: Any):
    """Decide the thread's one pending gate as `b`'s user."""
    (card,) = b.view("research_brief", thread_id).cards
    decision = decision_for(card, verb, **fields)
    return b.decide("research_brief", thread_id, card.gate_id, decision, b.identity.context)


def test_a_thread_runs_to_its_gate_and_completes_on_approval(server) -> None:
    ana = bench(server, ACME_EDITOR)
    assert (ana.identity.tenant_id, ana.identity.user_id, ana.identity.roles) == (
        "acme",
        "ana",
        ("editor",),
    )
    assert "research_brief" in ana.workflows()
    thread_id, events = to_gate(ana)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "plan" and kinds[-1] == "gate_raised"  # from the writer's subgraph
    assert kinds.count("task_finished") == 3

    view = ana.view("research_brief", thread_id)
    (card,) = view.cards
    assert (card.kind, card.tool, card.roles) == ("tool", "publish_report", ("editor",))
    assert {r.task: r.status for r in view.board} == {
        "t1": "completed",
        "t2": "completed",
        "t3": "completed",
        "t4": "waiting",
    }
    assert [m.role for m in view.messages] == ["user"]

    after: list[dict] = []
    approve = decision_for(card, "approve")
    outcome = ana.decide(
        "research_brief",
        thread_id,
        card.gate_id,
        approve,
        ana.identity.context,
        on_event=after.append,
    )
    assert (outcome.error, outcome.status, outcome.waiting) == (None, "completed", False)
    assert after[-1]["event"] == "run_finished"
    view = ana.view("research_brief", thread_id)
    assert [m.role for m in view.messages] == ["user", "assistant"]
    assert view.messages[-1].text.startswith("# Brief")
    assert not view.cards and {r.status for r in view.board} == {"completed"}

    # The same gate decided again (a second tab): refused, nothing resumed.
    again = ana.decide("research_brief", thread_id, card.gate_id, approve, ana.identity.context)
    assert again.error and "not pending any more" in again.error

    # The sidebar's list: the thread with its goal as title and its status.
    (info,) = [t for t in ana.threads("acme", limit=100) if t.thread_id == thread_id]
    assert (info.workflow, info.title, info.status) == ("research_brief", DEMO_GOAL, "completed")
    assert ana.thread_info(thread_id, "acme") == info


def test_costs_audit_and_graph_come_from_the_server(server) -> None:
    ana = bench(server, ACME_EDITOR)
    thread_id, _ = to_gate(ana)
    decide_open_gate(ana, thread_id, "approve")
    usage = ana.client.threads.get_state(thread_id)["values"]["usage"]
    costs = {row.key: row for row in ana.costs(thread_id, "acme")}
    assert set(costs) == set(usage) == {"supervisor", "researcher", "analyst", "writer"}
    for agent, row in costs.items():  # the ledger agrees with the run's own state
        assert (row.calls, row.total_tokens) == (
            usage[agent]["calls"],
            usage[agent]["total_tokens"],
        )

    timeline = ana.timeline(thread_id, "acme")
    seqs = [e.seq for e in timeline]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    kinds = collections.Counter(e.kind for e in timeline)
    assert kinds["model_call"] == sum(u["calls"] for u in usage.values())
    (approval,) = [e for e in timeline if e.kind == "approval"]
    assert (approval.actor, approval.payload["decision"]) == ("user:ana", "approve")
    published = [
        e for e in timeline if e.kind == "tool_call" and e.payload.get("tool") == "publish_report"
    ]
    assert published and published[0].actor == "agent:writer"
    status = chain_status(ana.verify("acme"), "acme")
    assert status.ok and "audit chain intact" in status.text

    mermaid = ana.mermaid("research_brief")
    for node in ("supervisor", "researcher", "analyst", "writer", "aggregate"):
        assert node in mermaid
    assert "-.->" in mermaid  # conditional routes drawn as such


def test_another_tenant_sees_nothing_and_a_user_without_the_role_is_refused(server) -> None:
    ana, bob, gus = (bench(server, k) for k in (ACME_EDITOR, ACME_VIEWER, GLOBEX_EDITOR))
    thread_id, _ = to_gate(ana)
    (card,) = ana.view("research_brief", thread_id).cards

    refused = decide_open_gate(bob, thread_id, "approve")
    assert refused.error and "needs one of: editor" in refused.error
    assert [c.gate_id for c in ana.view("research_brief", thread_id).cards] == [card.gate_id]

    assert thread_id not in {t.thread_id for t in gus.threads("globex", limit=1000)}
    assert thread_id not in gus.waiting_threads("globex")
    assert thread_id in ana.waiting_threads("acme")
    with pytest.raises(ThreadNotFound):
        gus.thread_info(thread_id, "globex")
    assert gus.view("research_brief", thread_id).messages == ()
    assert gus.costs(thread_id, "globex") == [] and gus.timeline(thread_id, "globex") == []
    sent = gus.send("research_brief", thread_id, "take it over", gus.identity.context)
    assert sent.error  # not gus's thread: refused by the server, nothing run
    assert ana.view("research_brief", thread_id).cards  # ana's gate is untouched


def test_a_follow_up_continues_the_same_thread(server) -> None:
    ana = bench(server, ACME_EDITOR)
    thread_id, _ = to_gate(ana)
    decide_open_gate(ana, thread_id, "reject", comment="not yet")
    follow = ana.send(
        "research_brief", thread_id, "Now only grid storage costs", ana.identity.context
    )
    assert follow.error is None
    view = ana.view("research_brief", thread_id)
    assert view.round == 2
    assert [m.text for m in view.messages if m.role == "user"] == [
        DEMO_GOAL,
        "Now only grid storage costs",
    ]


def test_podiums_routes_need_a_credential(server) -> None:
    for path in ("/podium/me", "/podium/audit/verify", "/podium/threads/x/costs"):
        response = httpx.get(f"{server.url}{path}")
        assert response.status_code == 401, path
        assert "missing credential" in response.json()["detail"]
        forged = httpx.get(f"{server.url}{path}", headers={"x-api-key": "forged"})
        assert forged.status_code == 401 and "unknown API key" in forged.json()["detail"]


def test_an_unreachable_server_or_a_refused_credential_is_one_clear_error(server) -> None:
    with pytest.raises(ServerError, match=r"unreachable .*start it .*PODIUM_SERVER_URL"):
        RemoteWorkbench(AppConfig(server_url="http://127.0.0.1:9", server_key=ACME_EDITOR))
    with pytest.raises(ServerError, match=r"refused the credential.*unknown API key"):
        bench(server, "not-a-key")
    with pytest.raises(ServerError, match=r"refused the credential.*missing credential"):
        bench(server, None)
    with pytest.raises(ServerError, match="PODIUM_SERVER_URL"):
        RemoteWorkbench(AppConfig())


# -- app.py on the server -----------------------------------------------------------------


@pytest.fixture
def remote_page(server, monkeypatch):
    """A fresh browser session of app.py on the server, as the user `key` names."""
    from tests.ui.test_ui_app import APP, APP_ENV, AppTest

    for name in APP_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PODIUM_SERVER_URL", server.url)

    def make(key: str, *, thread: str | None = None) -> Any:
        monkeypatch.setenv("PODIUM_API_KEY", key)
        at = AppTest.from_file(str(APP), default_timeout=60)
        if thread:
            at.query_params["thread"] = thread
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    yield make
    import streamlit as st

    st.cache_resource.clear()


def test_the_app_runs_a_goal_through_its_gate_on_the_server(server, remote_page) -> None:
    from tests.ui.test_ui_app import board, button, chat, gate_keys, ok, send, texts, thread_of

    at = ok(remote_page(ACME_EDITOR))
    captions = " ".join(texts(at.caption))
    assert "Signed in as `ana` of tenant `acme` (roles: editor)" in captions
    assert f"Server: `{server.url}`" in captions
    assert not [w for w in at.text_input if w.key in ("tenant", "user")]  # the key decides
    ok(send(at, DEMO_GOAL))
    assert board(at) == {"t1": "completed", "t2": "completed", "t3": "completed", "t4": "waiting"}
    assert chat(at) == [("user", DEMO_GOAL)] and len(gate_keys(at)) == 1
    thread_id = thread_of(at)
    assert str(uuid.UUID(thread_id)) == thread_id  # the server's kind of thread id

    ok(button(at, "Approve").click().run())
    question, answer = chat(at)
    assert question == ("user", DEMO_GOAL)
    assert answer[0] == "assistant" and "Publishing: published reports/" in answer[1]
    assert not gate_keys(at)
    assert any("audit chain intact" in s for s in texts(at.success))
    frames = [d.value for d in at.dataframe]
    costs = next(f for f in frames if "cost (USD)" in f.columns)
    assert set(costs["agent"]) == {"supervisor", "researcher", "analyst", "writer", "total"}
    assert any(m.startswith("```mermaid") and "writer" in m for m in texts(at.markdown))
    threads = [b for b in at.sidebar.button if b.key == f"thread-{thread_id}"]
    assert threads and "completed" in threads[0].label

    # Another tenant's app lists nothing of it, and its link to the thread is refused.
    other = ok(remote_page(GLOBEX_EDITOR))
    assert not [b for b in other.sidebar.button if b.key == f"thread-{thread_id}"]
    linked = remote_page(GLOBEX_EDITOR, thread=thread_id)
    assert any(f"no thread {thread_id!r} for tenant 'globex'" in e for e in texts(linked.error))
    assert chat(linked) == []
    # The owner's link opens it, conversation and all.
    mine = ok(remote_page(ACME_EDITOR, thread=thread_id))
    assert [role for role, _ in chat(mine)] == ["user", "assistant"]


def test_the_app_shows_the_servers_refusals_as_messages(remote_page) -> None:
    from tests.ui.test_ui_app import button, gate_keys, ok, send, texts

    bob = remote_page(ACME_VIEWER)
    ok(send(bob, DEMO_GOAL))
    # The server names bob's roles: his decision buttons are disabled (the server refuses
    # such a decision anyway: test_another_tenant_sees_nothing_and_a_user_without_...).
    assert any("cannot decide this gate; it needs one of: editor" in i for i in texts(bob.info))
    assert button(bob, "Approve").disabled and button(bob, "Reject").disabled
    assert len(gate_keys(bob)) == 1  # still open for an editor

    refused = remote_page("not-a-key")
    (error,) = texts(refused.error)
    assert error.startswith("podium cannot start: cannot read who the credential names")
    assert "unknown API key" in error
