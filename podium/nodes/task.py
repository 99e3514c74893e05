"""The task node: runs one task on its agent's worker subgraph and reports the result.

It receives a `WorkerInput` from `Send` (the task and its dependencies' results only),
moves the task through the lifecycle and returns only the keys it writes. A task that
fails for good goes to the agent's fallback (`failed -> retrying`, dispatched again by
the supervisor) and, when the fallback chain is spent, to the dead-letter queue.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.config import get_stream_writer
from langgraph.errors import GraphBubbleUp, GraphInterrupt
from langgraph.runtime import get_runtime
from langgraph.types import Durability

import podium.lifecycle as lifecycle
import podium.policies as P
from podium.context import current_context
from podium.errors import TaskFailed, WriterLockLost
from podium.governance.binding import bound, with_scope
from podium.governance.guard import PolicyGuard
from podium.governance.in_doubt import EffectInDoubt
from podium.governance.recovery import (
    acall_with_timeout,
    call_with_timeout,
    classify,
    describe,
)
from podium.governance.replay import TaskReplies
from podium.governance.scope import make_scope
from podium.lifecycle import RunStatus, TaskStatus
from podium.nodes._node import Node
from podium.nodes.prompts import WORKER_SYSTEM, task_message
from podium.nodes.record import record, record_transitions
from podium.nodes.worker_factory import WorkerFactory
from podium.registry import AgentRegistry, AgentSpec
from podium.state import TaskResult, Usage, WorkerInput, add_usage, empty_usage
from podium.storage.faults import is_database_fault
from podium.stores.replies import TaskKey
from podium.streaming import for_task

#: Most agents one task may be handed to: its own plus this many fallbacks.
MAX_FALLBACKS = 3


def make_task_node(
    spec: AgentSpec,
    worker: Any,
    workflow: str,
    registry: AgentRegistry,
    policies: Any = None,
    *,
    durability: Durability = "exit",
) -> Node:
    """A node running tasks of agent `spec` on `worker` (a compiled graph), whose own
    steps are checkpointed as `durability` says (see `build_workflow`)."""
    custom = spec.graph is not None

    def prepare(
        payload: WorkerInput, config: RunnableConfig
    ) -> tuple[dict[str, Any], dict[str, Any], RunnableConfig, PolicyGuard | None]:
        now = time.time()
        task = lifecycle.transition(dict(payload["task"]), TaskStatus.RUNNING, at=now)
        task = {**task, "started_at": now, "attempts": task.get("attempts", 0) + 1}
        if task.get(REPLAY_NS):
            task[REPLAY_NS] = None  # kept only while the task waits (records merge by key)
        _emit("task_started", task)
        scope = make_scope(
            config,
            get_runtime().context,
            workflow=workflow,
            agent=spec.name,
            policies=policies,
            task_id=task["id"],
            round=payload.get("round", 0),
        )
        # A task not waiting yet stops at an effect in doubt, to be moved to `waiting`;
        # a waiting one raises the effect's gate.
        scope = replace(scope, moves_to_waiting=payload["task"]["status"] != TaskStatus.WAITING)
        text = task_message(task, payload["goal"], payload["inputs"])
        if custom:
            inputs: dict[str, Any] = {"goal": text, "messages": [HumanMessage(text)]}
        else:
            system = WORKER_SYSTEM.format(
                agent=spec.name, workflow=workflow, description=spec.description
            )
            inputs = {
                "task_id": task["id"],
                "messages": [SystemMessage(system), HumanMessage(text)],
            }
        if scope.thread_id is not None:
            # This run of the task replays the model replies an earlier run recorded.
            # Keyed by the task's checkpoint namespace too: LangGraph derives it from the
            # checkpoint the task was sent from, so a re-run of the same step after a crash
            # finds its replies, while a fork of the thread (time travel, a new goal) or a
            # second invocation of a nested workflow never replays another branch's.
            # A task sent again after it moved to `waiting` keeps the namespace of the
            # run that recorded its replies, so it comes back to the same calls.
            thread = scope.thread_id + replay_namespace(payload, config)
            key = TaskKey(scope.tenant_id, thread, scope.round, task["id"], spec.name)
            scope = replace(scope, replies=TaskReplies(bound(config).services.replies, key))
        cfg, guard = for_task(config, task["id"], spec.name), None
        if custom:
            # Tools podium did not hand over (a compiled graph's own): the guard vets every
            # call of them below this task and accounts every model call that podium's
            # governor did not make.
            guard = PolicyGuard(bound(config).governor, scope)
            cfg = merge_configs(cfg, {"callbacks": [guard]})
        # Last: merging a partial config brings back the node's own configurable (LangGraph's
        # config of the running step), whose binding carries no scope, or, in a nested
        # workflow, the enclosing task's.
        return task, inputs, with_scope(cfg, scope), guard

    def timeout(cfg: RunnableConfig) -> float | None:
        if spec.timeout is not None or policies is None:
            return spec.timeout
        from podium.governance.scope import call_scope

        scope = bound(cfg).scope
        assert scope is not None  # prepare() put it there
        return P.agent_settings(policies, call_scope(scope)).timeout

    def completed(
        task: dict[str, Any],
        output: Any,
        payload: WorkerInput,
        cfg: RunnableConfig,
        guard: PolicyGuard | None,
    ) -> dict[str, Any]:
        output = _checked(output, task)
        now = time.time()
        summary, usage = _read_output(output, spec.name)
        if guard is not None:
            usage = add_usage(usage, guard.usage)
        done = {
            **lifecycle.transition(task, TaskStatus.COMPLETED, at=now),
            "finished_at": now,
            "error": None,
        }
        if output.get("model_fallbacks"):
            # A fallback model answered: the task table says so (graceful degradation).
            done["model_fallbacks"] = list(output["model_fallbacks"])
        result = TaskResult(
            task_id=task["id"], agent=spec.name, summary=summary, artifacts={}, usage=usage
        )
        _emit("task_finished", done, summary=summary)
        record_transitions(cfg, {task["id"]: payload["task"]}, {task["id"]: done})
        return {
            "tasks": {task["id"]: done},
            "results": {task["id"]: result},
            "usage": {spec.name: usage},
        }

    def failed(
        task: dict[str, Any], exc: Exception, payload: WorkerInput, cfg: RunnableConfig
    ) -> dict[str, Any]:
        update = _fail(task, exc, payload, cfg, registry=registry, workflow=workflow)
        record_transitions(cfg, {task["id"]: payload["task"]}, update["tasks"])
        return update

    def waiting(
        task: dict[str, Any], doubt: EffectInDoubt, payload: WorkerInput, config: RunnableConfig
    ) -> dict[str, Any]:
        """The task moves to `waiting`: an effect of it is in doubt. The supervisor marks
        the run waiting and sends the task again, which raises the effect's gate."""
        now = time.time()
        held = {
            **lifecycle.transition(task, TaskStatus.WAITING, at=now, reason=str(doubt)),
            "error": None,
            REPLAY_NS: replay_namespace(payload, config),
        }
        _emit("task_waiting", held, tool=doubt.tool, reason=str(doubt))
        record_transitions(config, {task["id"]: payload["task"]}, {task["id"]: held})
        return {"tasks": {task["id"]: held}}

    # A finished task's events stay buffered until the next supervisor step writes the
    # whole wave at once; a gate or a failure is written at once.
    def graph_of(cfg: RunnableConfig) -> Any:
        """The worker of this task (a factory's worker is built with the task's tools)."""
        if isinstance(worker, WorkerFactory):
            return worker.build(bound(cfg).scope, bound(cfg))
        return worker

    def run(payload: WorkerInput, config: RunnableConfig) -> dict[str, Any]:
        task, inputs, cfg, guard = prepare(payload, config)
        what = f"task {task['id']!r} of agent {spec.name!r}"
        log = _replies(cfg)
        try:
            if log is not None:
                log.begin()
            graph = graph_of(cfg)
            output = call_with_timeout(
                lambda: graph.invoke(inputs, cfg, durability=durability), timeout(cfg), what
            )
            return completed(task, output, payload, cfg, guard)
        except EffectInDoubt as doubt:
            if log is not None:
                log.pause()  # the task is sent again to raise its gate: no retry
            update = waiting(task, doubt, payload, cfg)
            bound(config).services.flush()
            return update
        except GraphBubbleUp as stop:
            if log is not None and isinstance(stop, GraphInterrupt):
                log.pause()
            bound(config).services.flush()
            raise
        except Exception as exc:
            if is_database_fault(exc) or isinstance(exc, WriterLockLost):
                # The database failed, or another run took the thread: not the task. Stop
                # the run (its effects are recorded; a resume re-runs the task) instead of
                # dead-lettering it.
                raise
            update = failed(task, exc, payload, cfg)
            bound(config).services.flush()
            return update
        finally:
            if guard is not None:
                guard.close()  # budget held by model calls that never ended

    async def arun(payload: WorkerInput, config: RunnableConfig) -> dict[str, Any]:
        task, inputs, cfg, guard = prepare(payload, config)
        what = f"task {task['id']!r} of agent {spec.name!r}"
        services, log = bound(config).services, _replies(cfg)
        try:
            if log is not None:
                await services.run_sync(log.begin)
            graph = graph_of(cfg)
            output = await acall_with_timeout(
                lambda: graph.ainvoke(inputs, cfg, durability=durability), timeout(cfg), what
            )
            return completed(task, output, payload, cfg, guard)
        except EffectInDoubt as doubt:
            if log is not None:
                await services.run_sync(log.pause)
            update = await services.run_sync(waiting, task, doubt, payload, cfg)
            await services.run_sync(services.flush)
            return update
        except GraphBubbleUp as stop:
            if log is not None and isinstance(stop, GraphInterrupt):
                await services.run_sync(log.pause)
            await services.run_sync(services.flush)
            raise
        except Exception as exc:
            if is_database_fault(exc) or isinstance(exc, WriterLockLost):
                raise  # as in `run`
            update = await services.run_sync(failed, task, exc, payload, cfg)
            await services.run_sync(services.flush)
            return update
        finally:
            if guard is not None:
                guard.close()  # as in `run`

    return Node(spec.name, run, arun)


def _fail(
    task: dict[str, Any],
    exc: Exception,
    payload: WorkerInput,
    config: RunnableConfig,
    *,
    registry: AgentRegistry,
    workflow: str,
) -> dict[str, Any]:
    """Record the failure; hand the task to the next fallback or dead-letter it."""
    now, kind = time.time(), classify(exc)
    reason = describe(exc)
    failures = [
        *task.get("failures", []),
        {
            "agent": task["agent"],
            "attempt": task["attempts"],
            "error_type": type(exc).__name__,
            "error": str(exc),
            "class": kind,
            "at": now,
        },
    ]
    task = {
        **lifecycle.transition(task, TaskStatus.FAILED, at=now, reason=reason),
        "error": reason,
        "failures": failures,
        "finished_at": now,
    }
    tried = task.get("assigned") or [task["agent"]]
    spare = [a for a in registry.fallback_chain(tried[0]) if a not in tried]
    if kind != "budget" and spare and len(tried) <= MAX_FALLBACKS:
        nxt = spare[0]
        task = lifecycle.transition(
            task,
            TaskStatus.RETRYING,
            at=now,
            reason=f"reassigned from {task['agent']} to {nxt}: {reason}",
        )
        task = {**task, "agent": nxt, "assigned": [*tried, nxt]}
        _emit("task_reassigned", task, error=reason)
        return {"tasks": {task["id"]: task}}
    if kind == "budget":
        _emit("task_finished", task, error=reason)
        return {"tasks": {task["id"]: task}}
    letter = _dead_letter(task, payload, config, workflow=workflow)
    task = {
        **lifecycle.transition(task, TaskStatus.DEAD_LETTERED, at=now, reason=reason),
        "dead_letter": letter,
    }
    record(
        config,
        "dead_letter",
        {"dead_letter": letter, "agent": task["agent"], "error": reason},
        task_id=task["id"],
        actor="system:podium",
        hook="dead_letter",
    )
    _emit("task_finished", task, error=reason, dead_letter=letter)
    return {"tasks": {task["id"]: task}}


def _dead_letter(
    task: dict[str, Any], payload: WorkerInput, config: RunnableConfig, *, workflow: str
) -> str:
    """Store the task with everything needed to understand and replay it; returns its id."""
    configurable = config.get("configurable") or {}
    checkpoint = (configurable.get("checkpoint_map") or {}).get("") or configurable.get(
        "checkpoint_id"
    )
    letter = bound(config).services.dead_letters.add(
        tenant_id=current_context(config).tenant_id,
        workflow=workflow,
        thread_id=str(configurable.get("thread_id", "")),
        task_id=task["id"],
        agent=task["agent"],
        inputs={
            "task": {k: v for k, v in task.items() if k != "history"},
            "goal": payload["goal"],
            "inputs": payload["inputs"],
            "round": payload.get("round", 0),
        },
        attempts=[
            {k: f[k] for k in ("agent", "attempt", "error_type", "error", "at")}
            for f in task["failures"]
        ],
        last_checkpoint_id=checkpoint,
        checkpoint_ns=configurable.get("checkpoint_ns", ""),
    )
    return letter.id


def _checked(output: Any, task: dict[str, Any]) -> dict[str, Any]:
    """A nested podium workflow that ended `failed` fails this task too."""
    if not isinstance(output, dict):
        raise TaskFailed(task["id"], task["agent"], f"worker returned {type(output).__name__}")
    if output.get("status") == RunStatus.FAILED:
        reason = str(output.get("error") or "sub-workflow failed")
        raise TaskFailed(task["id"], task["agent"], reason)
    return output


def _read_output(output: dict[str, Any], agent: str) -> tuple[str, Usage]:
    """Summary and usage from a worker's final state (built-in, podium or any graph)."""
    usage = empty_usage()
    for part in (output.get("usage") or {}).values():
        usage = add_usage(usage, part)
    if output.get("answer"):
        return str(output["answer"]), usage
    for message in reversed(output.get("messages") or []):
        if isinstance(message, AIMessage) and not message.tool_calls:
            return message.text, usage
    return "", usage


def _emit(event: str, task: dict[str, Any], **extra: Any) -> None:
    """A custom stream event for progress displays (`stream_mode="custom"`)."""
    get_stream_writer()(
        {
            "event": event,
            "task_id": task["id"],
            "agent": task["agent"],
            "status": task["status"],
            "at": time.time(),
            **extra,
        }
    )


def _replies(config: RunnableConfig) -> TaskReplies | None:
    """The recorded replies (and attempt) of this run of the task, when it has a thread."""
    scope = bound(config).scope
    return scope.replies if scope is not None else None


def _namespace(config: RunnableConfig) -> str:
    """`|<checkpoint namespace>` of this task run (`agent:<task id>`, below the namespaces
    of any enclosing graphs)."""
    return "|" + str((config.get("configurable") or {}).get("checkpoint_ns") or "")


#: The task record's key holding, while the task waits, the namespace of the run whose
#: model replies its next run replays.
REPLAY_NS = "replay_ns"


def replay_namespace(payload: WorkerInput, config: RunnableConfig) -> str:
    """The namespace this run of the task records and replays model replies under: the
    one kept when the task moved to `waiting`, else this run's own."""
    kept = payload["task"].get(REPLAY_NS)
    return str(kept) if kept else _namespace(config)
