"""research_brief on a real LangGraph dev server: runs, gates, streaming, tenant isolation.

Tenant acme has an editor (ana) and a user without roles (bob); tenant globex has an
editor (gus). The publish_report gate needs an editor.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client

from podium.graphs.research_brief import DEMO_GOAL
from podium.server import sign_token

from .conftest import TOKEN_SECRET

ACME_EDITOR, ACME_VIEWER, GLOBEX_EDITOR = "acme-editor-key", "acme-viewer-key", "globex-editor-key"


def client(server, key: str | None = None, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return get_sync_client(url=server.url, api_key=key, headers=headers)


def status_of(error: BaseException) -> int:
    return error.response.status_code  # type: ignore[attr-defined]


def run_to_gate(api: Any, **kwargs: Any) -> tuple[str, dict]:
    """Start research_brief on a new thread; returns the thread id and its pending gate."""
    thread = api.threads.create()
    out = api.runs.wait(thread["thread_id"], "research_brief", input={"goal": DEMO_GOAL}, **kwargs)
    assert out["status"] == "running" and out["__interrupt__"], out
    state = api.threads.get_state(thread["thread_id"])
    (interrupt,) = state["interrupts"]
    return thread["thread_id"], interrupt


def test_research_brief_stops_at_the_editor_gate_and_completes_on_approval(server) -> None:
    ana = client(server, ACME_EDITOR)
    # A context naming another tenant is ignored: the authenticated user decides.
    thread_id, interrupt = run_to_gate(ana, context={"tenant_id": "globex", "user_id": "gus"})
    gate = interrupt["value"]
    assert (gate["kind"], gate["tool"], gate["roles"]) == ("tool", "publish_report", ["editor"])
    assert gate["tenant_id"] == "acme"
    with sqlite3.connect(server.workdir / "podium.db") as db:  # podium's own tables
        row = db.execute(
            "SELECT tenant_id, status FROM podium_approvals WHERE gate_id = ?", (gate["gate_id"],)
        ).fetchone()
    assert row == ("acme", "pending")
    assert ana.threads.get(thread_id)["status"] == "interrupted"
    assert _indexed_status(server, thread_id) == "waiting"  # podium's thread index agrees

    out = ana.runs.wait(
        thread_id,
        "research_brief",
        command={"resume": {interrupt["id"]: {"decision": "approve", "comment": "ship it"}}},
    )
    assert out["status"] == "completed"
    assert out["answer"].startswith("# Brief")
    assert (server.workdir / "reports").is_dir()  # the approved publish_report ran
    assert ana.threads.get(thread_id)["status"] == "idle"
    assert _indexed_status(server, thread_id) == "completed"


def _indexed_status(server, thread_id: str) -> str:
    with sqlite3.connect(server.workdir / "podium.db") as db:
        [(status,)] = db.execute(
            "SELECT status FROM podium_threads WHERE thread_id = ?", (thread_id,)
        ).fetchall()
    return str(status)


def test_a_user_without_the_gate_role_gets_403_and_the_gate_stays_open(server) -> None:
    ana, bob = client(server, ACME_EDITOR), client(server, ACME_VIEWER)
    thread_id, interrupt = run_to_gate(ana)
    for resume in ({interrupt["id"]: {"decision": "approve"}}, {"decision": "approve"}):
        with pytest.raises(httpx.HTTPStatusError) as refused:
            bob.runs.wait(thread_id, "research_brief", command={"resume": resume})
        assert status_of(refused.value) == 403
        assert "needs one of: editor" in refused.value.response.text
    # A state write could step past the gate too: refused the same way.
    with pytest.raises(httpx.HTTPStatusError) as refused:
        bob.threads.update_state(thread_id, {"status": "completed"})
    assert status_of(refused.value) == 403
    # Bob still reads his tenant's thread; the gate is still pending for an editor.
    state = bob.threads.get_state(thread_id)
    assert [i["id"] for i in state["interrupts"]] == [interrupt["id"]]


def test_custom_stream_carries_podium_events(server) -> None:
    ana = client(server, ACME_EDITOR)
    thread = ana.threads.create()

    def events(**kwargs: Any) -> list[str]:
        parts = ana.runs.stream(
            thread["thread_id"], "research_brief", stream_mode="custom", **kwargs
        )
        return [p.data["event"] for p in parts if p.event.startswith("custom")]

    first = events(input={"goal": DEMO_GOAL}, stream_subgraphs=True)
    assert first[0] == "plan"
    assert {"task_started", "task_finished"} <= set(first)
    assert first[-1] == "gate_raised"  # raised inside the writer's subgraph
    (interrupt,) = ana.threads.get_state(thread["thread_id"])["interrupts"]
    second = events(command={"resume": {interrupt["id"]: {"decision": "approve"}}})
    assert second[-1] == "run_finished"


def test_another_tenant_sees_nothing_of_a_thread(server) -> None:
    ana, gus = client(server, ACME_EDITOR), client(server, GLOBEX_EDITOR)
    # Metadata naming another tenant is refused, not rewritten; the server stamps the owner.
    with pytest.raises(httpx.HTTPStatusError) as refused:
        ana.threads.create(metadata={"tenant_id": "globex", "topic": "x"})
    assert status_of(refused.value) == 403
    assert "is not your tenant 'acme'" in refused.value.response.text
    thread = ana.threads.create(metadata={"topic": "x"})
    thread_id = thread["thread_id"]
    assert thread["metadata"] == {"tenant_id": "acme", "topic": "x"}

    for read in (
        lambda: gus.threads.get(thread_id),
        lambda: gus.threads.get_state(thread_id),
        lambda: gus.threads.get_history(thread_id),
        lambda: gus.threads.update(thread_id, metadata={"tenant_id": "globex"}),
        lambda: gus.threads.delete(thread_id),
        lambda: gus.runs.wait(thread_id, "research_brief", input={"goal": DEMO_GOAL}),
        lambda: gus.runs.list(thread_id),
    ):
        with pytest.raises(httpx.HTTPStatusError) as refused:
            read()
        assert status_of(refused.value) == 404
    found = {t["thread_id"] for t in gus.threads.search(limit=1000)}
    assert thread_id not in found
    assert thread_id not in {
        t["thread_id"] for t in gus.threads.search(metadata={"tenant_id": "acme"}, limit=1000)
    }
    assert thread_id in {t["thread_id"] for t in ana.threads.search(limit=1000)}
    # An update by the owner cannot hand the thread to another tenant either.
    with pytest.raises(httpx.HTTPStatusError) as refused:
        ana.threads.update(thread_id, metadata={"tenant_id": "globex"})
    assert status_of(refused.value) == 403
    assert ana.threads.get(thread_id)["metadata"]["tenant_id"] == "acme"


def test_the_dev_servers_debug_truncate_and_deploy_routes_are_closed(server) -> None:
    """`langgraph dev` (the in-memory runtime) adds routes of its own outside the
    authentication middleware: a raw read of any thread, a wipe of all data, a deploy.
    On podium's server they answer 404 to anyone, with or without a credential."""
    ana = client(server, ACME_EDITOR)
    thread = ana.threads.create(metadata={"topic": "kept"})
    thread_id = thread["thread_id"]
    anonymous, globex = {}, {"x-api-key": GLOBEX_EDITOR}
    for headers in (anonymous, globex):
        for path in (
            f"/internal/debug/thread/{thread_id}",
            f"//internal/debug/thread/{thread_id}/",
            "/internal%2Fdebug/thread/" + thread_id,
            "/deploy",
        ):
            answer = httpx.get(server.url + path, headers=headers, timeout=30)
            assert answer.status_code == 404, (path, headers, answer.text[:300])
            assert "kept" not in answer.text and "tenant_id" not in answer.text
    for headers in (anonymous, globex):
        for path in ("/internal/truncate", "/deploy", "/deploy/x/stream"):
            answer = httpx.post(server.url + path, headers=headers, json={}, timeout=30)
            assert answer.status_code in (404, 405), (path, answer.text[:300])
    # Nothing was wiped: the thread and the shared assistant are still there.
    assert ana.threads.get(thread_id)["metadata"]["topic"] == "kept"
    assert ana.assistants.search(graph_id="research_brief")


def test_credentials_missing_unknown_forged_or_expired_are_401(server) -> None:
    valid = sign_token(TOKEN_SECRET, tenant_id="globex", identity="gina", roles=["editor"])
    assert client(server, token=valid).threads.search() is not None
    forged = sign_token("not-the-secret", tenant_id="globex", identity="gina")
    expired = sign_token(TOKEN_SECRET, tenant_id="globex", identity="gina", expires_in=-1)
    attempts = {
        "missing credential": {},
        "unknown API key": {"x-api-key": "nope"},
        "bad token signature": {"authorization": f"Bearer {forged}"},
        "token expired": {"authorization": f"Bearer {expired}"},
        "malformed token": {"authorization": "Bearer abc"},
    }
    for reason, headers in attempts.items():
        response = httpx.post(f"{server.url}/threads/search", json={}, headers=headers)
        assert response.status_code == 401, (reason, response.text)
        assert reason in response.json()["detail"]
    # Studio's own scheme does not bypass podium's authentication.
    studio = httpx.post(
        f"{server.url}/threads/search", json={}, headers={"x-auth-scheme": "langsmith"}
    )
    assert studio.status_code == 401


def test_a_token_user_sees_its_tenant_only(server) -> None:
    ana = client(server, ACME_EDITOR)
    acme_thread = ana.threads.create()["thread_id"]
    token = sign_token(TOKEN_SECRET, tenant_id="globex", identity="gina", roles=["editor"])
    gina = client(server, token=token)
    own = gina.threads.create()["thread_id"]
    seen = {t["thread_id"] for t in gina.threads.search(limit=1000)}
    assert own in seen and acme_thread not in seen
    assert all(t["metadata"]["tenant_id"] == "globex" for t in gina.threads.search(limit=1000))


def test_assistants_and_store_are_per_tenant(server) -> None:
    ana, gus = client(server, ACME_EDITOR), client(server, GLOBEX_EDITOR)
    shared = {a["graph_id"] for a in gus.assistants.search()}
    assert "research_brief" in shared  # the workflows of langgraph.json are shared
    mine = ana.assistants.create(
        "research_brief", name="acme brief", metadata={"created_by": "system"}
    )
    assert mine["metadata"]["tenant_id"] == "acme"
    assert mine["metadata"]["created_by"] != "system"  # cannot pose as a shared one
    assert mine["assistant_id"] not in {a["assistant_id"] for a in gus.assistants.search()}
    with pytest.raises(httpx.HTTPStatusError) as refused:
        gus.assistants.get(mine["assistant_id"])
    assert status_of(refused.value) == 404
    # Creating one with another tenant's assistant id is a 404 too (a 409 would tell that
    # the id exists); the owner's own duplicate is its 409.
    for if_exists in ("raise", "do_nothing"):
        with pytest.raises(httpx.HTTPStatusError) as refused:
            gus.assistants.create(
                "research_brief", assistant_id=mine["assistant_id"], if_exists=if_exists
            )
        assert status_of(refused.value) == 404, refused.value.response.text
    with pytest.raises(httpx.HTTPStatusError) as refused:
        ana.assistants.create("research_brief", assistant_id=mine["assistant_id"])
    assert status_of(refused.value) == 409

    ana.store.put_item(["notes"], "k", {"text": "acme only"})
    assert ana.store.get_item(["notes"], "k")["value"] == {"text": "acme only"}
    assert gus.store.search_items(["notes"])["items"] == []


def test_runs_are_traced_in_langfuse_per_thread_and_tenant(server) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    thread_id, _ = run_to_gate(client(server, ACME_EDITOR))

    def spans() -> list[tuple[str, bytes, dict]]:
        found = []
        for body in list(server.langfuse.exports):
            export = ExportTraceServiceRequest()
            export.ParseFromString(body)
            for resource in export.resource_spans:
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        attrs = {a.key: a.value.string_value for a in span.attributes}
                        found.append((span.name, span.trace_id, attrs))
        return found

    def trace() -> set[str]:
        roots = [t for _, t, attrs in spans() if attrs.get("session.id") == thread_id]
        return {name for name, t, _ in spans() if t in roots}

    # The root span is exported when the run reaches its gate, after the tool spans; under
    # load that can take a while, so wait for every expected span, not just the first.
    expected = {"research_brief", "supervisor", "search_corpus"}
    deadline = time.monotonic() + 60
    while not expected <= trace() and time.monotonic() < deadline:
        time.sleep(0.25)
    assert expected <= trace()
    (root,) = [
        a for n, _, a in spans() if n == "research_brief" and a.get("session.id") == thread_id
    ]
    assert root.get("user.id") == "acme/ana"


def test_a_malformed_command_is_422_naming_what_is_wrong(server) -> None:
    """A command that does nothing or has the wrong shape would fail the run (the thread
    would end in error); it is refused before a run is made."""
    ana = client(server, ACME_EDITOR)
    thread_id, interrupt = run_to_gate(ana)
    cases = {
        "command.resume is null": {"resume": None},
        "command does nothing": {},
        "command does nothing: give it": {"update": {}, "goto": []},
        # The server's own schema refuses a field of the wrong shape.
        "is not valid": {"update": "x"},
    }
    for expected, command in cases.items():
        response = httpx.post(
            f"{server.url}/threads/{thread_id}/runs/wait",
            headers={"x-api-key": ACME_EDITOR},
            json={"assistant_id": "research_brief", "command": command},
            timeout=30,
        )
        assert response.status_code == 422, (command, response.text)
        assert expected in response.text, (command, response.text)
    # Nothing ran: the thread still waits at its gate, and the decision still applies.
    assert ana.threads.get(thread_id)["status"] == "interrupted"
    assert len(ana.runs.list(thread_id)) == 1
    out = ana.runs.wait(
        thread_id, "research_brief", command={"resume": {interrupt["id"]: {"decision": "approve"}}}
    )
    assert out["status"] == "completed"
