"""The LangGraph server with podium's PostgreSQL unreachable: it starts, answers each request
within seconds with one clear message (503, the URL masked, what to check), and serves
runs as soon as the database is back, without a restart.

The database is the throwaway cluster, stopped before the server starts. Once it is back,
a thread runs to its gate; the database goes away again while the gate waits, and the
decision is refused (503) instead of being lost; once the database is back, the same
decision goes through and the run completes.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client

from podium.graphs.research_brief import DEMO_GOAL

from .conftest import _running

KEY = "acme-editor-key"
HEADERS = {"x-api-key": KEY}


def _within_seconds(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def _refused_clearly(response: httpx.Response, took: float, masked: str) -> str:
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert masked in detail, detail
    assert "s3cret" not in response.text and "Traceback" not in response.text
    assert took < 10
    return str(detail)


def test_a_server_on_an_unreachable_database_says_so_then_serves(
    own_cluster, idp, server_openai, tmp_path_factory
):
    url = own_cluster.url.replace("postgresql://postgres@", "postgresql://postgres:s3cret@", 1)
    masked = url.replace(":s3cret@", ":***@")
    workdir = tmp_path_factory.mktemp("server-unreachable")
    own_cluster.stop()
    stopped = True
    try:
        with _running(
            workdir, url, idp, server_openai, test_graphs=False, env={"PODIUM_DB_RETRY_FOR": "2"}
        ) as server:
            # 1. Down from the start: the server is up, and says what is wrong.
            created, took = _within_seconds(
                lambda: httpx.post(f"{server.url}/threads", json={}, headers=HEADERS)
            )
            detail = _refused_clearly(created, took, f"cannot connect to {masked}")
            assert "Check that PostgreSQL is running" in detail
            audit, took = _within_seconds(
                lambda: httpx.get(f"{server.url}/podium/audit/verify", headers=HEADERS)
            )
            assert _refused_clearly(audit, took, masked) == detail

            # 2. Back: the same server runs a thread to its gate.
            own_cluster.start()
            stopped = False
            api = get_sync_client(url=server.url, api_key=KEY)
            thread = api.threads.create()["thread_id"]
            out = api.runs.wait(thread, "research_brief", input={"goal": DEMO_GOAL})
            assert out["__interrupt__"], out
            (interrupt,) = api.threads.get_state(thread)["interrupts"]
            decision = {"resume": {interrupt["id"]: {"decision": "approve"}}}

            # 3. Gone while the gate waits: the decision is refused, the gate stays open.
            own_cluster.stop()
            stopped = True
            started = time.monotonic()
            with pytest.raises(httpx.HTTPStatusError) as refused:
                api.runs.wait(thread, "research_brief", command=decision)
            took = time.monotonic() - started
            _refused_clearly(refused.value.response, took, f"the database {masked} was unreachable")

            # 4. Back again: the same decision goes through and the run completes.
            own_cluster.start()
            stopped = False
            done = api.runs.wait(thread, "research_brief", command=decision)
            assert done["status"] == "completed", done
            assert "s3cret" not in server.log.read_text(errors="replace")
    finally:
        if stopped:
            own_cluster.start()
