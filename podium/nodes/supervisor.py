"""The supervisor node: intake, planning or routing, and dispatch of ready tasks.

The step is written once as a generator that yields the messages it wants a model to
answer and receives the replies, and yields the database writes it makes (`Write`), so
the sync and async nodes share every decision: the async node runs the step on the event
loop and only its writes in a worker thread.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.runtime import get_runtime
from langgraph.types import Send
from pydantic import BaseModel

import podium.lifecycle as lifecycle
import podium.names as names
import podium.nodes.prompts as prompts
import podium.policies as P
from podium.errors import PlanError, RunError
from podium.governance.binding import bound, with_scope
from podium.governance.scope import make_scope
from podium.governance.structured import Structured, StructuredMode, StructuredReply
from podium.governance.usage import model_name_of, priced_usage
from podium.lifecycle import RunStatus, TaskStatus
from podium.models import model_label
from podium.nodes._node import Node
from podium.nodes._supervision import (
    BLOCKING,
    PING_PONG,
    _dead_letter_turn,
    _done_records,
    _failed,
    _index_thread,
    _intake,
    _ping_pong,
    _queued,
)
from podium.nodes.record import record, record_transitions, set_thread_status
from podium.plan import (
    DEFAULT_MAX_TASKS,
    ChoiceReply,
    Plan,
    PlanReply,
    choice_from,
    extract_json,
    plan_from,
)
from podium.registry import AgentRegistry
from podium.state import RESET, Usage, WorkerInput, WorkflowState, add_usage, empty_usage
from podium.words import count

#: What the step asks a model: the messages, and the schema of the reply it parses.
Ask = tuple[list[BaseMessage], Structured]


@dataclass(frozen=True, slots=True)
class Write:
    """A database write the step needs made (its result is sent back into the step)."""

    fn: Callable[[], Any]


Step = Generator[Ask | Write, Any, dict[str, Any]]
ACTIVE = frozenset(
    {
        TaskStatus.QUEUED,
        TaskStatus.INITIALIZING,
        TaskStatus.RUNNING,
        TaskStatus.WAITING,
        TaskStatus.RETRYING,
    }
)
#: Tasks the route sends to workers: fresh ones, ones reassigned to a fallback agent, and
#: waiting ones (an effect in doubt), whose next run raises the effect's gate.
DISPATCHED = frozenset({TaskStatus.INITIALIZING, TaskStatus.RETRYING, TaskStatus.WAITING})
#: Run statuses of a round in progress (`waiting`: a task waits for an operator).
IN_PROGRESS = frozenset({RunStatus.RUNNING, RunStatus.WAITING})
#: Longest goal a workflow takes unless told otherwise (characters).
DEFAULT_MAX_GOAL_CHARS = 100_000
#: Characters of a refused goal kept in the state (the input checkpoint has it whole).
GOAL_SHOWN = 1_000


class Supervisor:
    """Plans (or routes) and dispatches. See `build_workflow` for the modes."""

    def __init__(
        self,
        registry: AgentRegistry,
        mode: str | Plan,
        model: BaseChatModel,
        *,
        workflow: str,
        max_concurrency: int | None,
        max_turns: int,
        policies: Any = None,
        approve_plan: bool = False,
        structured_output: StructuredMode = "auto",
        fallbacks: Sequence[BaseChatModel] = (),
        max_goal_chars: int = DEFAULT_MAX_GOAL_CHARS,
        max_tasks: int = DEFAULT_MAX_TASKS,
    ) -> None:
        self.fallbacks = list(fallbacks)
        self.structured_output = structured_output
        self.max_goal_chars = max_goal_chars
        self.max_tasks = max_tasks
        self.policies = policies
        self.approve_plan = approve_plan
        self.registry = registry
        self.mode = mode
        self.model = model
        self.label = model_label(model)
        self.workflow = workflow
        self.max_concurrency = max_concurrency
        self.max_turns = max_turns

    # -- nodes ---------------------------------------------------------------------------

    def node(self) -> Node:
        def run(state: WorkflowState, config: RunnableConfig) -> dict[str, Any]:
            cfg = self._scoped(state, config)
            governor, step = bound(config).governor, self.step(state, cfg)
            try:
                request = next(step)
                while True:
                    if isinstance(request, Write):
                        request = step.send(request.fn())
                        continue
                    messages, structured = request
                    try:
                        reply: Any = governor.call_model(
                            self.model,
                            messages,
                            agent=names.SUPERVISOR,
                            task_id=None,
                            config=cfg,
                            scope=bound(cfg).scope,
                            structured=structured,
                            fallbacks=self.fallbacks,
                        )
                    except RunError as refused:  # a budget or policy refusal fails the run
                        request = step.throw(refused)
                        continue
                    request = step.send(reply)
            except StopIteration as done:
                result: dict[str, Any] = done.value
                return result
            finally:
                bound(config).services.flush()

        async def arun(state: WorkflowState, config: RunnableConfig) -> dict[str, Any]:
            cfg = self._scoped(state, config)
            governor, step = bound(config).governor, self.step(state, cfg)
            services = bound(config).services
            try:
                finished, value = _advance(step, None)
                while not finished:
                    if isinstance(value, Write):
                        # The thread index and dead letters: written off the loop.
                        finished, value = _advance(step, await services.run_sync(value.fn))
                        continue
                    messages, structured = value
                    try:
                        reply: Any = await governor.acall_model(
                            self.model,
                            messages,
                            agent=names.SUPERVISOR,
                            task_id=None,
                            config=cfg,
                            scope=bound(cfg).scope,
                            structured=structured,
                            fallbacks=self.fallbacks,
                        )
                    except RunError as refused:
                        reply = refused
                    finished, value = _advance(step, reply)
                update: dict[str, Any] = value
                return update
            finally:
                await services.run_sync(services.flush)

        return Node(names.SUPERVISOR, run, arun)

    def _scoped(self, state: WorkflowState, config: RunnableConfig) -> RunnableConfig:
        """The config with the supervisor's scope (the round a new goal will start counts)."""
        round_ = state.get("round", 0) + (0 if state.get("status") in IN_PROGRESS else 1)
        scope = make_scope(
            config,
            get_runtime().context,
            workflow=self.workflow,
            agent=names.SUPERVISOR,
            policies=self.policies,
            round=round_,
        )
        return with_scope(config, scope)

    def route(self, state: WorkflowState) -> list[Send] | str:
        """Send every task marked `initializing` to its agent; when none, aggregate."""
        if state.get("status") == RunStatus.FAILED:
            return names.AGGREGATE
        if state.get("status") == RunStatus.AWAITING_PLAN_APPROVAL:
            return names.GATE
        tasks, results = state.get("tasks") or {}, state.get("results") or {}
        sends = []
        for task in tasks.values():
            if task["status"] not in DISPATCHED:
                continue
            inputs = [
                {"task_id": d, "agent": tasks[d]["agent"], "summary": results[d]["summary"]}
                for d in task["depends_on"]
                if d in results
            ]
            payload = WorkerInput(
                task=task, goal=state.get("goal", ""), inputs=inputs, round=state.get("round", 0)
            )
            sends.append(Send(task["agent"], payload))
        return sends or names.AGGREGATE

    # -- the step ------------------------------------------------------------------------

    def step(self, state: WorkflowState, config: RunnableConfig) -> Step:
        update: dict[str, Any] = {}
        usage = empty_usage()
        new_round = state.get("status") not in IN_PROGRESS
        if new_round:
            goal, intake = _intake(state)
            if goal is None:
                return _failed(update, "no goal: invoke with {'goal': '...'} or a human message")
            problem = state.get("input_problem") or self._goal_problem(goal)
            if problem:
                # Refused before any model call: nothing of the goal reaches a model.
                yield Write(
                    functools.partial(
                        _index_thread, config, self.workflow, goal, RunStatus.RUNNING.value
                    )
                )
                update.update(
                    goal=goal[:GOAL_SHOWN],
                    round=state.get("round", 0) + 1,
                    input_problem=None,
                    answer="",
                    tasks={RESET: True},
                    results={RESET: True},
                    plan=[],
                )
                return _failed(update, f"the input was refused: {problem}")
            update.update(
                goal=goal,
                round=state.get("round", 0) + 1,
                status=RunStatus.RUNNING.value,
                error=None,
                answer="",
                turns=0,
                messages=intake,
                results={RESET: True},
                plan=[],
            )
            yield Write(
                functools.partial(
                    _index_thread, config, self.workflow, goal, RunStatus.RUNNING.value
                )
            )
            tasks: dict[str, dict[str, Any]] = {}
            plan: Plan | None = self.mode if isinstance(self.mode, Plan) else None
            if self.mode == "planner":
                messages = [
                    SystemMessage(
                        prompts.PLANNER_SYSTEM.format(
                            name=self.workflow, agents=self.registry.describe()
                        )
                    ),
                    HumanMessage(prompts.goal_message(goal, state.get("answer") or None)),
                ]
                validate = functools.partial(plan_from, max_tasks=self.max_tasks)
                outcome = yield from self._ask_twice(messages, PlanReply, validate, usage, config)
                usage = outcome["usage"]
                if "error" in outcome:
                    update["usage"] = {names.SUPERVISOR: usage}
                    return _failed(
                        update,
                        f"the supervisor could not make a valid plan: {outcome['error']}",
                        tasks={RESET: True},
                    )
                plan = outcome["value"]
            if plan is not None:
                tasks = {
                    t.id: _queued(t.id, t.agent, t.instruction, t.depends_on) for t in plan.tasks
                }
                update["plan"] = [t.model_dump() for t in plan.tasks]
                get_stream_writer()({"event": "plan", "tasks": update["plan"], "at": time.time()})
                record(config, "plan", {"tasks": update["plan"], "goal": goal})
                if self._needs_plan_approval(config):
                    update["usage"] = {names.SUPERVISOR: usage} if usage["calls"] else {}
                    return {
                        **update,
                        "status": RunStatus.AWAITING_PLAN_APPROVAL.value,
                        "tasks": {RESET: True, **tasks},
                    }
        else:
            goal, tasks = state["goal"], {k: dict(v) for k, v in (state.get("tasks") or {}).items()}
        changed: dict[str, dict[str, Any]] = {}
        if self.mode == "router" and not any(t["status"] in ACTIVE for t in tasks.values()):
            turns = 0 if new_round else state.get("turns", 0)
            results = {} if new_round else (state.get("results") or {})
            done = _done_records(tasks, results)
            messages = [
                SystemMessage(
                    prompts.ROUTER_SYSTEM.format(
                        name=self.workflow, agents=self.registry.describe()
                    )
                ),
                HumanMessage(prompts.progress_message(goal, done)),
            ]
            outcome = yield from self._ask_twice(messages, ChoiceReply, choice_from, usage, config)
            usage = outcome["usage"]
            update["turns"] = turns + 1
            if "error" in outcome:
                update["usage"] = {names.SUPERVISOR: usage}
                return _failed(update, f"the router gave no valid choice: {outcome['error']}")
            choice = outcome["value"]
            if choice.next != "FINISH" and turns >= self.max_turns:
                # max_turns delegations were made; the router may still finish, not go on.
                update["usage"] = {names.SUPERVISOR: usage}
                return _failed(
                    update,
                    f"the router made {count(turns, 'delegation')} without finishing "
                    f"(max_turns={self.max_turns})",
                )
            bounce = _ping_pong([*(t["agent"] for t in tasks.values()), choice.next])
            if choice.next != "FINISH" and bounce:
                update["usage"] = {names.SUPERVISOR: usage}
                reason = (
                    f"the router bounced between {bounce[0]} and {bounce[1]} "
                    f"{PING_PONG // 2} times without finishing; stopped"
                )
                letter = yield Write(
                    functools.partial(
                        _dead_letter_turn, config, self.workflow, goal, choice, reason
                    )
                )
                return _failed(update, f"{reason} (dead letter {letter})")
            if choice.next != "FINISH":
                task_id = f"t{len(tasks) + 1}"
                last = [f"t{len(tasks)}"] if tasks else []
                tasks[task_id] = changed[task_id] = _queued(
                    task_id, choice.next, choice.instruction, last
                )
        before = dict(tasks)
        changed.update(self._dispatch(tasks))
        record_transitions(config, before, changed)
        sent = [t for t, task in changed.items() if task["status"] == TaskStatus.INITIALIZING]
        if sent:
            record(config, "dispatch", {"tasks": sent})
        if usage["calls"]:
            update["usage"] = {names.SUPERVISOR: usage}
        update["tasks"] = {RESET: True, **tasks, **changed} if new_round else changed
        status = _run_status(state.get("status"), {**tasks, **changed})
        if status is not None:
            update["status"] = status
            yield Write(functools.partial(set_thread_status, config, status))
        return update

    def _goal_problem(self, goal: str) -> str | None:
        if len(goal) <= self.max_goal_chars:
            return None
        return (
            f"the goal is {len(goal):,} characters long; workflow {self.workflow!r} takes at "
            f"most {self.max_goal_chars:,} (raise it with build_workflow(max_goal_chars=...) "
            f"or the policy's workflows.{self.workflow}.max_goal_chars)"
        )

    def _needs_plan_approval(self, config: RunnableConfig) -> bool:
        if self.approve_plan:
            return True
        scope = bound(config).scope
        if self.policies is None or scope is None:
            return False
        from podium.governance.scope import call_scope

        return not P.approval_for(self.policies, call_scope(scope), "plan").allowed

    def _ask_twice(
        self,
        messages: list[BaseMessage],
        schema: type[BaseModel],
        validate: Callable[[object, list[str]], Any],
        usage: Usage,
        config: RunnableConfig,
    ) -> Generator[Ask, Any, dict[str, Any]]:
        """Ask; on an invalid answer ask once more with the error; then give up.

        The reply is structured output when the model supports it natively (a
        `StructuredReply`), else text holding JSON; both are validated the same way.
        """
        scope = bound(config).scope
        request = Structured(schema, self.structured_output)
        error: PlanError | None = None
        for _attempt in range(2):
            try:
                reply = yield messages, request
            except RunError as refused:
                return {"error": f"its model call was refused: {refused}", "usage": usage}
            raw = reply.raw if isinstance(reply, StructuredReply) else reply
            priced = priced_usage(raw, model_name_of(raw, self.label), scope)
            usage = add_usage(usage, priced)
            try:
                # Fallback agents only take over failed tasks; the model may not plan with them.
                return {
                    "value": validate(_reply_data(reply), self.registry.workers),
                    "usage": usage,
                }
            except PlanError as exc:
                error = exc
                messages = [*messages, *_repair(raw, exc)]
        return {"error": str(error), "usage": usage}

    def _dispatch(self, tasks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Cancel tasks that can no longer run; mark ready ones `initializing`."""
        now, changed = time.time(), {}
        for task_id, task in tasks.items():
            if task["status"] != TaskStatus.QUEUED:
                continue
            blocked = [d for d in task["depends_on"] if tasks[d]["status"] in BLOCKING]
            if blocked:
                changed[task_id] = tasks[task_id] = lifecycle.transition(
                    task,
                    TaskStatus.CANCELLED,
                    at=now,
                    reason=f"dependency {blocked[0]} did not complete",
                )
        limit = (self.max_concurrency or len(tasks)) - sum(
            t["status"] in (TaskStatus.RETRYING, TaskStatus.WAITING) for t in tasks.values()
        )
        for task_id, task in tasks.items():
            if limit <= 0:
                break
            ready = task["status"] == TaskStatus.QUEUED and all(
                tasks[d]["status"] == TaskStatus.COMPLETED for d in task["depends_on"]
            )
            if ready:
                changed[task_id] = tasks[task_id] = lifecycle.transition(
                    task, TaskStatus.INITIALIZING, at=now
                )
                limit -= 1
        return changed


def _run_status(current: str | None, tasks: dict[str, dict[str, Any]]) -> str | None:
    """The run's new status while a round is in progress, if it changes: `waiting` while
    a task waits for an operator (an effect in doubt), `running` again once none does."""
    if current not in IN_PROGRESS:
        return None  # a new round writes its own status; a failed run keeps its own
    waiting = any(t["status"] == TaskStatus.WAITING for t in tasks.values())
    status = (RunStatus.WAITING if waiting else RunStatus.RUNNING).value
    return status if status != current else None


def _reply_data(reply: Any) -> object:
    """The JSON value a reply holds: parsed structured output, a structured tool call's
    arguments, or the JSON object in its text.

    Raises:
        PlanError: no JSON value, or a structured reply the provider could not parse.
    """
    if isinstance(reply, StructuredReply):
        if reply.parsed is not None:
            return reply.parsed
        if reply.raw.tool_calls:
            return reply.raw.tool_calls[0]["args"]
        if reply.error is not None and not reply.raw.text.strip():
            raise PlanError(f"the structured reply could not be read: {reply.error}")
        reply = reply.raw
    return extract_json(reply.text)


def _repair(raw: AIMessage, error: PlanError) -> list[BaseMessage]:
    """The messages that hand an invalid answer back with the error. A tool call must be
    answered by a tool message before anything else, as providers require."""
    text = prompts.REPAIR.format(error=error)
    answers = [ToolMessage(text, tool_call_id=call["id"]) for call in raw.tool_calls if call["id"]]
    return [raw, *answers, HumanMessage(text)]


def _advance(step: Step, reply: Any) -> tuple[bool, Any]:
    """Run the step to its next request: (False, messages or a `Write`), or (True, update)
    when it is done. A refusal (`RunError`) is thrown into the step, which fails the run
    with it."""
    try:
        if isinstance(reply, RunError):
            return False, step.throw(reply)
        return False, (next(step) if reply is None else step.send(reply))
    except StopIteration as done:
        return True, done.value
