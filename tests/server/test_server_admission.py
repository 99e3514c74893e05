"""Tenant backpressure on a real LangGraph dev server: past a tenant's `max_runs`
(capped_brief's policy: 2) a run create is a 429 with `Retry-After`; other tenants are
not held up, and the tenant gets room again once its runs finish."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client

from .capped import MAX_RUNS

INITECH, GLOBEX = "initech-editor-key", "globex-editor-key"


def client(server, key: str) -> Any:
    return get_sync_client(url=server.url, api_key=key)


def start(api: Any) -> dict:
    thread = api.threads.create()["thread_id"]
    return api.runs.create(thread, "capped_brief", input={"goal": "a short note"})


def test_runs_past_max_runs_are_429_with_retry_after_until_one_finishes(server) -> None:
    ivy, gus = client(server, INITECH), client(server, GLOBEX)
    running = [start(ivy) for _ in range(MAX_RUNS)]

    with pytest.raises(httpx.HTTPStatusError) as refused:
        start(ivy)
    answer = refused.value.response
    assert answer.status_code == 429, answer.text
    assert answer.headers["retry-after"] == "5"
    assert "tenant 'initech' has 2 runs in flight or queued" in answer.text
    assert "(global.max_runs) is 2" in answer.text

    # Another tenant's runs are not held up by initech's.
    other = start(gus)
    gus.runs.join(other["thread_id"], other["run_id"])

    for run in running:
        ivy.runs.join(run["thread_id"], run["run_id"])
    later = start(ivy)
    ivy.runs.join(later["thread_id"], later["run_id"])
    assert ivy.threads.get(later["thread_id"])["status"] == "idle"
    assert ivy.threads.get_state(later["thread_id"])["values"]["status"] == "completed"
