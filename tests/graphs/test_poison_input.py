"""Bad input ends a run `failed` with the reason, on every back end; plans have a size cap."""

from __future__ import annotations

import json
import uuid

import pytest
from langchain_core.messages import HumanMessage

import podium
from podium.errors import ConfigurationError
from podium.graphs.intake import check_input
from podium.runtime import open_runtime


def _flow(scripted, *, plan: podium.Plan | None = None, **options):
    worker = scripted(name="worker")  # never called: the input is refused first
    return podium.build_workflow(
        [podium.AgentSpec(name="worker", model=worker)],
        name="poison",
        supervisor=plan or podium.Plan.chain(("worker", "work")),
        **options,
    )


POISON = {
    "nul": ({"goal": "a\x00b"}, "goal contains a NUL character (\\x00) at position 1"),
    "surrogate": ({"goal": "ab\ud800"}, "goal contains a lone surrogate ('\\ud800') at position 2"),
    "message": (
        {"messages": [HumanMessage("hi\x00")]},
        "messages[0] content contains a NUL character",
    ),
}


@pytest.mark.parametrize("case", sorted(POISON))
def test_unstorable_text_fails_the_run_on_every_back_end(db_url, scripted, case):
    inputs, reason = POISON[case]
    thread = f"poison-{case}-{uuid.uuid4().hex[:6]}"
    with open_runtime(db_url) as rt:
        app = rt.compile(_flow(scripted))
        out = app.invoke(inputs, {"configurable": {"thread_id": thread}})
        assert out["status"] == "failed"
        assert out["error"].startswith("the input was refused: ")
        assert reason in out["error"]
        # What was stored is the cleaned text (U+FFFD), the same on every back end.
        stored = app.get_state({"configurable": {"thread_id": thread}}).values
        assert "\x00" not in json.dumps(stored["goal"]) and "\ufffd" in stored["goal"]
        assert rt.threads.get(thread, tenant_id="default").status == "failed"
    # A clean goal on the same thread runs normally afterwards.
    with open_runtime(db_url) as rt:
        flow = podium.build_workflow(
            [podium.AgentSpec(name="worker", model=scripted("done", name="w2"))],
            name="poison",
            supervisor=podium.Plan.chain(("worker", "work")),
        )
        out = rt.compile(flow).invoke({"goal": "fine"}, {"configurable": {"thread_id": thread}})
        assert out["status"] == "completed", out.get("error")


def test_check_input_leaves_clean_input_alone():
    clean = {"goal": "plain text, accents éü and emoji 🎉"}
    assert check_input(clean) is clean
    assert check_input(None) is None


def test_oversized_goal_fails_before_any_model_call(scripted):
    with open_runtime("memory://") as rt:
        app = rt.compile(_flow(scripted, max_goal_chars=1000))
        out = app.invoke({"goal": "x" * 1001}, {"configurable": {"thread_id": "big"}})
    assert out["status"] == "failed"
    assert (
        "the goal is 1,001 characters long; workflow 'poison' takes at most 1,000" in (out["error"])
    )


def test_policy_caps_the_goal_and_the_plan(tmp_path, scripted):
    policy = tmp_path / "limits.yaml"
    policy.write_text("workflows:\n  poison:\n    max_goal_chars: 10\n    max_tasks: 1\n")
    with pytest.raises(ConfigurationError, match="the plan has 2 tasks; at most 1"):
        _flow(
            scripted,
            plan=podium.Plan.chain(("worker", "a"), ("worker", "b")),
            policies=policy,
        )
    with open_runtime("memory://") as rt:
        app = rt.compile(_flow(scripted, policies=policy))
        out = app.invoke({"goal": "eleven char"}, {"configurable": {"thread_id": "p"}})
    assert "takes at most 10" in out["error"]


def test_a_planner_plan_over_max_tasks_is_asked_again_then_fails(scripted):
    tasks = [{"id": f"t{i}", "agent": "worker", "instruction": "x"} for i in range(4)]
    big = json.dumps({"tasks": tasks})
    planner = scripted(big, big, name="planner")
    flow = podium.build_workflow(
        [podium.AgentSpec(name="worker", model=scripted(name="worker"))],
        name="poison",
        supervisor="planner",
        model=planner,
        max_tasks=3,
    )
    with open_runtime("memory://") as rt:
        out = rt.compile(flow).invoke({"goal": "g"}, {"configurable": {"thread_id": "p"}})
    assert out["status"] == "failed"
    assert "the plan has 4 tasks; at most 3 are allowed" in out["error"]
    # The second request carried the error back to the planner.
    assert "at most 3 are allowed" in planner.calls[1][-1].text


def test_a_budget_refusal_of_the_supervisor_fails_the_run(tmp_path, scripted):
    policy = tmp_path / "tiny.yaml"
    policy.write_text("global:\n  budgets:\n    per_run: {tokens: 50}\n")
    flow = podium.build_workflow(
        [podium.AgentSpec(name="worker", model=scripted(name="worker"))],
        name="poison",
        supervisor="planner",
        model=scripted(name="planner"),
        policies=policy,
    )
    with open_runtime("memory://") as rt:
        out = rt.compile(flow).invoke({"goal": "g" * 5000}, {"configurable": {"thread_id": "b"}})
    assert out["status"] == "failed"
    assert "its model call was refused" in out["error"] and "budget" in out["error"]


def test_a_200_task_chain_completes(scripted):
    steps = [("worker", f"step {i}") for i in range(200)]
    worker = scripted(*[f"done {i}" for i in range(200)], name="worker")
    flow = podium.build_workflow(
        [podium.AgentSpec(name="worker", model=worker)],
        name="chain",
        supervisor=podium.Plan.chain(*steps),
        max_tasks=200,
    )
    with open_runtime("memory://") as rt:
        out = rt.compile(flow).invoke({"goal": "g"}, {"configurable": {"thread_id": "c"}})
    assert out["status"] == "completed", out.get("error")
    assert len(out["results"]) == 200


def test_a_static_plan_over_the_default_cap_is_refused_at_build(scripted):
    steps = [("worker", f"step {i}") for i in range(51)]
    with pytest.raises(ConfigurationError, match="the plan has 51 tasks; at most 50"):
        _flow(scripted, plan=podium.Plan.chain(*steps))
