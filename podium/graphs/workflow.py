"""build_workflow: a supervisor that plans or routes, worker subgraphs, and an aggregate.

START -> supervisor -> [gate ->] (worker* -> supervisor)* -> aggregate -> [gate ->] END
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.types import Durability

import podium.names as names
from podium.context import RunContext
from podium.errors import ConfigurationError, PlanError
from podium.governance.structured import MODES, StructuredMode
from podium.graphs.intake import Workflow
from podium.graphs.worker import build_worker
from podium.models import DEMO, resolve_models
from podium.nodes._node import untraced
from podium.nodes.aggregate import after_aggregate, make_aggregate
from podium.nodes.gate import make_gate_node
from podium.nodes.supervisor import DEFAULT_MAX_GOAL_CHARS, Supervisor
from podium.nodes.task import make_task_node
from podium.nodes.worker_factory import WorkerFactory
from podium.plan import DEFAULT_MAX_TASKS, Plan, validate_plan
from podium.policies import PolicySet, load_policies
from podium.registry import AgentRegistry, AgentSpec, as_registry, is_factory
from podium.state import WorkflowInput, WorkflowState

SupervisorMode = Literal["planner", "router"] | Plan


class WorkflowGraph(StateGraph[Any]):
    """The uncompiled `StateGraph` of a podium workflow, carrying its name and agents.

    `compile()` behaves as LangGraph's, naming the graph after the workflow and raising
    the recursion limit to fit `max_turns` (podium's own guard stops runaway runs).
    """

    workflow_name: str
    registry: AgentRegistry
    recursion_limit: int
    executor_concurrency: int
    policies: PolicySet | None

    def compile(self, *args: Any, **kwargs: Any) -> Workflow:
        kwargs.setdefault("name", self.workflow_name)
        compiled = super().compile(*args, **kwargs)
        # Without max_concurrency LangGraph's sync thread pool runs min(32, cores + 4)
        # tasks at once; podium's own dispatch bound (max_concurrency) is what limits.
        # `Workflow` checks each run's input before LangGraph checkpoints it.
        return Workflow.of(compiled).with_config(
            recursion_limit=self.recursion_limit, max_concurrency=self.executor_concurrency
        )


def build_workflow(
    agents: Sequence[AgentSpec] | AgentRegistry,
    *,
    name: str,
    supervisor: SupervisorMode = "planner",
    model: str | BaseChatModel | Sequence[str | BaseChatModel] | None = None,
    max_concurrency: int | None = None,
    max_turns: int = 50,
    policies: str | os.PathLike[str] | PolicySet | None = None,
    approve_plan: bool = False,
    approve_answer: bool = False,
    approver_roles: Sequence[str] = (),
    approval_expires_in: float | None = None,
    worker_durability: Durability = "exit",
    structured_output: StructuredMode = "auto",
    max_goal_chars: int | None = None,
    max_tasks: int | None = None,
) -> WorkflowGraph:
    """Build a workflow graph (uncompiled; compile it with `rt.compile(graph)`).

    Args:
        agents: The agents; validated now (names, fallbacks, tools, models).
        name: The workflow's name, used in prompts, the thread index and traces.
        supervisor: "planner" (the model plans a task DAG once), "router" (the model
            picks the next agent every turn, or FINISH), or a static `Plan`.
        model: The supervisor's model and the default of agents without one: a model
            string, a chat model, a list of those (each next one takes over when the one
            before it is down), or None for the offline "demo" model.
        max_concurrency: Most tasks dispatched at once; None for no bound.
        max_turns: Most router turns in one round before the run stops as failed.
        policies: A policy file or directory (see `podium.load_policies`) or a loaded
            `PolicySet`; names in it are checked against the agents and tools now. None
            applies the baseline, `PolicySet.baseline()`: default deny, so no tool runs
            (each refused call says which policy key allows it) and nothing else is limited.
        approve_plan: Ask a human to approve the plan before dispatch (a policy's
            `approve_plan` can ask for it too).
        approve_answer: Ask a human to approve the final answer.
        approver_roles: Roles that may decide plan and answer gates (empty: anyone).
        approval_expires_in: Seconds after which an undecided plan/answer gate is escalated.
        worker_durability: When a worker's own steps (each model and tool call inside a
            task) are checkpointed, as LangGraph's `durability`. "exit" (the default):
            only when the task stops at a gate, so it resumes in place (a finished task's
            result is in the workflow's checkpoint); a crash in the middle of a task re-runs
            that task from its start (its model calls again; side-effect tools are not
            repeated, their recorded results come back from the effects store). "async"
            or "sync": after every step, so a crash resumes mid-task, at about 2 extra
            checkpoints per model call. The workflow's own steps (supervisor, dispatch,
            results) are checkpointed as the run's `durability` says.
        structured_output: How the supervisor asks for its plan and router choices.
            "auto" (the default): the provider's native structured output (JSON schema or
            tool calling) when the model implements it, else JSON in text with one repair
            round. "text": always JSON in text. "native", "json_schema" or
            "function_calling": always native (with that provider method, if named).
        max_goal_chars: Longest goal a run takes (default 100,000 characters); a longer
            one ends the run `failed` before any model call. The policy's
            `workflows.<name>.max_goal_chars` (or `global.max_goal_chars`) wins when set.
        max_tasks: Most tasks a plan may have (default 50): the planner is asked again
            for a smaller plan, a static plan over it is refused now. The policy's
            `workflows.<name>.max_tasks` (or `global.max_tasks`) wins when set. The
            graph's recursion limit is derived from it, so a plan within it never hits
            LangGraph's limit.

    Raises:
        ConfigurationError: for anything wrong with the agents, models or static plan.
    """
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigurationError(f"workflow name {name!r} must be letters, digits, '_' or '-'")
    if max_concurrency is not None and max_concurrency < 1:
        raise ConfigurationError(f"max_concurrency must be >= 1 or None, got {max_concurrency!r}")
    if max_turns < 1:
        raise ConfigurationError(f"max_turns must be >= 1, got {max_turns!r}")
    if structured_output not in MODES:
        raise ConfigurationError(
            f"structured_output must be one of {', '.join(MODES)}; got {structured_output!r}"
        )
    if worker_durability not in ("exit", "async", "sync"):
        raise ConfigurationError(
            f"worker_durability must be 'exit', 'async' or 'sync', got {worker_durability!r}"
        )
    registry = as_registry(agents)
    if taken := sorted(set(registry.names) & names.RESERVED):
        raise ConfigurationError(
            f"agent name {taken[0]!r} is reserved for a node of the workflow graph "
            f"(reserved: {', '.join(sorted(names.RESERVED))}); rename the agent"
        )
    policy = _policies(policies, registry, name)
    goal_cap = _limit(policy, name, "max_goal_chars", max_goal_chars, DEFAULT_MAX_GOAL_CHARS)
    task_cap = _limit(policy, name, "max_tasks", max_tasks, DEFAULT_MAX_TASKS)
    if isinstance(supervisor, Plan):
        try:
            validate_plan(supervisor, registry.names, max_tasks=task_cap)
        except PlanError as exc:
            raise ConfigurationError(
                f"static plan of workflow {name!r}: {exc} (or raise max_tasks)"
            ) from exc
    elif supervisor not in ("planner", "router"):
        raise ConfigurationError(
            f"supervisor must be 'planner', 'router' or a podium.Plan, got {supervisor!r}"
        )
    default_model = resolve_models(model, DEMO)

    builder = WorkflowGraph(
        WorkflowState,
        context_schema=RunContext,  # type: ignore[arg-type]
        input_schema=WorkflowInput,
    )
    builder.workflow_name = name
    builder.registry = registry
    # Two steps per task or turn (worker, supervisor), doubled for a retry of each, plus
    # the fixed steps: the limit never stops a run that podium's own bounds allow.
    builder.recursion_limit = 4 * max(max_turns, task_cap) + 2 * len(registry) + 20
    builder.executor_concurrency = max(max_concurrency or 64, 8)

    boss = Supervisor(
        registry,
        supervisor,
        default_model[0],
        fallbacks=default_model[1:],
        workflow=name,
        max_concurrency=max_concurrency,
        max_turns=max_turns,
        policies=policy,
        approve_plan=approve_plan,
        structured_output=structured_output,
        max_goal_chars=goal_cap,
        max_tasks=task_cap,
    )
    builder.policies = policy
    builder.add_node(names.SUPERVISOR, boss.node())
    builder.add_node(names.AGGREGATE, make_aggregate(name, policy, approve_answer))
    gate = make_gate_node(name, registry.names, list(approver_roles), approval_expires_in)
    builder.add_node(names.GATE, gate, destinations=(names.SUPERVISOR, names.AGGREGATE, END))
    for spec in registry:
        worker = _worker(spec, default_model)
        node = make_task_node(spec, worker, name, registry, policy, durability=worker_durability)
        builder.add_node(spec.name, node)
        builder.add_edge(spec.name, names.SUPERVISOR)
    builder.add_edge(START, names.SUPERVISOR)
    # Routing functions run untraced (as LangGraph's own plumbing does): their input is the
    # whole state, already on the node's span, and their decision is the next span (and the
    # audit log's dispatch event).
    builder.add_conditional_edges(
        names.SUPERVISOR,
        untraced(boss.route, "route"),
        [*registry.names, names.AGGREGATE, names.GATE],
    )
    builder.add_conditional_edges(
        names.AGGREGATE, untraced(after_aggregate, "after_aggregate"), [names.GATE, END]
    )
    return builder


def _limit(policy: PolicySet | None, name: str, key: str, given: int | None, default: int) -> int:
    """A workflow's size limit: the policy's (workflow block, then global) when set, else
    the argument, else the default."""
    if policy is not None:
        for block in (policy.workflows.get(name), policy.global_):
            value = getattr(block, key, None) if block is not None else None
            if value is not None:
                return int(value)
    if given is None:
        return default
    if not isinstance(given, int) or isinstance(given, bool) or given < 1:
        raise ConfigurationError(f"{key} must be a whole number >= 1, got {given!r}")
    return given


def _policies(policies: Any, registry: AgentRegistry, workflow: str) -> PolicySet:
    """Load the policy (when given a path) and check its names against the workflow.

    Without one the baseline applies (default deny): the builder warns when that leaves
    an agent's tools unusable, so the author hears it before the first refused call.
    """
    if policies is None:
        denied = sorted({f"{t.name} ({spec.name})" for spec in registry for t in spec.tools})
        if denied:
            warnings.warn(
                f"workflow {workflow!r} has no policy, so every tool is denied: "
                f"{', '.join(denied)}; pass build_workflow(policies=...) with a policy that "
                "allows them (e.g. `agents.<agent>.tools.allow: [<tool>]`)",
                UserWarning,
                stacklevel=3,
            )
        return PolicySet.baseline()
    tools: set[str] | None = {t.name for spec in registry for t in spec.tools}
    for spec in registry:
        if spec.graph is not None and not is_factory(spec.graph):
            found = graph_tools(spec.graph)
            # A custom graph whose tools cannot be seen: its tool names cannot be checked.
            tools = None if found is None or tools is None else tools | found
    if isinstance(policies, PolicySet):
        policies.validate_names(agents=registry.names, tools=tools)
        return policies
    if isinstance(policies, (str, os.PathLike)):
        return load_policies(policies, agents=registry.names, tools=tools)
    raise ConfigurationError(
        "policies must be a path to a policy file or directory, or a podium PolicySet; "
        f"got {type(policies).__name__}"
    )


def graph_tools(graph: Any) -> set[str] | None:
    """Names of the tools of every `ToolNode` in a graph (None when it has none to see)."""
    from langgraph.prebuilt import ToolNode

    nodes = getattr(graph, "nodes", None)
    if isinstance(graph, StateGraph):
        nodes = {name: spec.runnable for name, spec in graph.nodes.items()}
    found: set[str] = set()
    for node in (nodes or {}).values():
        bound = getattr(node, "bound", node)
        if isinstance(bound, ToolNode):
            found |= set(bound.tools_by_name)
    return found or None


def _worker(spec: AgentSpec, default_model: list[BaseChatModel]) -> Any:

    if spec.graph is None:
        models = resolve_models(spec.model, default_model)
        return build_worker(spec, models[0], fallbacks=models[1:]).compile(name=spec.name)
    if is_factory(spec.graph):
        # The factory gets the governed model of the agent's first choice.
        return WorkerFactory(spec, resolve_models(spec.model, default_model)[0])
    graph = spec.graph
    if isinstance(graph, StateGraph):
        graph = graph.compile()
    if not hasattr(graph, "invoke") or not hasattr(graph, "ainvoke"):
        raise ConfigurationError(
            f"agent {spec.name!r}: graph= must be a LangGraph graph (compiled or not), "
            f"got {type(graph).__name__}"
        )
    return graph
