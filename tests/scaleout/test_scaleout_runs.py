"""Runs, gates, streams and tenant isolation across two engine processes, A and B."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from podium.graphs.research_brief import DEMO_GOAL

from .conftest import client, status_of

pytestmark = pytest.mark.scaleout

EDITOR, VIEWER, GLOBEX = "acme-editor-key", "acme-viewer-key", "globex-editor-key"


def wait_status(api, thread_id: str, wanted: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        thread = api.threads.get(thread_id)
        if thread["status"] == wanted:
            return thread
        time.sleep(0.2)
    raise AssertionError(f"thread {thread_id} not {wanted} within {timeout} s: {thread}")


def test_anonymous_requests_are_401_on_every_instance(cluster) -> None:
    # Guards against the engine's silent start without authentication.
    for instance in cluster.instances:
        for headers in ({}, {"x-api-key": "nope"}):
            answer = httpx.post(f"{instance.url}/threads/search", json={}, headers=headers)
            assert answer.status_code == 401, (instance.name, answer.text)


def test_a_run_made_on_a_waits_at_its_gate_and_an_editor_resumes_it_on_b(cluster) -> None:
    a, b = cluster.instances[:2]
    ana_a, ana_b, bob_a, bob_b = (
        client(a.url, EDITOR),
        client(b.url, EDITOR),
        client(a.url, VIEWER),
        client(b.url, VIEWER),
    )
    thread_id = ana_a.threads.create()["thread_id"]
    run = ana_a.runs.create(thread_id, "research_brief", input={"goal": DEMO_GOAL})
    ana_b.runs.join(thread_id, run["run_id"])
    wait_status(ana_b, thread_id, "interrupted")
    (interrupt,) = ana_b.threads.get_state(thread_id)["interrupts"]
    assert interrupt["value"]["roles"] == ["editor"]

    # A user without the gate's role is refused on either instance; the gate stays open.
    for bob in (bob_a, bob_b):
        with pytest.raises(httpx.HTTPStatusError) as refused:
            bob.runs.wait(
                thread_id,
                "research_brief",
                command={"resume": {interrupt["id"]: {"decision": "approve"}}},
            )
        assert status_of(refused.value) == 403
        assert "needs one of: editor" in refused.value.response.text
    assert [i["id"] for i in ana_a.threads.get_state(thread_id)["interrupts"]] == [interrupt["id"]]

    out = ana_b.runs.wait(
        thread_id,
        "research_brief",
        command={"resume": {interrupt["id"]: {"decision": "approve"}}},
    )
    assert out["answer"].startswith("# Brief")
    assert ana_a.threads.get(thread_id)["status"] == "idle"
    assert (cluster.workdir / "reports").is_dir()


def test_a_stream_is_joined_from_the_other_instance(cluster) -> None:
    a, b = cluster.instances[:2]
    ana_a, ana_b = client(a.url, EDITOR), client(b.url, EDITOR)
    thread_id = ana_a.threads.create()["thread_id"]
    # slow_brief's model answers after a delay, so B joins while the run is under way.
    run = ana_a.runs.create(
        thread_id,
        "slow_brief",
        input={"goal": DEMO_GOAL},
        stream_mode=["custom"],
        stream_subgraphs=True,
        stream_resumable=True,
    )
    events = [
        part.data["event"]
        for part in ana_b.runs.join_stream(thread_id, run["run_id"], stream_mode=["custom"])
        if part.event.startswith("custom")
    ]
    assert "task_started" in events and events[-1] == "gate_raised", events
    assert ana_b.threads.get(thread_id)["status"] == "interrupted"


def test_tenants_are_isolated_on_both_instances(cluster) -> None:
    a, b = cluster.instances[:2]
    ana_a = client(a.url, EDITOR)
    thread_id = ana_a.threads.create(metadata={"topic": "x"})["thread_id"]
    for instance in (a, b):
        gus = client(instance.url, GLOBEX)
        for read in (
            lambda gus=gus: gus.threads.get(thread_id),
            lambda gus=gus: gus.threads.update(thread_id, metadata={"topic": "y"}),
            lambda gus=gus: gus.threads.delete(thread_id),
            lambda gus=gus: gus.runs.list(thread_id),
        ):
            with pytest.raises(httpx.HTTPStatusError) as refused:
                read()
            assert status_of(refused.value) == 404, instance.name
        assert thread_id not in {t["thread_id"] for t in gus.threads.search(limit=1000)}
        found = gus.threads.search(metadata={"tenant_id": "acme"}, limit=1000)
        assert thread_id not in {t["thread_id"] for t in found}
        assert thread_id in {
            t["thread_id"] for t in client(instance.url, EDITOR).threads.search(limit=1000)
        }

    # A client naming another tenant in metadata is refused on both (this engine would
    # otherwise file a cron under the tenant the client named).
    job = uuid.uuid4().hex
    for instance in (a, b):
        ana = client(instance.url, EDITOR)
        for make in (
            lambda ana=ana: ana.threads.create(metadata={"tenant_id": "globex"}),
            lambda ana=ana: ana.crons.create(
                "research_brief",
                schedule="0 2 * * *",
                input={"goal": DEMO_GOAL},
                metadata={"tenant_id": "globex", "job": job},
            ),
        ):
            with pytest.raises(httpx.HTTPStatusError) as refused:
                make()
            assert status_of(refused.value) == 403, instance.name
    cron = ana_a.crons.create(
        "research_brief", schedule="0 2 * * *", input={"goal": DEMO_GOAL}, metadata={"job": job}
    )
    try:
        assert cron["metadata"]["tenant_id"] == "acme"
        ana_b, gus_b = client(b.url, EDITOR), client(b.url, GLOBEX)
        assert cron["cron_id"] in {c["cron_id"] for c in ana_b.crons.search(limit=1000)}
        assert cron["cron_id"] not in {c["cron_id"] for c in gus_b.crons.search(limit=1000)}
        with pytest.raises(httpx.HTTPStatusError) as refused:
            gus_b.crons.delete(cron["cron_id"])
        assert status_of(refused.value) == 404
    finally:
        ana_a.crons.delete(cron["cron_id"])
