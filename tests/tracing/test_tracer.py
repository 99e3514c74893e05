"""Langfuse tracing against a local OTLP endpoint: spans, structure, ids, usage, cost, privacy.

A small HTTP server stands in for Langfuse: it accepts the SDK's OTLP/protobuf exports
(POST /api/public/otel/v1/traces) and answers 200 to anything else it is sent (scores).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import SpanProcessor

import podium
from podium.errors import ConfigurationError
from podium.gates.decision import adecide, apending_gates, decide, pending_gates
from podium.graphs.research_brief import DEMO_GOAL, build_research_brief, default_policy_path
from podium.testing import tool_call
from podium.tracing.tracer import (
    COST_SCORE,
    DEFAULT_HOST,
    LangfuseSettings,
    Tracer,
    settings_from_env,
    tracing_config,
)
from tests.helpers import allowing

OTLP_PATH = "/api/public/otel/v1/traces"
PRICES = "prices: {demo: [1.5, 6.0]}"  # USD per 1M input / output tokens
AGENTS = ["researcher", "analyst", "writer"]
TOOLS = {"search_corpus": "researcher", "calculate": "analyst", "publish_report": "writer"}
EDITOR = podium.RunContext(tenant_id="acme", user_id="ed", roles=frozenset({"editor"}))


# -- the stand-in Langfuse server --------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Collector:
    """Records every request; answers 200 with an empty JSON object."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                headers = {k.lower(): v for k, v in self.headers.items()}
                collector.requests.append(Request(self.command, self.path, headers, body))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            do_POST = do_GET = do_PUT = do_PATCH = _record

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def spans(self) -> list[Span]:
        found = []
        for request in self.requests:
            if request.method != "POST" or request.path != OTLP_PATH:
                continue
            export = ExportTraceServiceRequest()
            export.ParseFromString(request.body)
            for resource in export.resource_spans:
                for scope in resource.scope_spans:
                    found.extend(Span.of(span) for span in scope.spans)
        return found

    def scores(self) -> list[dict]:
        found = []
        for request in self.requests:
            if request.method == "POST" and "scores" in request.path:
                body = json.loads(request.body)
                found.extend(body if isinstance(body, list) else [body])
        return found


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    attrs: dict

    @classmethod
    def of(cls, span) -> Span:
        attrs = {}
        for item in span.attributes:
            kind = item.value.WhichOneof("value")
            if kind == "array_value":
                attrs[item.key] = [v.string_value for v in item.value.array_value.values]
            else:
                attrs[item.key] = getattr(item.value, kind)
        return cls(
            name=span.name,
            trace_id=span.trace_id.hex(),
            span_id=span.span_id.hex(),
            parent_id=span.parent_span_id.hex() or None,
            attrs=attrs,
        )

    @property
    def type(self) -> str | None:
        return self.attrs.get("langfuse.observation.type")

    def meta(self, key: str):
        raw = self.attrs.get(f"langfuse.observation.metadata.{key}")
        return None if raw is None else json.loads(raw)


class Tree:
    def __init__(self, spans: list[Span]) -> None:
        self.spans = spans
        self.by_id = {s.span_id: s for s in spans}

    def named(self, name: str) -> list[Span]:
        return [s for s in self.spans if s.name == name]

    def ancestors(self, span: Span) -> list[Span]:
        chain = []
        while span.parent_id is not None:
            span = self.by_id[span.parent_id]
            chain.append(span)
        return chain

    def task_of(self, span: Span) -> Span:
        return next(a for a in self.ancestors(span) if a.name.startswith("task "))


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    yield server
    server.close()


@pytest.fixture
def tracer(collector) -> Iterator[Tracer]:
    # A fresh public key per test: the SDK keeps one client per key and process.
    settings = LangfuseSettings(f"pk-lf-{uuid.uuid4().hex[:8]}", "sk-lf-test", collector.url)
    made = Tracer(settings)
    yield made
    made.shutdown()


def _ids(thread: str, user: str = "ana", agents=AGENTS, workflow="research_brief") -> dict:
    return dict(thread_id=thread, tenant_id="acme", user_id=user, workflow=workflow, agents=agents)


def _run_demo_traced(app, tracer: Tracer, thread: str, goal: str = DEMO_GOAL) -> dict:
    config = {"configurable": {"thread_id": thread}, **tracing_config(tracer, **_ids(thread))}
    out = app.invoke({"goal": goal}, config, context=podium.RunContext("acme", "ana"))
    while pending_gates(app, thread):
        traced = app.with_config(tracing_config(tracer, **_ids(thread, user="ed")))
        out = decide(traced, thread, "approve", context=EDITOR)
    return out


# -- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"LANGFUSE_HOST": "http://127.0.0.1:9"}, None),
        ({"LANGFUSE_PUBLIC_KEY": " ", "LANGFUSE_SECRET_KEY": ""}, None),
        (
            {"LANGFUSE_PUBLIC_KEY": "pk", "LANGFUSE_SECRET_KEY": "sk"},
            LangfuseSettings("pk", "sk", DEFAULT_HOST),
        ),
        (
            {
                "LANGFUSE_PUBLIC_KEY": "pk",
                "LANGFUSE_SECRET_KEY": "sk",
                "LANGFUSE_HOST": "http://lf.local:3000/",
            },
            LangfuseSettings("pk", "sk", "http://lf.local:3000"),
        ),
        (
            {
                "LANGFUSE_PUBLIC_KEY": "pk",
                "LANGFUSE_SECRET_KEY": "sk",
                "LANGFUSE_BASE_URL": "https://eu.lf.example",
            },
            LangfuseSettings("pk", "sk", "https://eu.lf.example"),
        ),
    ],
)
def test_settings_from_env(environ, expected):
    assert settings_from_env(environ) == expected


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"LANGFUSE_PUBLIC_KEY": "pk"}, "LANGFUSE_SECRET_KEY"),
        ({"LANGFUSE_SECRET_KEY": "sk"}, "LANGFUSE_PUBLIC_KEY"),
        (
            {"LANGFUSE_PUBLIC_KEY": "pk", "LANGFUSE_SECRET_KEY": "sk", "LANGFUSE_HOST": "lf:3000"},
            "'lf:3000'",
        ),
    ],
)
def test_settings_from_env_refuses_half_configurations(environ, named):
    with pytest.raises(ConfigurationError, match=named):
        settings_from_env(environ)


def test_settings_never_show_the_secret():
    assert "sk-secret" not in repr(LangfuseSettings("pk", "sk-secret", DEFAULT_HOST))


def test_tracing_config_without_tracer_is_empty():
    assert tracing_config(None, **_ids("t")) == {}


# -- a traced run ------------------------------------------------------------------------


def test_demo_run_is_one_trace_with_supervisor_task_tool_and_generation_spans(
    collector, tracer, tmp_path
):
    policy = tmp_path / "policy.yaml"  # the shipped policy, with a price for the demo model
    policy.write_text(default_policy_path().read_text().replace("prices: {}", PRICES))
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(build_research_brief(policies=policy))
        out = _run_demo_traced(app, tracer, "brief-1")
        [ledger] = rt.services.ledger.totals("acme", by="thread", thread_id="brief-1")
    assert out["status"] == "completed"
    cost = ledger.cost_usd  # podium's own figure
    assert cost > 0
    trace_id = tracer.record_cost(thread_id="brief-1", cost_usd=cost, usage=out["usage"])
    tracer.flush()
    tree = Tree(collector.spans())

    # One trace; its single root is the workflow; the resume after the gate nests under it.
    assert {s.trace_id for s in tree.spans} == {trace_id}
    roots = [s for s in tree.spans if s.parent_id is None]
    assert [r.name for r in roots] == ["research_brief"]
    root = roots[0]
    resumed = [s for s in tree.named("research_brief") if s is not root]
    assert len(resumed) == 1 and resumed[0].parent_id == root.span_id
    run_roots = {root.span_id, resumed[0].span_id}

    # Supervisor turns and one span per task, each directly under a root of the run.
    assert tree.named("supervisor")
    assert all(s.parent_id in run_roots for s in tree.named("supervisor"))
    # A node span shows a digest of the workflow state, not every message and result.
    last = json.loads(tree.named("supervisor")[-1].attrs["langfuse.observation.input"])
    assert set(last) == {"goal", "round", "status", "tasks", "results", "messages"}
    assert last["goal"] == out["goal"] and isinstance(last["results"], int)
    assert set(last["tasks"]) <= set(out["tasks"])
    assert all(s.name != "route" for s in tree.spans)  # routing functions run untraced
    # A task's worker graph is folded into the task: its generations and tool calls hang
    # directly under the task span, with no worker-graph or worker-node span between.
    folded = {"agent", "tools", "researcher", "analyst", "writer"}
    assert not [s.name for s in tree.spans if s.name in folded]
    task_spans = {s.span_id for s in tree.spans if s.meta("podium_task_id")}
    in_tasks = [
        g
        for g in tree.spans
        if g.type in ("generation", "tool")
        and any(a.span_id in task_spans for a in tree.ancestors(g))
    ]
    assert in_tasks and all(g.parent_id in task_spans for g in in_tasks)

    for task in out["tasks"].values():
        spans = tree.named(f"task {task['id']} ({task['agent']})")
        assert spans, f"no span for task {task['id']}"
        for span in spans:
            assert span.parent_id in run_roots
            assert span.meta("podium_task_id") == task["id"]
            assert span.meta("podium_agent") == task["agent"]
    # The writer's task ran twice: before its gate and after the resume.
    assert len(tree.named("task t4 (writer)")) == 2

    # Every tool call is a tool span inside the task of the agent that owns the tool.
    tool_spans = [s for s in tree.spans if s.type == "tool"]
    assert {s.name for s in tool_spans} == set(TOOLS)
    for span in tool_spans:
        assert tree.task_of(span).meta("podium_agent") == TOOLS[span.name]
    researchers = [t for t, v in out["tasks"].items() if v["agent"] == "researcher"]
    owners = [tree.task_of(s).meta("podium_task_id") for s in tree.named("search_corpus")]
    assert len(researchers) == 2 and sorted(owners) == sorted(researchers)  # one search each

    # Session = thread, user = tenant/user (the decider after the gate), tags on every span.
    tags = {"workflow:research_brief", "agent:researcher", "agent:analyst", "agent:writer"}
    for span in tree.spans:
        assert span.attrs.get("session.id") == "brief-1"
        assert set(span.attrs.get("langfuse.trace.tags") or ()) == tags
        expected_user = "acme/ed" if resumed[0] in [span, *tree.ancestors(span)] else "acme/ana"
        assert span.attrs.get("user.id") == expected_user

    # Generations: model name and token usage, matching podium's own accounting.
    generations = [s for s in tree.spans if s.type == "generation"]
    usage = [json.loads(g.attrs["langfuse.observation.usage_details"]) for g in generations]
    assert {g.attrs.get("langfuse.observation.model.name") for g in generations} == {"demo"}
    assert all(u["input"] > 0 and u["output"] > 0 for u in usage)
    assert len(generations) == sum(u["calls"] for u in out["usage"].values())
    assert sum(u["input"] for u in usage) == sum(u["input_tokens"] for u in out["usage"].values())
    assert sum(u["output"] for u in usage) == sum(u["output_tokens"] for u in out["usage"].values())
    supervisor_generations = [
        g for g in generations if tree.by_id[g.parent_id].name == "supervisor"
    ]
    assert len(supervisor_generations) == out["usage"]["supervisor"]["calls"]

    # podium's own cost figure as a score on the trace.
    [score] = collector.scores()
    assert score["traceId"] == trace_id and score["name"] == COST_SCORE
    assert score["value"] == pytest.approx(cost) and score["dataType"] == "NUMERIC"
    assert score["metadata"]["usage"] == json.loads(json.dumps(out["usage"]))


def test_requests_carry_the_project_credentials(collector, tracer):
    with podium.open_runtime("memory://") as rt:
        _run_demo_traced(rt.compile(build_research_brief()), tracer, "auth-1")
    tracer.flush()
    exports = [r for r in collector.requests if r.path == OTLP_PATH]
    assert exports
    assert all(
        r.headers.get("x-langfuse-public-key") == tracer.settings.public_key for r in exports
    )
    assert all(r.headers.get("content-type") == "application/x-protobuf" for r in exports)
    basic = base64.b64encode(f"{tracer.settings.public_key}:sk-lf-test".encode()).decode()
    assert all(r.headers.get("authorization") == f"Basic {basic}" for r in exports)


def test_each_run_of_a_thread_is_its_own_trace_in_the_thread_session(collector, tracer, scripted):
    graph = podium.build_workflow(
        [podium.AgentSpec(name="clerk", model=scripted("first", "second", name="clerk"))],
        name="chat",
        supervisor=podium.Plan.chain(("clerk", "answer")),
    )
    ids = _ids("chat-1", agents=["clerk"], workflow="chat")
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        for goal in ("one", "two"):
            config = {"configurable": {"thread_id": "chat-1"}, **tracing_config(tracer, **ids)}
            app.invoke({"goal": goal}, config, context=podium.RunContext("acme", "ana"))
            assert tracer.trace_id("chat-1") is not None
    tracer.flush()
    tree = Tree(collector.spans())
    roots = [s for s in tree.spans if s.parent_id is None]
    assert [r.name for r in roots] == ["chat", "chat"]
    assert len({s.trace_id for s in tree.spans}) == 2
    assert tracer.trace_id("chat-1") == roots[-1].trace_id
    assert {s.attrs.get("session.id") for s in tree.spans} == {"chat-1"}


async def test_async_run_sets_session_and_user_on_every_span(collector, tracer):
    thread = "async-1"
    async with podium.open_async_runtime("memory://") as rt:
        app = rt.compile(build_research_brief())
        config = {"configurable": {"thread_id": thread}, **tracing_config(tracer, **_ids(thread))}
        out = await app.ainvoke({"goal": DEMO_GOAL}, config, context=podium.RunContext("acme"))
        while await apending_gates(app, thread):
            traced = app.with_config(tracing_config(tracer, **_ids(thread)))
            out = await adecide(traced, thread, "approve", context=EDITOR)
    assert out["status"] == "completed"
    tracer.flush()
    tree = Tree(collector.spans())
    assert len({s.trace_id for s in tree.spans}) == 1
    assert {s.attrs.get("session.id") for s in tree.spans} == {thread}
    assert {s.attrs.get("user.id") for s in tree.spans} == {"acme/ana"}
    assert {s.name for s in tree.spans if s.type == "tool"} == set(TOOLS)


# -- privacy -----------------------------------------------------------------------------


@tool
def find_contact(name: str) -> str:
    """Find how to reach a person."""
    return f"{name}: ana.lopez@example.com, +1 415 555 0100"


@pytest.mark.parametrize("redact", [True, False])
def test_personal_data_is_redacted_before_export(collector, scripted, redact):
    settings = LangfuseSettings(f"pk-lf-{uuid.uuid4().hex[:8]}", "sk", collector.url)
    tracer = Tracer(settings, redact_pii=redact)
    clerk = podium.AgentSpec(
        name="clerk",
        tools=[find_contact],
        model=scripted(tool_call("find_contact", {"name": "Ana"}), "Found Ana.", name="clerk"),
    )
    graph = podium.build_workflow(
        [clerk],
        name="contacts",
        supervisor=podium.Plan.chain(("clerk", "find Ana")),
        policies=allowing(clerk=["find_contact"]),
    )
    ids = _ids("pii-1", agents=["clerk"], workflow="contacts")
    try:
        with podium.open_runtime("memory://") as rt:
            config = {"configurable": {"thread_id": "pii-1"}, **tracing_config(tracer, **ids)}
            goal = "Reach Ana (card 4111 1111 1111 1111, mail ana@corp.example)"
            rt.compile(graph).invoke({"goal": goal}, config)
        tracer.flush()
    finally:
        tracer.shutdown()
    bodies = b"".join(r.body for r in collector.requests)
    assert any(s.name == "find_contact" for s in collector.spans())
    for raw in (b"ana.lopez@example.com", b"415 555 0100", b"4111 1111 1111 1111", b"ana@corp"):
        assert (raw in bodies) is not redact
    assert (b"[email redacted]" in bodies) is redact


# -- off, and lifecycle ------------------------------------------------------------------

_NO_TRACING_RUN = """
import os, sys
import podium
from podium.gates.decision import decide, pending_gates
from podium.graphs.research_brief import DEMO_GOAL, build_research_brief, default_policy_path
from podium.tracing.tracer import Tracer, settings_from_env, tracing_config

settings = settings_from_env(os.environ)
assert settings is None, settings
tracer = Tracer(settings) if settings else None
ids = dict(thread_id="off-1", tenant_id="acme", user_id="ana", workflow="research_brief")
fragment = tracing_config(tracer, **ids)
assert fragment == {}, fragment
editor = podium.RunContext(tenant_id="acme", user_id="ed", roles=frozenset({"editor"}))
with podium.open_runtime("memory://") as rt:
    app = rt.compile(build_research_brief())
    out = app.invoke({"goal": DEMO_GOAL}, {"configurable": {"thread_id": "off-1"}, **fragment},
                     context=podium.RunContext("acme", "ana"))
    while pending_gates(app, "off-1"):
        out = decide(app, "off-1", "approve", context=editor)
assert out["status"] == "completed", out["status"]
loaded = sorted(m for m in sys.modules
                if m.split(".")[0] == "langfuse" or m.startswith("opentelemetry.exporter"))
print("loaded:", loaded)
"""


def test_without_langfuse_variables_nothing_is_loaded_or_sent(collector, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANGFUSE_")}
    env["LANGFUSE_HOST"] = collector.url  # a host alone does not turn tracing on
    script = tmp_path / "run_untraced.py"
    script.write_text(textwrap.dedent(_NO_TRACING_RUN))
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    # The SDK was never imported, so no client was constructed and no socket opened.
    assert "loaded: []" in done.stdout
    assert collector.requests == []


def test_record_cost_without_a_traced_run_sends_nothing(collector, tracer):
    assert tracer.record_cost(thread_id="never-traced", cost_usd=1.5) is None
    tracer.flush()
    assert collector.requests == []


def test_shutdown_stops_tracing_and_the_key_can_be_reused(collector, scripted):
    key = f"pk-lf-{uuid.uuid4().hex[:8]}"
    first = Tracer(LangfuseSettings(key, "sk", "http://127.0.0.1:9"))
    first.shutdown()
    first.shutdown()  # idempotent
    assert first.callbacks(**_ids("x")) == []
    assert tracing_config(first, **_ids("x"))["callbacks"] == []

    second = Tracer(LangfuseSettings(key, "sk", collector.url))
    graph = podium.build_workflow(
        [podium.AgentSpec(name="clerk", model=scripted("ok", name="clerk"))],
        name="again",
        supervisor=podium.Plan.chain(("clerk", "answer")),
    )
    ids = _ids("again-1", agents=["clerk"], workflow="again")
    try:
        with podium.open_runtime("memory://") as rt:
            config = {"configurable": {"thread_id": "again-1"}, **tracing_config(second, **ids)}
            rt.compile(graph).invoke({"goal": "g"}, config)
        second.flush()
    finally:
        second.shutdown()
    assert [s.name for s in collector.spans() if s.parent_id is None] == ["again"]


class Mirror(SpanProcessor):
    """An OpenTelemetry span processor that keeps the ids of the spans that end."""

    def __init__(self) -> None:
        self.ended: list[str] = []

    def on_end(self, span) -> None:
        self.ended.append(format(span.get_span_context().span_id, "016x"))


def test_an_added_span_processor_sees_every_span_the_endpoint_gets(collector, tracer, scripted):
    mirror = Mirror()
    tracer.add_span_processor(mirror)
    graph = podium.build_workflow(
        [podium.AgentSpec(name="clerk", model=scripted("ok", name="clerk"))],
        name="mirrored",
        supervisor=podium.Plan.chain(("clerk", "answer")),
    )
    ids = _ids("mirror-1", agents=["clerk"], workflow="mirrored")
    with podium.open_runtime("memory://") as rt:
        config = {"configurable": {"thread_id": "mirror-1"}, **tracing_config(tracer, **ids)}
        rt.compile(graph).invoke({"goal": "g"}, config)
    tracer.flush()
    received = [s.span_id for s in collector.spans()]
    assert received and sorted(mirror.ended) == sorted(received)


def test_the_cli_traces_a_demo_run_when_langfuse_is_configured(collector, tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PODIUM_", "LANGFUSE_"))}
    env.update(
        LANGFUSE_PUBLIC_KEY="pk-lf-cli",
        LANGFUSE_SECRET_KEY="sk-lf-cli",
        LANGFUSE_HOST=collector.url,
    )
    done = subprocess.run(
        [sys.executable, "-m", "podium.cli", "demo", "--approve-all", "--quiet"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    spans = collector.spans()
    names = {span.name for span in spans}
    assert "supervisor" in names and "search_corpus" in names and "publish_report" in names
    assert any(name.startswith("task t4 (writer)") for name in names)
    assert len({span.trace_id for span in spans}) == 1  # the resume joined the run's trace
    assert any(score.get("name") == "podium_cost_usd" for score in collector.scores())


def test_generations_carry_cost_details_priced_per_token_kind(collector, tracer, scripted):
    usage = {
        "input_tokens": 1000,
        "output_tokens": 300,
        "total_tokens": 1300,
        "input_token_details": {"cache_read": 400},
        "output_token_details": {"reasoning": 100},
    }
    model = scripted(AIMessage("priced", usage_metadata=usage), name="clerk")
    model.model_name = "gpt-4o-mini-2024-07-18"  # a dated name, priced as gpt-4o-mini
    graph = podium.build_workflow(
        [podium.AgentSpec(name="clerk", model=model)],
        name="costs",
        supervisor=podium.Plan.chain(("clerk", "answer")),
    )
    ids = _ids("cost-1", agents=["clerk"], workflow="costs")
    with podium.open_runtime("memory://") as rt:
        config = {"configurable": {"thread_id": "cost-1"}, **tracing_config(tracer, **ids)}
        out = rt.compile(graph).invoke({"goal": "g"}, config)
    tracer.flush()
    [generation] = [s for s in collector.spans() if s.type == "generation"]
    costs = json.loads(generation.attrs["langfuse.observation.cost_details"])
    # gpt-4o-mini: 0.15 input, 0.075 cached input, 0.60 output (reasoning as output) per 1M
    assert costs == pytest.approx(
        {
            "input": 600 * 0.15e-6,
            "input_cache_read": 400 * 0.075e-6,
            "output": 200 * 0.60e-6,
            "output_reasoning": 100 * 0.60e-6,
            "total": 600 * 0.15e-6 + 400 * 0.075e-6 + 300 * 0.60e-6,
        }
    )
    assert out["usage"]["clerk"]["cost_usd"] == pytest.approx(costs["total"])
    # The same token kinds as the usage Langfuse reads from the reply, so each is priced.
    details = json.loads(generation.attrs["langfuse.observation.usage_details"])
    assert {k: details[k] for k in ("input", "input_cache_read", "output_reasoning")} == {
        "input": 600,
        "input_cache_read": 400,
        "output_reasoning": 100,
    }
