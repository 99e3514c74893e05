"""The offline demo model answers podium's own prompts by rule, deterministically."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from podium._demo import DemoChatModel
from podium.graphs.research_brief import DEMO_GOAL, research_agents
from podium.nodes.prompts import (
    PLANNER_SYSTEM,
    ROUTER_SYSTEM,
    WORKER_SYSTEM,
    goal_message,
    progress_message,
    task_message,
)
from podium.plan import parse_choice, parse_plan
from podium.registry import AgentRegistry
from podium.tools import calculate, search_corpus

REGISTRY = AgentRegistry(research_agents())
NAMES = REGISTRY.names


def _planner(goal: str) -> list[BaseMessage]:
    system = PLANNER_SYSTEM.format(name="research_brief", agents=REGISTRY.describe())
    return [SystemMessage(system), HumanMessage(goal_message(goal))]


def _router(goal: str, done: list[dict]) -> list[BaseMessage]:
    system = ROUTER_SYSTEM.format(name="research_brief", agents=REGISTRY.describe())
    return [SystemMessage(system), HumanMessage(progress_message(goal, done))]


def _worker(agent: str, task: dict, inputs: Sequence[dict] = ()) -> list[BaseMessage]:
    spec = REGISTRY.get(agent)
    system = WORKER_SYSTEM.format(
        agent=agent, workflow="research_brief", description=spec.description
    )
    return [SystemMessage(system), HumanMessage(task_message(task, DEMO_GOAL, inputs))]


def _done(*agents: str) -> list[dict]:
    return [
        {"task_id": f"t{i}", "agent": agent, "summary": f"{agent} finished its part."}
        for i, agent in enumerate(agents, start=1)
    ]


@pytest.fixture
def model() -> DemoChatModel:
    return DemoChatModel()


# -- planner ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("goal", "subjects"),
    [
        (DEMO_GOAL, ["heat pump adoption", "grid storage costs"]),
        (
            "Prepare a short report on rooftop solar and policy incentives.",
            ["rooftop solar", "policy incentives"],
        ),
        (
            "Write a brief on heat pumps, grid storage and rooftop solar",
            ["heat pumps", "grid storage", "rooftop solar"],
        ),
    ],
    ids=["demo-goal", "report-with-period", "three-subjects"],
)
def test_plan_has_parallel_research_then_analysis_then_writing(model, goal, subjects):
    reply = model.invoke(_planner(goal))

    plan = parse_plan(reply.text, NAMES)

    research = [t for t in plan.tasks if t.agent == "researcher"]
    assert len(research) == len(subjects)
    for task, subject in zip(research, subjects, strict=True):
        assert task.depends_on == [], "research tasks must run in parallel"
        assert subject in task.instruction
    (analysis,) = [t for t in plan.tasks if t.agent == "analyst"]
    (writing,) = [t for t in plan.tasks if t.agent == "writer"]
    assert set(analysis.depends_on) == {t.id for t in research}
    assert set(writing.depends_on) == {t.id for t in research} | {analysis.id}
    assert len({t.id for t in plan.tasks}) == len(plan.tasks)


def test_plan_for_a_single_subject_has_one_research_task(model):
    plan = parse_plan(model.invoke(_planner("Write a brief on heat pumps")).text, NAMES)
    assert [t.agent for t in plan.tasks] == ["researcher", "analyst", "writer"]
    assert "heat pumps" in plan.tasks[0].instruction
    assert [t.depends_on for t in plan.tasks] == [[], ["t1"], ["t1", "t2"]]


def test_plan_reply_is_json_without_tool_calls(model):
    reply = model.invoke(_planner(DEMO_GOAL))
    assert isinstance(reply, AIMessage)
    assert reply.tool_calls == []
    assert set(json.loads(reply.text)) == {"tasks"}


# -- router -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("done", "expected"),
    [
        ([], "researcher"),
        (["researcher"], "analyst"),
        (["researcher", "researcher"], "analyst"),
        (["researcher", "analyst"], "writer"),
        (["analyst"], "researcher"),
        (["researcher", "analyst", "writer"], "FINISH"),
    ],
    ids=["start", "after-research", "after-two-research", "after-analysis", "out-of-order", "end"],
)
def test_router_picks_the_first_agent_not_yet_done(model, done, expected):
    reply = model.invoke(_router(DEMO_GOAL, _done(*done)))

    choice = parse_choice(reply.text, NAMES)

    assert choice.next == expected
    if expected == "FINISH":
        assert choice.instruction == ""
    else:
        assert choice.instruction.strip()


# -- workers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject"),
    ["heat pump adoption", "grid storage costs"],
)
def test_research_task_calls_the_search_tool_with_the_subject(model, subject):
    task = {"id": "t1", "instruction": f"Find facts about {subject}."}
    reply = model.bind_tools([search_corpus]).invoke(_worker("researcher", task))

    (call,) = reply.tool_calls
    assert call["name"] == "search_corpus"
    assert set(call["args"]) == {"query"}
    assert subject in call["args"]["query"]
    assert not call["args"]["query"].startswith("Find facts about")
    assert call["id"]


@pytest.mark.parametrize(
    ("summary", "expressions"),
    [
        (
            "Heat pump sales rose from 120,000 units in 2021 to 180,000 units in 2024.",
            ["(180000 - 120000) / 120000 * 100"],
        ),
        (
            "The price dropped from 210 to 139 dollars per kilowatt-hour. "
            "Capacity grew from 2 gigawatts in 2020 to 9 gigawatts in 2024.",
            ["(139 - 210) / 210 * 100", "(9 - 2) / 2 * 100"],
        ),
        (
            "Costs fell from about $14,000 to around $11,500.",
            ["(11500 - 14000) / 14000 * 100"],
        ),
    ],
    ids=["units-and-years", "two-changes", "dollars-about"],
)
def test_analysis_task_calls_the_calculator_for_from_to_figures(model, summary, expressions):
    task = {"id": "t3", "instruction": "Quantify the changes reported in the findings."}
    inputs = [{"task_id": "t1", "agent": "researcher", "summary": summary}]
    reply = model.bind_tools([calculate]).invoke(_worker("analyst", task, inputs))

    assert [c["name"] for c in reply.tool_calls] == ["calculate"] * len(expressions)
    assert [c["args"] for c in reply.tool_calls] == [{"expression": e} for e in expressions]
    for call in reply.tool_calls:
        calculate.invoke(call["args"])  # the expressions are ones the real tool accepts
    assert len({c["id"] for c in reply.tool_calls}) == len(expressions)


def test_analysis_without_figures_answers_in_text(model):
    task = {"id": "t3", "instruction": "Quantify the changes."}
    inputs = [{"task_id": "t1", "agent": "researcher", "summary": "Heat pumps are popular."}]
    reply = model.bind_tools([calculate]).invoke(_worker("analyst", task, inputs))
    assert reply.tool_calls == []
    assert reply.text.strip()


# -- usage and determinism ----------------------------------------------------------------

PROMPTS = {
    "planner": (_planner(DEMO_GOAL), []),
    "router": (_router(DEMO_GOAL, _done("researcher")), []),
    "search": (
        _worker("researcher", {"id": "t1", "instruction": "Find facts about heat pumps."}),
        [search_corpus],
    ),
    "calculator": (
        _worker(
            "analyst",
            {"id": "t3", "instruction": "Quantify."},
            [{"task_id": "t1", "agent": "researcher", "summary": "It rose from 2 to 9 units."}],
        ),
        [calculate],
    ),
    "writer": (
        _worker(
            "writer",
            {"id": "t4", "instruction": "Write a short brief."},
            [{"task_id": "t1", "agent": "researcher", "summary": "- [heat-pumps.md] Sales rose."}],
        ),
        [],
    ),
}


def _run(model: DemoChatModel, messages: list[BaseMessage], tools: list) -> AIMessage:
    runnable = model.bind_tools(tools) if tools else model
    return runnable.invoke(messages)


@pytest.mark.parametrize(("messages", "tools"), list(PROMPTS.values()), ids=list(PROMPTS))
def test_usage_metadata_is_set(model, messages, tools):
    reply = _run(model, messages, tools)
    usage = reply.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert reply.response_metadata["model_name"] == "demo"


@pytest.mark.parametrize(("messages", "tools"), list(PROMPTS.values()), ids=list(PROMPTS))
def test_same_input_same_output(messages, tools):
    first = _run(DemoChatModel(), messages, tools)
    second = _run(DemoChatModel(), messages, tools)
    third = _run(DemoChatModel(), messages, tools)

    def strip(reply: AIMessage) -> tuple:
        # Tool-call ids are unique per call on purpose; everything else must repeat exactly.
        calls = [(c["name"], c["args"]) for c in reply.tool_calls]
        return reply.text, calls, reply.usage_metadata

    assert strip(first) == strip(second) == strip(third)


def test_writer_uses_the_findings(model):
    messages, _ = PROMPTS["writer"]
    reply = model.invoke(messages)
    assert reply.tool_calls == []
    assert "Sales rose." in reply.text
    assert "heat-pumps.md" in reply.text
