"""A podium workflow among LangGraph's own parts: schemas, `create_supervisor`, custom graphs."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph_supervisor import create_supervisor

import podium
from podium import AgentSpec, Plan
from podium.testing import tool_call


def _one_writer(scripted, *replies) -> podium.WorkflowGraph:
    writer = AgentSpec(name="writer", description="writes", model=scripted(*replies))
    return podium.build_workflow(
        [writer], name="briefs", supervisor=Plan.chain(("writer", "Write the brief."))
    )


def test_input_and_output_schemas_are_json_schemas(scripted):
    app = _one_writer(scripted).compile()
    schema_in, schema_out = app.get_input_jsonschema(), app.get_output_jsonschema()
    # `input_problem` is written by the entry check (podium.graphs.intake) when the input
    # holds text no saver can store; a client that sends it only fails its own run.
    assert set(schema_in["properties"]) == {"goal", "messages", "input_problem"}
    assert {"answer", "status", "usage", "tasks"} <= set(schema_out["properties"])
    usage = schema_out["$defs"]["Usage"]
    assert usage["required"] == [
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "calls",
        "cost_usd",
    ]


def _wrote_for(goal: str):
    """A writer reply that checks the goal the workflow handed it."""

    def reply(messages):
        assert f"Overall goal: {goal}" in messages[-1].text, messages[-1].text
        return f"brief on {goal}"

    return reply


def test_the_goal_is_the_latest_unanswered_human_message(scripted):
    app = _one_writer(scripted, _wrote_for("solar")).compile()
    out = app.invoke(
        {
            "messages": [
                HumanMessage("solar"),
                AIMessage("", tool_calls=[{"name": "x", "args": {}, "id": "c1"}]),
                ToolMessage("handed over", tool_call_id="c1"),
            ]
        }
    )
    assert out["status"] == "completed" and out["goal"] == "solar"
    assert out["messages"][-1].text == "brief on solar" and out["messages"][-1].name == "podium"


def test_a_human_message_already_answered_is_not_a_new_goal(scripted):
    app = _one_writer(scripted, _wrote_for("wind")).compile()
    history = [HumanMessage("solar"), AIMessage("brief on solar", name="podium")]
    out = app.invoke({"goal": "wind", "messages": history})
    assert out["goal"] == "wind"
    assert [m.text for m in out["messages"]] == ["solar", "brief on solar", "wind", "brief on wind"]


def test_a_workflow_is_an_agent_of_create_supervisor_with_default_settings(scripted):
    brief = scripted(_wrote_for("heat pumps"), _wrote_for("rooftop solar"), name="writer")
    team = podium.build_workflow(
        [AgentSpec(name="writer", model=brief)],
        name="briefs",
        supervisor=Plan.chain(("writer", "Write the brief.")),
    )
    boss = scripted(
        tool_call("transfer_to_briefs"),
        "Here is your brief.",
        tool_call("transfer_to_briefs"),
        "Here is the second one.",
        name="boss",
    )
    with podium.open_runtime("memory://") as rt:
        outer = create_supervisor([rt.compile(team)], model=boss).compile(
            checkpointer=InMemorySaver()
        )
        config = {"configurable": {"thread_id": "sup"}}
        first = outer.invoke({"messages": [("user", "heat pumps")]}, config)
        second = outer.invoke({"messages": [("user", "rooftop solar")]}, config)
    answers = [m.text for m in first["messages"] if m.name == "podium"]
    assert answers == ["brief on heat pumps"]
    answers = [m.text for m in second["messages"] if m.name == "podium"]
    assert answers == ["brief on heat pumps", "brief on rooftop solar"]
    assert second["messages"][-1].text == "Here is the second one."


def test_usage_of_a_custom_graph_worker_is_in_the_run_usage(scripted):
    usage = {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150}
    inner_model = scripted(AIMessage("custom answer", usage_metadata=usage), name="inner")

    def call(state: MessagesState) -> dict:
        return {"messages": [inner_model.invoke(state["messages"])]}

    custom = StateGraph(MessagesState)
    custom.add_node("call", call)
    custom.add_edge(START, "call")
    graph = podium.build_workflow(
        [AgentSpec(name="custom", graph=custom)],
        name="wrapped",
        supervisor=Plan.chain(("custom", "Answer.")),
    )
    with podium.open_runtime("memory://") as rt:
        out = rt.compile(graph).invoke({"goal": "g"}, {"configurable": {"thread_id": "u"}})
    assert out["status"] == "completed" and out["answer"] == "custom answer"
    got = out["usage"]["custom"]
    assert (got["input_tokens"], got["output_tokens"], got["calls"]) == (120, 30, 1)
