"""Plans: a small DAG of tasks, parsed from model output or written in code, then validated."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from podium.errors import PlanError
from podium.words import count


class PlannedTask(BaseModel):
    """One task of a plan."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, description="Short unique id, e.g. 't1'.")
    agent: str = Field(min_length=1, description="Name of the agent that does the task.")
    instruction: str = Field(min_length=1, description="What the agent must do.")
    depends_on: list[str] = Field(default_factory=list, description="Ids this task needs first.")


class Plan(BaseModel):
    """A DAG of tasks. Use it directly for workflows fixed in code (`supervisor=Plan(...)`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tasks: list[PlannedTask] = Field(min_length=1)

    @classmethod
    def chain(cls, *steps: tuple[str, str]) -> Plan:
        """A plan whose tasks run one after another: `Plan.chain(("researcher", "..."), ...)`."""
        tasks = [
            PlannedTask(
                id=f"t{i}", agent=agent, instruction=text, depends_on=[f"t{i - 1}"] if i > 1 else []
            )
            for i, (agent, text) in enumerate(steps, start=1)
        ]
        return cls(tasks=tasks)


class RouterChoice(BaseModel):
    """The router supervisor's answer for one turn."""

    model_config = ConfigDict(extra="forbid")

    next: str = Field(description="Agent name, or FINISH when the goal is met.")
    instruction: str = Field(default="", description="What that agent must do next.")


#: Most tasks a plan may have unless a workflow or its policy says otherwise.
DEFAULT_MAX_TASKS = 50


# What a provider's structured output is asked for. Every field is required and has no
# default, as strict JSON schema modes (OpenAI's) demand; `Plan` and `RouterChoice` then
# validate the content (agents, dependencies, cycles).


class PlanTaskReply(BaseModel):
    """One task of a plan, as a model writes it."""

    id: str = Field(description="Short unique id, e.g. 't1'.")
    agent: str = Field(description="Name of the agent that does the task.")
    instruction: str = Field(description="What the agent must do.")
    depends_on: list[str] = Field(description="Ids of the tasks this one needs first.")


class PlanReply(BaseModel):
    """A plan of tasks for the goal."""

    tasks: list[PlanTaskReply] = Field(description="The tasks; independent ones run in parallel.")


class ChoiceReply(BaseModel):
    """The next agent to act, or FINISH."""

    next: str = Field(description="Agent name, or FINISH when the goal is met.")
    instruction: str = Field(description="What that agent must do next ('' for FINISH).")


def validate_plan(plan: Plan, agents: Iterable[str], *, max_tasks: int | None = None) -> Plan:
    """Check agents and dependencies exist, ids are unique, there is no cycle and (when
    `max_tasks` is given) the plan has at most that many tasks.

    Raises:
        PlanError: naming the task and the fix.
    """
    if max_tasks is not None and len(plan.tasks) > max_tasks:
        raise PlanError(
            f"the plan has {count(len(plan.tasks), 'task')}; at most {max_tasks} are allowed: "
            "merge small steps into fewer tasks"
        )
    known = set(agents)
    ids = [t.id for t in plan.tasks]
    seen: set[str] = set()
    for task in plan.tasks:
        if task.id in seen:
            raise PlanError(f"duplicate task id {task.id!r}; give every task its own id")
        seen.add(task.id)
        if task.agent not in known:
            raise PlanError(
                f"unknown agent {task.agent!r} in plan task {task.id!r}; "
                f"known agents: {', '.join(sorted(known))}"
            )
    for task in plan.tasks:
        for dep in task.depends_on:
            if dep not in seen:
                raise PlanError(
                    f"task {task.id!r} depends on unknown task {dep!r}; task ids: {', '.join(ids)}"
                )
            if dep == task.id:
                raise PlanError(f"task {task.id!r} depends on itself")
    cycle = find_cycle({t.id: list(t.depends_on) for t in plan.tasks})
    if cycle:
        raise PlanError(f"plan has a dependency cycle: {' -> '.join(cycle)}; remove one edge")
    return plan


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """Return one cycle (as a closed path of ids) in a dependency graph, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return None


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str) -> object:
    """Parse the JSON object in a model reply, tolerating code fences and prose around it."""
    fenced = _FENCE.search(text)
    candidate = fenced.group(1) if fenced else text
    start, end = candidate.find("{"), candidate.rfind("}")
    if start < 0 or end <= start:
        raise PlanError("the reply holds no JSON object; answer with one JSON object only")
    try:
        return json.loads(candidate[start : end + 1])
    except json.JSONDecodeError as exc:
        raise PlanError(f"the reply is not valid JSON ({exc.msg} at char {exc.pos})") from exc


def parse_plan(text: str, agents: Iterable[str], *, max_tasks: int | None = None) -> Plan:
    """Parse and validate a plan from a model reply (see `validate_plan`)."""
    return plan_from(extract_json(text), agents, max_tasks=max_tasks)


def plan_from(data: object, agents: Iterable[str], *, max_tasks: int | None = None) -> Plan:
    """Validate a plan from parsed model output (a dict, or a `PlanReply`)."""
    if isinstance(data, BaseModel):
        data = data.model_dump()
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(f"the plan does not match the schema: {_brief(exc)}") from exc
    return validate_plan(plan, agents, max_tasks=max_tasks)


def parse_choice(text: str, agents: Iterable[str]) -> RouterChoice:
    """Parse and validate a router choice from a model reply."""
    return choice_from(extract_json(text), agents)


def choice_from(data: object, agents: Iterable[str]) -> RouterChoice:
    """Validate a router choice from parsed model output (a dict, or a `ChoiceReply`)."""
    if isinstance(data, BaseModel):
        data = data.model_dump()
    try:
        choice = RouterChoice.model_validate(data)
    except ValidationError as exc:
        raise PlanError(f"the choice does not match the schema: {_brief(exc)}") from exc
    known = set(agents)
    if choice.next != "FINISH" and choice.next not in known:
        raise PlanError(
            f"unknown agent {choice.next!r}; choose one of: {', '.join(sorted(known))}, or FINISH"
        )
    if choice.next != "FINISH" and not choice.instruction.strip():
        raise PlanError(f"no instruction for agent {choice.next!r}; say what it must do")
    return choice


def _brief(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
    )
