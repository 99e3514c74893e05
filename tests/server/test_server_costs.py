"""Costs of a server run on a real client: `wire_brief` (tests/server/wire.py) runs on
`openai:gpt-4o-mini` over the scripted OpenAI-compatible server, streamed with
["custom", "messages-tuple"]. Its usage, as the stream reports it, is in the run's state,
podium's ledger (`/podium/threads/{id}/costs`, `podium costs`) and Langfuse's generation
(`cost_details`), priced the same everywhere."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from langgraph_sdk import get_sync_client

from podium.cli import main
from podium.streaming import SERVER_STREAM_MODES, Token, server_part
from tests.fake_openai import Reply

WIRE_MODEL = "gpt-4o-mini"  # wire_brief's model (tests/server/wire.py)
ACME_EDITOR = "acme-editor-key"
ANSWER = "Heat pumps sold half again as many units in three years, and storage grew fourfold."
#: gpt-4o-mini per 1M tokens: 0.15 input, 0.075 cached input, 0.60 output.
COST = (1000 * 0.15 + 200 * 0.075 + 300 * 0.60) / 1_000_000


def _generations(server, thread_id: str) -> list[dict[str, str]]:
    """Attributes of the Langfuse generations of the thread's traces."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    spans = []
    for body in list(server.langfuse.exports):
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attrs = {a.key: a.value.string_value for a in span.attributes}
                    spans.append((span.trace_id, attrs))
    traces = {t for t, attrs in spans if attrs.get("session.id") == thread_id}
    return [
        attrs
        for t, attrs in spans
        if t in traces and attrs.get("langfuse.observation.type") == "generation"
    ]


def test_a_server_run_records_the_providers_usage_and_its_cost(server, capsys) -> None:
    fake = server.openai
    fake.script(
        WIRE_MODEL, [Reply(ANSWER, usage={"prompt": 1200, "completion": 300, "cached": 200})]
    )
    api = get_sync_client(url=server.url, api_key=ACME_EDITOR)
    thread_id = api.threads.create()["thread_id"]
    parts = [
        server_part(part.event, part.data)
        for part in api.runs.stream(
            thread_id,
            "wire_brief",
            input={"goal": "heat pumps"},
            stream_mode=SERVER_STREAM_MODES,
            stream_subgraphs=True,
        )
    ]
    fake.assert_consumed()
    [request] = fake.requests[WIRE_MODEL]
    assert request["stream"] is True and request["stream_options"] == {"include_usage": True}
    tokens = [d for k, d in filter(None, parts) if k == "token" and isinstance(d, Token)]
    streamed = [t.text for t in tokens if t.task_id == "t1" and not t.whole and t.text]
    assert len(streamed) >= len(ANSWER.split()) - 1 and "".join(streamed) == ANSWER

    values = api.threads.get_state(thread_id)["values"]
    assert values["status"] == "completed" and values["answer"] == ANSWER
    usage = values["usage"]["writer"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (1200, 300)
    assert usage["cost_usd"] == pytest.approx(COST)

    # podium's ledger, through the server's own route and through `podium costs`.
    route = httpx.get(
        f"{server.url}/podium/threads/{thread_id}/costs", headers={"x-api-key": ACME_EDITOR}
    )
    assert route.status_code == 200, route.text
    [row] = route.json()["rows"]
    assert row["key"] == "writer" and row["calls"] == 1
    assert (row["input_tokens"], row["output_tokens"], row["cached_tokens"]) == (1200, 300, 200)
    assert row["cost_usd"] == pytest.approx(COST)
    assert main(["costs", "--db", server.database_url, "--tenant", "acme", "--by", "thread"]) == 0
    [line] = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(thread_id)]
    assert line.split()[-1] == f"{COST:.4f}"

    # Langfuse gets the generation with its usage and cost per token kind.
    deadline = time.monotonic() + 30
    while not _generations(server, thread_id) and time.monotonic() < deadline:
        time.sleep(0.25)
    [generation] = _generations(server, thread_id)
    costs = json.loads(generation["langfuse.observation.cost_details"])
    assert costs["total"] == pytest.approx(COST)
    assert costs["input_cache_read"] == pytest.approx(200 * 0.075e-6)
    details = json.loads(generation["langfuse.observation.usage_details"])
    assert details["input_cache_read"] == 200
