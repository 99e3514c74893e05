"""research_brief: the example workflow and the demo.

START -> supervisor -> (researcher* | analyst | writer -> supervisor)* -> aggregate -> END

The writer's `publish_report` call waits for an editor's approval (policy).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from podium.graphs.workflow import SupervisorMode, WorkflowGraph, build_workflow
from podium.policies import PolicySet
from podium.registry import AgentSpec
from podium.tools import calculate, publish_report, search_corpus

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
            description="Writes the brief from the findings and the analysis, then publishes it.",
            capabilities=["writing"],
            tools=[publish_report],
        ),
    ]


def default_policy_path() -> Path:
    """The policy shipped with the example (`policies/default.yaml` in the source tree)."""
    return Path(str(resources.files("podium.policies") / "default.yaml"))


def build_research_brief(
    model: str | BaseChatModel | None = None,
    *,
    supervisor: SupervisorMode = "planner",
    max_concurrency: int | None = None,
    policies: str | os.PathLike[str] | PolicySet | bool | None = True,
) -> WorkflowGraph:
    """Researcher, analyst and writer: a brief from the bundled corpus, published on approval.

    Args:
        model: The model of the supervisor and agents; None means the offline demo model.
        supervisor: "planner", "router" or a static `Plan`.
        max_concurrency: Most tasks at once.
        policies: True (the default) for the shipped `default.yaml`, a path or `PolicySet`
            of your own, or None/False for the baseline (every tool denied; see
            `build_workflow`).
    """
    if policies is True:
        policies = default_policy_path()
    return build_workflow(
        research_agents(),
        name="research_brief",
        supervisor=supervisor,
        model=model,
        max_concurrency=max_concurrency,
        policies=policies or None,
    )
