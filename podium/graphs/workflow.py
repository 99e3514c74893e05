"""build_workflow: a supervisor that plans or routes, worker subgraphs, and an aggregate.

START -> supervisor -> (worker* -> supervisor)* -> aggregate -> END
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph

from podium.context import RunContext
from podium.errors import ConfigurationError, PlanError
from podium.graphs.worker import build_worker
from podium.models import DEMO, resolve_model
from podium.nodes.aggregate import aggregate
from podium.nodes.supervisor import Supervisor
from podium.nodes.task import make_task_node
from podium.plan import Plan, validate_plan
from podium.registry import AgentRegistry, AgentSpec, as_registry
from podium.state import WorkflowInput, WorkflowState

SupervisorMode = Literal["planner", "router"] | Plan


class WorkflowGraph(StateGraph):
    """The uncompiled `StateGraph` of a podium workflow, carrying its name and agents.

    `compile()` behaves as LangGraph's, naming the graph after the workflow and raising
    the recursion limit to fit `max_turns` (podium's own guard stops runaway runs).
    """

    workflow_name: str
    registry: AgentRegistry
    recursion_limit: int

    def compile(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        kwargs.setdefault("name", self.workflow_name)
        compiled = super().compile(*args, **kwargs)
        return compiled.with_config(recursion_limit=self.recursion_limit)


def build_workflow(
    agents: Sequence[AgentSpec] | AgentRegistry,
    *,
    name: str,
    supervisor: SupervisorMode = "planner",
    model: str | BaseChatModel | None = None,
    max_concurrency: int | None = None,
    max_turns: int = 50,
) -> WorkflowGraph:
    """Build a workflow graph (uncompiled; compile it with `rt.compile(graph)`).

    Args:
        agents: The agents; validated now (names, fallbacks, tools, models).
        name: The workflow's name, used in prompts, the thread index and traces.
        supervisor: "planner" (the model plans a task DAG once), "router" (the model
            picks the next agent every turn, or FINISH), or a static `Plan`.
        model: The supervisor's model and the default of agents without one: a model
            string, a chat model, or None for the offline "demo" model.
        max_concurrency: Most tasks dispatched at once; None for no bound.
        max_turns: Most router turns in one round before the run stops as failed.

    Raises:
        ConfigurationError: for anything wrong with the agents, models or static plan.
    """
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigurationError(f"workflow name {name!r} must be letters, digits, '_' or '-'")
    if max_concurrency is not None and max_concurrency < 1:
        raise ConfigurationError(f"max_concurrency must be >= 1 or None, got {max_concurrency!r}")
    if max_turns < 1:
        raise ConfigurationError(f"max_turns must be >= 1, got {max_turns!r}")
    registry = as_registry(agents)
    if isinstance(supervisor, Plan):
        try:
            validate_plan(supervisor, registry.names)
        except PlanError as exc:
            raise ConfigurationError(f"static plan of workflow {name!r}: {exc}") from exc
    elif supervisor not in ("planner", "router"):
        raise ConfigurationError(
            f"supervisor must be 'planner', 'router' or a podium.Plan, got {supervisor!r}"
        )
    default_model = resolve_model(model, DEMO)

    builder = WorkflowGraph(WorkflowState, context_schema=RunContext, input_schema=WorkflowInput)
    builder.workflow_name = name
    builder.registry = registry
    builder.recursion_limit = 2 * max_turns + 2 * len(registry) + 20
    boss = Supervisor(
        registry,
        supervisor,
        default_model,
        workflow=name,
        max_concurrency=max_concurrency,
        max_turns=max_turns,
    )
    builder.add_node("supervisor", boss.node())
    builder.add_node("aggregate", aggregate)
    for spec in registry:
        builder.add_node(
            spec.name, make_task_node(spec, _worker(spec, default_model), name, registry)
        )
        builder.add_edge(spec.name, "supervisor")
    builder.add_edge(START, "supervisor")
    builder.add_conditional_edges("supervisor", boss.route, [*registry.names, "aggregate"])
    builder.add_edge("aggregate", END)
    return builder


def _worker(spec: AgentSpec, default_model: BaseChatModel) -> Any:
    if spec.graph is None:
        model = resolve_model(spec.model, default_model)
        return build_worker(spec, model).compile(name=spec.name)
    graph = spec.graph
    if isinstance(graph, StateGraph):
        graph = graph.compile()
    if not hasattr(graph, "invoke") or not hasattr(graph, "ainvoke"):
        raise ConfigurationError(
            f"agent {spec.name!r}: graph= must be a LangGraph graph (compiled or not), "
            f"got {type(graph).__name__}"
        )
    return graph
