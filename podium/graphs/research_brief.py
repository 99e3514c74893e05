"""research_brief: the example workflow and the demo.

START -> supervisor -> (researcher* | analyst | writer -> supervisor)* -> aggregate -> END
"""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel

from podium.graphs.workflow import SupervisorMode, WorkflowGraph, build_workflow
from podium.registry import AgentSpec
from podium.tools import calculate, search_corpus

DEMO_GOAL = "Write a brief on heat pump adoption and grid storage costs"


def research_agents() -> list[AgentSpec]:
    """The three agents of the example, with the bundled tools."""
    return [
        AgentSpec(
            name="researcher",
            description="Finds facts in the document corpus.",
            capabilities=["research"],
            tools=[search_corpus],
        ),
        AgentSpec(
            name="analyst",
            description="Quantifies findings with exact arithmetic.",
            capabilities=["analysis", "math"],
            tools=[calculate],
        ),
        AgentSpec(
            name="writer",
            description="Writes the brief from the findings and the analysis.",
            capabilities=["writing"],
        ),
    ]


def build_research_brief(
    model: str | BaseChatModel | None = None,
    *,
    supervisor: SupervisorMode = "planner",
    max_concurrency: int | None = None,
) -> WorkflowGraph:
    """The `research_brief` workflow (uncompiled). `model` defaults to the offline demo."""
    return build_workflow(
        research_agents(),
        name="research_brief",
        supervisor=supervisor,
        model=model,
        max_concurrency=max_concurrency,
    )
