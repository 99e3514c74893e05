"""podium on `langchain-openai` against a scripted OpenAI-compatible server (tests/fake_openai).

The real client and the real wire protocol: structured plans and choices (JSON schema, tool
calling, text), rate limits with Retry-After, an outage that hands the call to the fallback
model, a request error that is not retried, a stream cut mid-answer, a prompt over the
model's context window, and an agent's question reaching its gate as a native tool call.
Token streaming over the same server: test_openai_streaming.py.
"""

from __future__ import annotations

import pytest

import podium
from podium import AgentSpec, Plan
from podium.gates.decision import decide, pending_gates
from podium.gates.request import Decision
from podium.render import task_table
from podium.tools.human import ask_human
from tests.fake_openai import Cut, Fail, Reply, Structured, chat
from tests.helpers import allowing

PLAN = {
    "tasks": [
        {"id": "t1", "agent": "researcher", "instruction": "Find facts.", "depends_on": []},
        {"id": "t2", "agent": "writer", "instruction": "Write it up.", "depends_on": ["t1"]},
    ]
}
AGENTS = (("researcher", "finds facts"), ("writer", "writes briefs"))


def _run(graph, thread: str = "t", **services) -> tuple[dict, list[float], list]:
    waits: list[float] = []
    with podium.open_runtime("memory://", sleep=waits.append, **services) as rt:
        app = rt.compile(graph)
        out = app.invoke({"goal": "heat pumps"}, {"configurable": {"thread_id": thread}})
        events = rt.services.audit.events("default", thread_id=thread)
    return out, waits, events


@pytest.mark.parametrize(
    ("mode", "expect"),
    [("auto", "json_schema"), ("function_calling", "tool"), ("text", "text")],
)
def test_planner_workflow_completes(openai_server, mode, expect):
    fake = openai_server(
        {
            "gpt-4o-mini": [
                Structured(PLAN, expect),
                Reply("Heat pumps doubled.", usage={"prompt": 50, "completion": 5}),
                Reply("# Brief\nHeat pumps doubled.", usage={"prompt": 70, "completion": 9}),
            ]
        }
    )
    model = chat(fake)
    agents = [AgentSpec(name=n, description=d) for n, d in AGENTS]
    graph = podium.build_workflow(agents, name="briefs", model=model, structured_output=mode)
    out, _, _ = _run(graph)
    assert out["status"] == "completed", out.get("error")
    assert out["answer"] == "# Brief\nHeat pumps doubled."
    assert [t["agent"] for t in out["plan"]] == ["researcher", "writer"]
    assert out["usage"]["writer"]["input_tokens"] == 70
    [plan_request] = fake.requests["gpt-4o-mini"][:1]
    assert ("response_format" in plan_request) == (expect == "json_schema")


def test_router_workflow_completes_with_native_choices(openai_server):
    fake = openai_server(
        {
            "gpt-4o": [
                Structured({"next": "researcher", "instruction": "Find facts."}, "json_schema"),
                Structured({"next": "FINISH", "instruction": ""}, "json_schema"),
            ],
            "gpt-4o-mini": [Reply("Heat pumps doubled.")],
        }
    )
    agents = [AgentSpec(name="researcher", model=chat(fake))]
    graph = podium.build_workflow(
        agents, name="routed", supervisor="router", model=chat(fake, "gpt-4o")
    )
    out, _, _ = _run(graph)
    assert out["status"] == "completed" and out["answer"] == "Heat pumps doubled."
    assert out["usage"]["supervisor"]["calls"] == 2


def test_an_invalid_native_plan_gets_one_repair_round_with_the_error(openai_server):
    bad = {"tasks": [{"id": "t1", "agent": "nobody", "instruction": "x", "depends_on": []}]}
    good = {"tasks": [{"id": "t1", "agent": "writer", "instruction": "x", "depends_on": []}]}
    fake = openai_server(
        {
            "gpt-4o-mini": [
                Structured(bad, "json_schema"),
                Structured(good, "json_schema"),
                Reply("done"),
            ]
        }
    )
    graph = podium.build_workflow([AgentSpec(name="writer")], name="fix", model=chat(fake))
    out, _, _ = _run(graph)
    assert out["status"] == "completed"
    repair = fake.requests["gpt-4o-mini"][1]["messages"][-1]["content"]
    assert "unknown agent 'nobody'" in repair


def test_a_429_is_retried_after_the_providers_retry_after(openai_server):
    fake = openai_server(
        {"gpt-4o-mini": [Fail(429, "slow down", {"retry-after": "7"}), Reply("fine")]}
    )
    graph = podium.build_workflow(
        [AgentSpec(name="writer", model=chat(fake))],
        name="limited",
        supervisor=Plan.chain(("writer", "Write.")),
    )
    out, waits, events = _run(graph)
    assert out["status"] == "completed" and out["answer"] == "fine"
    assert waits == [7.0]
    [retry] = [e for e in events if e.kind == "error" and "retrying" in e.payload]
    assert retry.payload["error_type"].endswith("RateLimitError")


def test_an_outage_hands_the_agent_to_its_fallback_model(openai_server):
    down = [Fail(503, "overloaded")] * 3  # the first try and the policy's two retries
    fake = openai_server({"gpt-4o-mini": down, "gpt-4o": [Reply("from the backup model")]})
    graph = podium.build_workflow(
        [AgentSpec(name="writer", model=[chat(fake), chat(fake, "gpt-4o")])],
        name="degraded",
        supervisor=Plan.chain(("writer", "Write.")),
    )
    out, waits, events = _run(graph)
    assert out["status"] == "completed" and out["answer"] == "from the backup model"
    assert len(waits) == 2
    [switch] = [e for e in events if e.kind == "escalation"]
    assert (switch.payload["from"], switch.payload["to"]) == ("gpt-4o-mini", "gpt-4o")
    assert "overloaded" in switch.payload["error"]
    assert out["tasks"]["t1"]["model_fallbacks"] == [{"from": "gpt-4o-mini", "to": "gpt-4o"}]
    assert "model fallback: gpt-4o-mini -> gpt-4o" in task_table(out)


def test_a_policy_model_list_names_the_fallback(
    openai_server, tmp_path, monkeypatch, models_from_env
):
    fake = openai_server(
        {"gpt-4o-mini": [Fail(503)], "gpt-4o": [Reply("backup")]},
    )
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "agents:\n  writer:\n    model: [gpt-4o-mini, 'openai:gpt-4o']\n    retry: {attempts: 1}\n"
    )
    # The policy names models by string: they are made from the environment.
    monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    graph = podium.build_workflow(
        [AgentSpec(name="writer", model=chat(fake))],
        name="policied",
        supervisor=Plan.chain(("writer", "Write.")),
        policies=policy,
    )
    out, _, events = _run(graph)
    assert out["answer"] == "backup"
    assert [e.payload["to"] for e in events if e.kind == "escalation"] == ["gpt-4o"]


def test_a_400_is_not_retried(openai_server):
    fake = openai_server({"gpt-4o-mini": [Fail(400, "messages: invalid role")]})
    graph = podium.build_workflow(
        [AgentSpec(name="writer", model=[chat(fake), chat(fake, "gpt-4o")])],
        name="rejected",
        supervisor=Plan.chain(("writer", "Write.")),
    )
    out, waits, events = _run(graph)
    assert out["status"] == "failed" and waits == []
    assert "Error code: 400" in out["tasks"]["t1"]["error"]
    assert "invalid role" in out["tasks"]["t1"]["error"]
    assert not [e for e in events if e.kind == "escalation"]


def test_a_stream_cut_mid_answer_is_retried_whole(openai_server):
    fake = openai_server(
        {"gpt-4o-mini": [Cut("The answer is"), Reply("The answer is 42 .")]},
    )
    graph = podium.build_workflow(
        [AgentSpec(name="writer", model=chat(fake, streaming=True))],
        name="cut",
        supervisor=Plan.chain(("writer", "Answer.")),
    )
    out, waits, _ = _run(graph)
    assert out["status"] == "completed" and out["answer"] == "The answer is 42 ."
    assert len(waits) == 1
    assert all(r["stream"] for r in fake.requests["gpt-4o-mini"])


OVERFLOW = (
    "This model's maximum context length is 128000 tokens. However, your messages resulted "
    "in 131072 tokens. Please reduce the length of the messages."
)


def _overflow() -> Fail:
    return Fail(400, OVERFLOW, code="context_length_exceeded", type="invalid_request_error")


def test_a_prompt_over_the_context_window_fails_the_task_saying_so(openai_server):
    # The fallback model is never asked: the same prompt would overflow it too.
    fake = openai_server({"gpt-4o-mini": [_overflow()], "gpt-4o": []})
    graph = podium.build_workflow(
        [AgentSpec(name="writer", model=[chat(fake), chat(fake, "gpt-4o")])],
        name="overflow",
        supervisor=Plan.chain(("writer", "Write.")),
    )
    out, waits, events = _run(graph)
    assert out["status"] == "failed" and waits == []  # not retried
    task = out["tasks"]["t1"]
    error = task["error"]
    assert error.startswith("ContextWindowExceeded: the prompt of agent 'writer' exceeds the ")
    # The window comes from the model's profile, the numbers from the provider.
    assert "context window (128,000 tokens) of model 'gpt-4o-mini'" in error
    assert "maximum context length is 128000 tokens" in error and "131072" in error
    assert "shorten what the task sends" in error and "larger context window" in error
    assert task["status"] == "dead_lettered"
    assert [f["class"] for f in task["failures"]] == ["permanent"]
    assert not [e for e in events if e.kind == "escalation"]
    [failed] = [e for e in events if e.kind == "error" and e.payload.get("model")]
    assert failed.payload["error_type"] == "ContextWindowExceeded"
    assert len(fake.requests["gpt-4o-mini"]) == 1


def test_a_plan_prompt_over_the_context_window_fails_the_run_saying_so(openai_server):
    fake = openai_server({"gpt-4o-mini": [_overflow()]})
    graph = podium.build_workflow(
        [AgentSpec(name=n, description=d) for n, d in AGENTS], name="big", model=chat(fake)
    )
    out, waits, _ = _run(graph)
    assert out["status"] == "failed" and waits == []
    assert out["error"].startswith("the supervisor could not make a valid plan:")
    assert "the prompt of agent 'supervisor' exceeds the context window" in out["error"]
    assert "of model 'gpt-4o-mini'" in out["error"]


def test_an_agents_question_reaches_its_gate_as_a_native_tool_call(openai_server):
    # The only model output a gate is made of: a tool call the provider returns as such
    # (arguments checked against the tool's schema), not text podium parses.
    fake = openai_server(
        {
            "gpt-4o-mini": [
                Reply(tool_calls=[{"name": "ask_human", "args": {"question": "Which region?"}}]),
                Reply("A brief on Europe."),
            ]
        }
    )
    graph = podium.build_workflow(
        [AgentSpec(name="writer", tools=[ask_human], model=chat(fake))],
        name="asks",
        supervisor=Plan.chain(("writer", "Write the brief.")),
        policies=allowing(writer=["ask_human"]),
    )
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(graph)
        config = {"configurable": {"thread_id": "q"}}
        app.invoke({"goal": "heat pumps"}, config)
        [gate] = pending_gates(app, "q")
        assert (gate.request.kind, gate.request.question) == ("question", "Which region?")
        out = decide(
            app,
            "q",
            Decision(decision="respond", response="Europe"),
            context=podium.RunContext(tenant_id="default", user_id="ana"),
        )
    assert out["answer"] == "A brief on Europe."
    asked, answered = fake.requests["gpt-4o-mini"]
    [schema] = [t["function"] for t in asked["tools"] if t["function"]["name"] == "ask_human"]
    assert schema["parameters"]["required"] == ["question"]
    assert answered["messages"][-1] == {
        "role": "tool",
        "content": "Europe",
        "tool_call_id": answered["messages"][-2]["tool_calls"][0]["id"],
    }


async def test_a_prompt_over_the_context_window_on_an_async_runtime(openai_server):
    fake = openai_server({"gpt-4o-mini": [_overflow()]})
    graph = podium.build_workflow(
        [AgentSpec(name="writer", model=chat(fake))],
        name="overflow",
        supervisor=Plan.chain(("writer", "Write.")),
    )
    async with podium.open_async_runtime("memory://") as rt:
        out = await rt.compile(graph).ainvoke(
            {"goal": "heat pumps"}, {"configurable": {"thread_id": "a"}}
        )
    assert out["status"] == "failed"
    assert out["tasks"]["t1"]["error"].startswith("ContextWindowExceeded: the prompt of agent")
