"""Gated threads on a real LangGraph dev server: who may change them, who is recorded as
the decider, what another tenant sees, and what the loser of two decisions is told.

Tenant acme has editors ana (API key) and eve (bearer token) and bob, without roles;
tenant globex has the editor gus. research_brief's publish_report gate needs an editor.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

import httpx
import pytest

from podium.server import sign_token

from .conftest import TOKEN_SECRET
from .test_server_runs import ACME_EDITOR, ACME_VIEWER, GLOBEX_EDITOR, client, run_to_gate

FORGED = {"decision": "approve", "user": "ceo@acme"}


def refused(call: Any, name: str = "") -> httpx.Response:
    with pytest.raises(httpx.HTTPStatusError) as error:
        result = call()
        pytest.fail(f"{name or 'the call'} was not refused; it returned {result!r:.300}")
    return error.value.response


def eve(server) -> Any:
    token = sign_token(TOKEN_SECRET, tenant_id="acme", identity="eve", roles=["editor"])
    return client(server, token=token)


def podium_db(server, sql: str, *params: Any) -> list[tuple]:
    with sqlite3.connect(server.workdir / "podium.db", timeout=10) as db:
        return db.execute(sql, params).fetchall()


def approval_rows(server, gate_id: str) -> list[tuple]:
    """(actor, payload) of the gate's approval events, once the run's buffer is written."""
    deadline = time.monotonic() + 10
    while True:
        rows = podium_db(
            server,
            "SELECT actor_type || ':' || actor_name, payload FROM podium_audit_events "
            "WHERE kind = 'approval' AND payload LIKE ?",
            f"%{gate_id}%",
        )
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_a_decision_naming_another_user_is_refused_and_the_caller_is_recorded(server) -> None:
    ana = client(server, ACME_EDITOR)
    thread_id, interrupt = run_to_gate(ana)
    gate_id = interrupt["value"]["gate_id"]
    for resume in ({interrupt["id"]: FORGED}, FORGED):
        answer = refused(
            lambda resume=resume: ana.runs.wait(
                thread_id, "research_brief", command={"resume": resume}
            )
        )
        assert answer.status_code == 403
        assert "names user 'ceo@acme' but the caller is 'ana'" in answer.text
    assert podium_db(server, "SELECT status FROM podium_approvals WHERE gate_id = ?", gate_id) == [
        ("pending",)
    ]
    # Naming oneself is allowed; what is recorded is the credential's identity.
    out = ana.runs.wait(
        thread_id,
        "research_brief",
        command={"resume": {interrupt["id"]: {"decision": "approve", "user": "ana"}}},
    )
    assert out["status"] == "completed"
    [(decided_by, decision)] = podium_db(
        server, "SELECT decided_by, decision FROM podium_approvals WHERE gate_id = ?", gate_id
    )
    assert decided_by == "ana" and '"user":"ana"' in decision
    [(actor, payload)] = approval_rows(server, gate_id)
    assert actor == "user:ana" and '"user":"ana"' in payload
    assert podium_db(
        server,
        "SELECT count(*) FROM podium_audit_events WHERE payload LIKE '%ceo@acme%' "
        "OR actor_name = 'ceo@acme'",
    ) == [(0,)]


def test_every_change_to_a_gated_thread_needs_the_gate_role(server) -> None:
    ana, bob = client(server, ACME_EDITOR), client(server, ACME_VIEWER)
    thread_id, interrupt = run_to_gate(ana)
    gate_id = interrupt["value"]["gate_id"]
    before = ana.threads.get_state(thread_id)["values"]
    forged = {"answer": "FORGED", "status": "completed"}
    attempts = {
        "update and goto": lambda: bob.runs.wait(
            thread_id, "research_brief", command={"update": forged, "goto": "__end__"}
        ),
        "update": lambda: bob.runs.wait(thread_id, "research_brief", command={"update": forged}),
        "goto": lambda: bob.runs.wait(thread_id, "research_brief", command={"goto": "aggregate"}),
        "resume with update": lambda: bob.runs.wait(
            thread_id,
            "research_brief",
            command={"resume": {interrupt["id"]: {"decision": "approve"}}, "update": forged},
        ),
        "input": lambda: bob.runs.wait(thread_id, "research_brief", input={"goal": "other"}),
        "no input": lambda: bob.runs.wait(thread_id, "research_brief"),
        "background run": lambda: bob.runs.create(
            thread_id, "research_brief", command={"update": forged, "goto": "__end__"}
        ),
        "stream": lambda: list(
            bob.runs.stream(thread_id, "research_brief", command={"goto": "__end__"})
        ),
        "state": lambda: bob.threads.update_state(thread_id, forged),
        "state as a node": lambda: bob.threads.update_state(thread_id, forged, as_node="aggregate"),
        "delete": lambda: bob.threads.delete(thread_id),
    }
    for name, attempt in attempts.items():
        answer = refused(attempt, name)
        assert answer.status_code == 403, (name, answer.text)
        assert f"gate '{gate_id}'; it needs one of: editor" in answer.text, (name, answer.text)
        assert "'bob' (roles: none)" in answer.text
    # Nothing changed: the thread still waits at the same gate with the same state.
    state = ana.threads.get_state(thread_id)
    assert [i["id"] for i in state["interrupts"]] == [interrupt["id"]]
    assert state["values"] == before and state["values"].get("answer") != "FORGED"
    assert ana.threads.get(thread_id)["status"] == "interrupted"
    # An editor may decide it (and could change it).
    out = ana.runs.wait(
        thread_id, "research_brief", command={"resume": {interrupt["id"]: {"decision": "approve"}}}
    )
    assert out["status"] == "completed" and out["answer"].startswith("# Brief")


def test_a_thread_no_longer_at_a_gate_is_changed_as_before(server) -> None:
    ana, bob = client(server, ACME_EDITOR), client(server, ACME_VIEWER)
    thread_id, interrupt = run_to_gate(ana)
    ana.runs.wait(
        thread_id, "research_brief", command={"resume": {interrupt["id"]: {"decision": "approve"}}}
    )
    bob.threads.update_state(thread_id, {"goal": "a goal of bob's"})
    assert bob.threads.get_state(thread_id)["values"]["goal"] == "a goal of bob's"
    bob.threads.delete(thread_id)


def test_another_tenants_thread_id_is_404_on_create_copy_and_writes(server) -> None:
    ana, gus = client(server, ACME_EDITOR), client(server, GLOBEX_EDITOR)
    thread_id, interrupt = run_to_gate(ana)
    calls = {
        "create": lambda: gus.threads.create(thread_id=thread_id),
        "create do_nothing": lambda: gus.threads.create(
            thread_id=thread_id, if_exists="do_nothing"
        ),
        "copy": lambda: gus.threads.copy(thread_id),
        "state": lambda: gus.threads.update_state(thread_id, {"answer": "x"}),
        "resume": lambda: gus.runs.wait(
            thread_id,
            "research_brief",
            command={"resume": {interrupt["id"]: {"decision": "approve"}}},
        ),
        "update": lambda: gus.runs.wait(thread_id, "research_brief", command={"goto": "__end__"}),
        "stream": lambda: list(gus.runs.stream(thread_id, "research_brief", input={"goal": "x"})),
        "background run": lambda: gus.runs.create(thread_id, "research_brief", input={"goal": "x"}),
        "history": lambda: gus.threads.get_history(thread_id),
        "delete": lambda: gus.threads.delete(thread_id),
    }
    for name, call in calls.items():
        answer = refused(call, name)
        assert answer.status_code == 404, (name, answer.status_code, answer.text)
    # Joining a thread's stream answers on the stream itself (it has started): a 404 there.
    [part] = list(gus.threads.join_stream(thread_id))
    assert part.event == "error" and part.data["message"].startswith("404")
    # The owner is unaffected: same gate; a create with the existing id is the owner's 409,
    # and a copy of a thread the tenant owns works.
    assert [i["id"] for i in ana.threads.get_state(thread_id)["interrupts"]] == [interrupt["id"]]
    assert refused(lambda: ana.threads.create(thread_id=thread_id)).status_code == 409
    assert ana.threads.create(thread_id=thread_id, if_exists="do_nothing")["thread_id"] == thread_id
    copy = ana.threads.copy(thread_id)
    assert copy["thread_id"] != thread_id and copy["metadata"]["tenant_id"] == "acme"
    # A copy of a thread that does not exist is a 404 too.
    missing = "00000000-0000-4000-8000-000000000000"
    assert refused(lambda: gus.threads.copy(missing)).status_code == 404


def test_two_concurrent_decisions_one_wins_the_other_gets_409_naming_it(server) -> None:
    ana, other = client(server, ACME_EDITOR), eve(server)
    thread_id, interrupt = run_to_gate(ana)
    gate_id = interrupt["value"]["gate_id"]
    barrier, outcomes = threading.Barrier(2), {}

    def decide(who: str, api: Any, verdict: str) -> None:
        barrier.wait()
        try:
            out = api.runs.wait(
                thread_id,
                "research_brief",
                command={"resume": {interrupt["id"]: {"decision": verdict}}},
            )
            outcomes[who] = ("applied", out["status"])
        except httpx.HTTPStatusError as exc:
            outcomes[who] = (exc.response.status_code, exc.response.text)

    workers = [
        threading.Thread(target=decide, args=("ana", ana, "approve")),
        threading.Thread(target=decide, args=("eve", other, "reject")),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert len(outcomes) == 2, outcomes
    [winner] = [w for w, o in outcomes.items() if o[0] == "applied"]
    [(_loser, (status, text))] = [(w, o) for w, o in outcomes.items() if o[0] != "applied"]
    verdict = {"ana": "approve", "eve": "reject"}[winner]
    assert status == 409, outcomes
    assert f"already decided: {verdict} by {winner}" in text
    [(decided_by, decision)] = podium_db(
        server, "SELECT decided_by, decision FROM podium_approvals WHERE gate_id = ?", gate_id
    )
    assert decided_by == winner and f'"decision":"{verdict}"' in decision
    # A decision arriving after the run moved on is a 409 naming the decision too.
    late = refused(
        lambda: ana.runs.wait(
            thread_id,
            "research_brief",
            command={"resume": {interrupt["id"]: {"decision": "approve"}}},
        )
    )
    assert late.status_code == 409 and f"{verdict} by {winner}" in late.text
    assert len(approval_rows(server, gate_id)) == 1


def test_a_claim_whose_run_never_applied_it_does_not_lock_the_gate(server) -> None:
    """A decision claimed by a request whose run never reached the gate (cancelled, lost)
    holds the gate for a grace period only; then the gate can be decided again."""
    ana = client(server, ACME_EDITOR)
    thread_id, interrupt = run_to_gate(ana)
    gate_id = interrupt["value"]["gate_id"]
    resume = {"resume": {interrupt["id"]: {"decision": "approve"}}}

    def claimed(at: float) -> None:
        podium_db(
            server,
            "UPDATE podium_approvals SET status = 'decided', decided_by = 'gus', "
            'decision = \'{"decision": "reject"}\', decided_at = ? WHERE gate_id = ?',
            at,
            gate_id,
        )

    claimed(time.time())
    fresh = refused(lambda: ana.runs.wait(thread_id, "research_brief", command=resume))
    assert fresh.status_code == 409 and "reject by gus" in fresh.text
    claimed(time.time() - 60)
    out = ana.runs.wait(thread_id, "research_brief", command=resume)
    assert out["status"] == "completed"
    assert podium_db(
        server, "SELECT decided_by FROM podium_approvals WHERE gate_id = ?", gate_id
    ) == [("ana",)]


def test_a_resume_of_a_thread_at_no_gate_is_409(server) -> None:
    ana = client(server, ACME_EDITOR)
    thread = ana.threads.create()
    answer = refused(
        lambda: ana.runs.wait(
            thread["thread_id"], "research_brief", command={"resume": {"decision": "approve"}}
        )
    )
    assert answer.status_code == 409 and "is not waiting at any gate" in answer.text


def test_the_server_warns_at_start_when_the_audit_key_is_unset(server) -> None:
    # The fixture's environment has no PODIUM_AUDIT_KEY.
    log = server.log.read_text(errors="replace")
    assert "PODIUM_AUDIT_KEY is not set: the audit chains are plain SHA-256" in log
    assert podium_db(server, "SELECT DISTINCT mode FROM podium_audit_events") == [("sha256",)]


def test_a_viewer_still_reads_a_gated_thread(server) -> None:
    ana, bob = client(server, ACME_EDITOR), client(server, ACME_VIEWER)
    thread_id, interrupt = run_to_gate(ana)
    assert [i["id"] for i in bob.threads.get_state(thread_id)["interrupts"]] == [interrupt["id"]]
    assert bob.threads.get(thread_id)["status"] == "interrupted"
    assert thread_id in {t["thread_id"] for t in bob.threads.search(limit=1000)}
    assert bob.runs.list(thread_id)


def test_deleting_a_run_of_a_gated_thread_needs_the_gate_role(server) -> None:
    """Deleting a run deletes the checkpoints it wrote: on a gated thread that is the
    thread's state and its gate, so it is a change like any other."""
    ana, bob = client(server, ACME_EDITOR), client(server, ACME_VIEWER)
    thread_id, interrupt = run_to_gate(ana)
    gate_id = interrupt["value"]["gate_id"]
    [run] = ana.runs.list(thread_id)
    before = ana.threads.get_state(thread_id)["values"]
    answer = refused(lambda: bob.runs.delete(thread_id, run["run_id"]), "run delete")
    assert answer.status_code == 403, answer.text
    assert f"may not delete a run of a thread waiting at gate '{gate_id}'" in answer.text
    assert "it needs one of: editor" in answer.text
    state = ana.threads.get_state(thread_id)
    assert [i["id"] for i in state["interrupts"]] == [interrupt["id"]]
    assert state["values"] == before
    assert len(ana.threads.get_history(thread_id)) > 1
    # An editor may delete it, as before.
    ana.runs.delete(thread_id, run["run_id"])
    assert ana.runs.list(thread_id) == []


def _api(server, key: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method, f"{server.url}{path}", headers={"x-api-key": key}, timeout=30, **kwargs
    )


def test_rolling_back_a_resume_of_a_gate_needs_the_gate_role(server) -> None:
    """A rollback deletes the resume run and its checkpoints: the editor's decision would be
    undone by a user who may not decide the gate."""
    ana, bob = client(server, ACME_EDITOR), client(server, ACME_VIEWER)
    thread_id, interrupt = run_to_gate(ana)
    gate_id = interrupt["value"]["gate_id"]
    # A delayed resume stays pending, so the rollback below always finds it in flight.
    run = ana.runs.create(
        thread_id,
        "research_brief",
        command={"resume": {interrupt["id"]: {"decision": "approve"}}},
        after_seconds=60,
    )
    run_id = run["run_id"]
    by_id = {"thread_id": thread_id, "run_ids": [run_id]}
    attempts = {
        "rollback": lambda: bob.runs.cancel(thread_id, run_id, wait=True, action="rollback"),
        "bulk rollback": lambda: bob.runs.cancel_many(**by_id, action="rollback"),
        "bulk rollback by status": lambda: bob.runs.cancel_many(
            status="pending", action="rollback"
        ),
        # `action` in the body is not read: this one is an interrupt.
        "bulk with action in the body": lambda: _api(
            server, ACME_VIEWER, "POST", "/runs/cancel", json={**by_id, "action": "rollback"}
        ).raise_for_status(),
        "interrupt": lambda: bob.runs.cancel(thread_id, run_id, wait=True),
    }
    for name, attempt in attempts.items():
        answer = refused(attempt, name)
        assert answer.status_code == 403, (name, answer.text)
        verb = "roll back" if "rollback" in name else "cancel"
        assert f"may not {verb} a run of a thread waiting at gate '{gate_id}'" in answer.text, (
            name,
            answer.text,
        )
        assert "it needs one of: editor" in answer.text
    # Nothing was rolled back: the run is still there, the thread still waits at the gate.
    assert ana.runs.get(thread_id, run_id)["status"] == "pending"
    state = ana.threads.get_state(thread_id)
    assert [i["id"] for i in state["interrupts"]] == [interrupt["id"]]
    # An editor may roll it back; the thread still waits at the gate.
    ana.runs.cancel(thread_id, run_id, wait=True, action="rollback")
    assert [i["id"] for i in ana.threads.get_state(thread_id)["interrupts"]] == [interrupt["id"]]


def test_a_copy_of_a_gated_thread_keeps_its_gate_protection(server) -> None:
    """The copy's thread row lists no interrupt while its state waits at the gate: the
    role check reads the state too."""
    ana, bob = client(server, ACME_EDITOR), client(server, ACME_VIEWER)
    thread_id, interrupt = run_to_gate(ana)
    gate_id = interrupt["value"]["gate_id"]
    copy = bob.threads.copy(thread_id)["thread_id"]
    assert [i["id"] for i in bob.threads.get_state(copy)["interrupts"]] == [interrupt["id"]]
    before = ana.threads.get_state(copy)["values"]
    forged = {"answer": "FORGED", "status": "completed"}
    attempts = {
        "state": lambda: bob.threads.update_state(copy, forged),
        "goto": lambda: bob.runs.wait(copy, "research_brief", command={"goto": "__end__"}),
        "update": lambda: bob.runs.wait(copy, "research_brief", command={"update": forged}),
        "input": lambda: bob.runs.wait(copy, "research_brief", input={"goal": "other"}),
        "resume": lambda: bob.runs.wait(
            copy, "research_brief", command={"resume": {interrupt["id"]: {"decision": "approve"}}}
        ),
        "delete": lambda: bob.threads.delete(copy),
    }
    for name, attempt in attempts.items():
        answer = refused(attempt, name)
        assert answer.status_code == 403, (name, answer.text)
        assert f"gate '{gate_id}'; it needs one of: editor" in answer.text, (name, answer.text)
    assert ana.threads.get_state(copy)["values"] == before
    # The source is untouched and still decided by an editor.
    out = ana.runs.wait(
        thread_id, "research_brief", command={"resume": {interrupt["id"]: {"decision": "approve"}}}
    )
    assert out["status"] == "completed"


def test_a_cron_on_a_gated_thread_needs_the_gate_role(server) -> None:
    ana, bob = client(server, ACME_EDITOR), client(server, ACME_VIEWER)
    thread_id, interrupt = run_to_gate(ana)
    gate_id = interrupt["value"]["gate_id"]
    answer = refused(
        lambda: bob.crons.create_for_thread(
            thread_id, "research_brief", schedule="* * * * *", input={"goal": "other"}
        )
    )
    assert answer.status_code == 403, answer.text
    assert f"may not create a cron on a thread waiting at gate '{gate_id}'" in answer.text
    assert not [c for c in ana.crons.search(thread_id=thread_id)]


def test_pruning_a_gated_thread_needs_the_gate_role(server) -> None:
    ana = client(server, ACME_EDITOR)
    thread_id, interrupt = run_to_gate(ana)
    gate_id = interrupt["value"]["gate_id"]
    answer = _api(server, ACME_VIEWER, "POST", "/threads/prune", json={"thread_ids": [thread_id]})
    assert answer.status_code == 403, answer.text
    assert f"may not delete a thread waiting at gate '{gate_id}'" in answer.text
    assert [i["id"] for i in ana.threads.get_state(thread_id)["interrupts"]] == [interrupt["id"]]


def test_another_tenants_thread_event_stream_is_404_before_it_starts(server) -> None:
    """The server checks the thread inside the stream, after its 200 has gone out."""
    ana = client(server, ACME_EDITOR)
    thread_id, _interrupt = run_to_gate(ana)
    body = {"channels": ["values"]}
    path = f"/threads/{thread_id}/stream/events"
    foreign = _api(server, GLOBEX_EDITOR, "POST", path, json=body)
    assert foreign.status_code == 404, foreign.text
    assert foreign.json()["detail"] == f"Thread with ID {thread_id} not found"
    missing = "00000000-0000-4000-8000-000000000000"
    assert (
        _api(
            server, ACME_EDITOR, "POST", f"/threads/{missing}/stream/events", json=body
        ).status_code
        == 404
    )
    # No credential is the server's own 401; the owner's stream starts (200, SSE).
    assert httpx.post(f"{server.url}{path}", json=body, timeout=30).status_code == 401
    with httpx.stream(
        "POST", f"{server.url}{path}", headers={"x-api-key": ACME_EDITOR}, json=body, timeout=30
    ) as own:
        assert own.status_code == 200
        assert own.headers["content-type"].startswith("text/event-stream")
