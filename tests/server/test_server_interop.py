"""podium on the server as LangGraph's clients see it: schemas, and a `RemoteGraph` node."""

from __future__ import annotations

import uuid

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.pregel.remote import RemoteGraph
from langgraph_sdk import get_sync_client

ACME_EDITOR = "acme-editor-key"


def test_assistant_schemas_describe_input_and_output(server) -> None:
    api = get_sync_client(url=server.url, api_key=ACME_EDITOR)
    # The graph's own assistant (other tests create more assistants on the same graph).
    (assistant,) = api.assistants.search(
        graph_id="research_brief", metadata={"created_by": "system"}
    )
    schemas = api.assistants.get_schemas(assistant["assistant_id"])
    assert set(schemas["input_schema"]["properties"]) == {"goal", "messages", "input_problem"}
    assert {"answer", "status", "usage"} <= set(schemas["output_schema"]["properties"])
    assert "tenant_id" in schemas["context_schema"]["properties"]


def test_a_served_workflow_is_a_remote_graph_node(server) -> None:
    remote = RemoteGraph("open_brief", url=server.url, api_key=ACME_EDITOR)
    parent = StateGraph(MessagesState)
    parent.add_node("brief", remote)
    parent.add_edge(START, "brief")
    app = parent.compile(checkpointer=InMemorySaver())
    goal = "Write a brief on heat pump adoption"
    out = app.invoke(
        {"messages": [HumanMessage(goal)]}, {"configurable": {"thread_id": str(uuid.uuid4())}}
    )
    human, answer = out["messages"][0], out["messages"][-1]
    assert human.text == goal
    assert answer.type == "ai" and answer.name == "podium"
    assert answer.text.startswith("# Brief") and "heat pump" in answer.text.lower()
