"""Cron and webhook triggers on a real LangGraph dev server, isolated by tenant."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client

from podium.server import sign_webhook

from .conftest import WEBHOOK_SECRETS

ACME_EDITOR, GLOBEX_EDITOR = "acme-editor-key", "globex-editor-key"
GOAL = "Write a brief on heat pump adoption and grid storage costs"


def client(server, key: str) -> Any:
    return get_sync_client(url=server.url, api_key=key)


def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.25)
    raise AssertionError(f"condition not met within {timeout} s")


def signed(
    tenant: str, body: bytes, *, secret: str | None = None, at: float | None = None
) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    return {
        "content-type": "application/json",
        "x-podium-tenant": tenant,
        "x-podium-timestamp": timestamp,
        "x-podium-signature": sign_webhook(secret or WEBHOOK_SECRETS[tenant], timestamp, body),
    }


def post(server, workflow: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server.url}/triggers/{workflow}", content=body, headers=headers)


def test_crons_are_stamped_listed_and_run_for_their_tenant_only(server) -> None:
    ana, gus = client(server, ACME_EDITOR), client(server, GLOBEX_EDITOR)
    job = uuid.uuid4().hex
    with pytest.raises(httpx.HTTPStatusError) as refused:  # another tenant's cron: refused
        ana.crons.create(
            "research_brief",
            schedule="0 2 * * *",
            input={"goal": GOAL},
            metadata={"tenant_id": "globex", "job": job},
        )
    assert refused.value.response.status_code == 403
    nightly = ana.crons.create(
        "research_brief",
        schedule="0 2 * * *",
        input={"goal": GOAL},
        metadata={"job": job},
        on_run_completed="keep",
    )
    assert nightly["metadata"] == {"tenant_id": "acme", "job": job}
    assert nightly["cron_id"] in {c["cron_id"] for c in ana.crons.search(limit=1000)}
    assert nightly["cron_id"] not in {c["cron_id"] for c in gus.crons.search(limit=1000)}
    for touch in (
        lambda: gus.crons.update(nightly["cron_id"], schedule="0 3 * * *"),
        lambda: gus.crons.delete(nightly["cron_id"]),
    ):
        with pytest.raises(httpx.HTTPStatusError) as refused:
            touch()
        assert refused.value.response.status_code == 404
    assert nightly["cron_id"] in {c["cron_id"] for c in ana.crons.search(limit=1000)}
    ana.crons.delete(nightly["cron_id"])

    # A cron every 2 s (croniter's seconds field) shows that its runs act as its creator.
    job = uuid.uuid4().hex
    fast = ana.crons.create(
        "research_brief",
        schedule="* * * * * */2",
        input={"goal": GOAL},
        metadata={"job": job},
        on_run_completed="keep",
    )
    try:
        threads = eventually(
            lambda: [
                t
                for t in ana.threads.search(metadata={"job": job}, limit=10)
                if t["status"] == "interrupted"
            ]
        )
    finally:
        ana.crons.delete(fast["cron_id"])
    thread = threads[0]
    assert thread["metadata"]["tenant_id"] == "acme"
    (interrupt,) = ana.threads.get_state(thread["thread_id"])["interrupts"]
    assert interrupt["value"]["tenant_id"] == "acme"
    assert not gus.threads.search(metadata={"job": job})


@pytest.fixture
def callbacks() -> Iterator[tuple[str, list[dict]]]:
    """A local endpoint that records the server's completion callbacks."""
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            received.append(json.loads(self.rfile.read(length) or b"{}"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    worker = threading.Thread(target=httpd.serve_forever, daemon=True)
    worker.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/done", received
    httpd.shutdown()
    httpd.server_close()


def test_a_signed_webhook_starts_a_run_for_its_tenant(server, callbacks) -> None:
    url, received = callbacks
    ana, gus = client(server, ACME_EDITOR), client(server, GLOBEX_EDITOR)
    body = json.dumps({"goal": GOAL, "webhook": url}).encode()
    response = post(server, "research_brief", body, signed("acme", body))
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["workflow"] == "research_brief"
    thread_id, run_id = started["thread_id"], started["run_id"]

    thread = ana.threads.get(thread_id)
    assert thread["metadata"]["tenant_id"] == "acme"
    assert thread["metadata"]["trigger"] == "webhook"
    ana.runs.join(thread_id, run_id)
    (interrupt,) = ana.threads.get_state(thread_id)["interrupts"]
    assert interrupt["value"]["tenant_id"] == "acme"
    with pytest.raises(httpx.HTTPStatusError) as refused:
        gus.threads.get(thread_id)
    assert refused.value.response.status_code == 404

    # The server calls the run's completion webhook.
    (done,) = eventually(lambda: [c for c in received if c.get("run_id") == run_id])
    assert done["thread_id"] == thread_id
    assert done["metadata"]["tenant_id"] == "acme"

    # Another tenant may not continue the thread.
    again = json.dumps({"goal": "Shorter, please", "thread_id": thread_id}).encode()
    response = post(server, "research_brief", again, signed("globex", again))
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]
    # While it waits at the editor gate, new input would replace the gate: a webhook has
    # no roles, so that is a 403 naming them, and the gate stays.
    response = post(server, "research_brief", again, signed("acme", again))
    assert response.status_code == 403, response.text
    gate_id = interrupt["value"]["gate_id"]
    assert (
        f"user 'webhook:acme' (roles: none) may not run new input on a thread waiting at "
        f"gate '{gate_id}'; it needs one of: editor"
    ) in response.json()["detail"]
    state = ana.threads.get_state(thread_id)
    assert [i["id"] for i in state["interrupts"]] == [interrupt["id"]]
    assert state["values"]["goal"] == GOAL
    # Once the gate is decided, the same tenant may continue its thread.
    ana.runs.wait(
        thread_id, "research_brief", command={"resume": {interrupt["id"]: {"decision": "approve"}}}
    )
    assert post(server, "research_brief", again, signed("acme", again)).status_code == 202


def test_webhooks_refuse_unsigned_forged_stale_and_replayed_requests(server) -> None:
    body = json.dumps({"goal": GOAL}).encode()
    good = signed("acme", body)
    refused = {
        "unsigned": {"content-type": "application/json"},
        "wrong secret": signed("acme", body, secret="guess"),
        "other tenant's secret": signed("acme", body, secret=WEBHOOK_SECRETS["globex"]),
        "unknown tenant": signed("acme", body) | {"x-podium-tenant": "initech"},
        "stale": signed("acme", body, at=time.time() - 310),
        "from the future": signed("acme", body, at=time.time() + 310),
    }
    for case, headers in refused.items():
        response = post(server, "research_brief", body, headers)
        assert response.status_code == 401, (case, response.text)
        assert response.json()["detail"], case
    tampered = post(server, "research_brief", body.replace(b"heat", b"cold"), good)
    assert tampered.status_code == 401

    assert post(server, "research_brief", body, good).status_code == 202
    replay = post(server, "research_brief", body, good)
    assert replay.status_code == 401
    assert "replayed" in replay.json()["detail"]


def test_a_signature_header_that_is_not_ascii_is_a_401_not_a_crash(server) -> None:
    body = json.dumps({"goal": GOAL}).encode()
    for value in ("sha256=\u00e9", "\u00e9" * 71):
        headers: dict[str, Any] = signed("acme", body)
        headers["x-podium-signature"] = value.encode("latin-1")
        response = post(server, "research_brief", body, headers)
        assert response.status_code == 401, (value, response.status_code, response.text[:200])
        assert "bad signature" in response.json()["detail"]


def test_webhooks_answer_404_for_unknown_workflows_and_422_for_malformed_bodies(server) -> None:
    body = json.dumps({"goal": GOAL}).encode()
    response = post(server, "no_such_workflow", body, signed("acme", body))
    assert response.status_code == 404
    assert "no_such_workflow" in response.json()["detail"]
    for bad in (
        b"{}",
        b'{"goal": ""}',
        b'{"goal": "x", "tenant_id": "globex"}',
        b'{"goal": "x", "thread_id": "not-a-uuid"}',
        b'{"goal": "x", "webhook": "not a url"}',
        b'{"goal": "a goal with a NUL \\u0000 in it"}',
        b"not json",
    ):
        response = post(server, "research_brief", bad, signed("acme", bad))
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["detail"] == "malformed body"
    huge = json.dumps({"goal": "x" * (1 << 20)}).encode()
    assert post(server, "research_brief", huge, signed("acme", huge)).status_code == 413


def test_a_refused_webhook_request_gives_its_signature_back(server) -> None:
    # A completion URL the server's webhook policy refuses (its host does not resolve):
    # nothing starts, and the sender's retry gets the same answer, not "replayed".
    goal = f"{GOAL} ({uuid.uuid4().hex[:8]})"
    body = json.dumps({"goal": goal, "webhook": "https://hooks.example.invalid/done"}).encode()
    headers = signed("acme", body)
    first = post(server, "research_brief", body, headers)
    assert first.status_code == 422, first.text
    assert "webhook" in first.json()["detail"].lower()
    again = post(server, "research_brief", body, headers)
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    # Another tenant's thread: 404, and 404 again on retry.
    foreign = json.dumps({"goal": goal, "thread_id": str(uuid.uuid4())}).encode()
    headers = signed("acme", foreign)
    assert post(server, "research_brief", foreign, headers).status_code == 404
    assert post(server, "research_brief", foreign, headers).status_code == 404
    # An accepted request still burns its signature (a body of its own: another test may
    # sign the same body in the same second).
    ok = json.dumps({"goal": f"{GOAL} ({uuid.uuid4().hex[:8]})"}).encode()
    headers = signed("acme", ok)
    assert post(server, "research_brief", ok, headers).status_code == 202
    assert post(server, "research_brief", ok, headers).status_code == 401
