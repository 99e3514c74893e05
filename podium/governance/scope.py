"""Scope: who is calling (workflow, agent, task, tenant, roles) and under which policies.

The task node puts a Scope into the binding of the config it hands a worker
(`podium.governance.binding.with_scope`), so every governed model and tool call below it,
in the built-in worker or in a custom graph, knows its caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.runnables import RunnableConfig

import podium.policies as P
from podium.context import resolve_context


@dataclass(frozen=True, slots=True)
class Scope:
    """The caller of a governed call."""

    workflow: str
    agent: str
    tenant_id: str = "default"
    user_id: str = "anonymous"
    roles: frozenset[str] = field(default_factory=frozenset)
    thread_id: str | None = None
    task_id: str | None = None
    round: int = 0
    policies: Any = None
    task_class: str | None = None
    #: The task run's recorded model replies (`podium.governance.replay.TaskReplies`).
    replies: Any = None
    #: Whether a side effect found in doubt first moves the task to `waiting` (set by the
    #: task node on a task that is not waiting yet: `podium.governance.in_doubt.EffectInDoubt`
    #: stops it); otherwise the effect's gate is raised where the call is.
    moves_to_waiting: bool = False
    #: On a LangGraph server, which attempt of the server's run this is (the engine runs a
    #: run again, from its last checkpoint, when the process running it died).
    run_attempt: int = 1

    def for_agent(self, agent: str, task_id: str | None) -> Scope:
        return replace(self, agent=agent, task_id=task_id)

    @property
    def step_attempt(self) -> int:
        """Which run of the task this is: 2 or more when the task runs again from its
        start after its previous run died (1 outside a task)."""
        return int(self.replies.attempt) if self.replies is not None else 1

    def retry_marks(self) -> dict[str, int]:
        """What marks the records of a retried step: `step_attempt` and `run_attempt`
        when above 1 (nothing for work done the first time)."""
        marks = {"step_attempt": self.step_attempt, "run_attempt": self.run_attempt}
        return {name: value for name, value in marks.items() if value > 1}

    @property
    def run_key(self) -> str:
        """Identifies one round of one thread (budgets per run are keyed by it)."""
        return f"{self.thread_id or '-'}:{self.round}"


def make_scope(
    config: RunnableConfig,
    context: Any,
    *,
    workflow: str,
    agent: str,
    policies: Any,
    task_id: str | None = None,
    round: int = 0,
) -> Scope:
    """A scope for a call made from a node of `workflow` (the context gives the tenant)."""
    ctx = resolve_context(config, context)
    configurable = config.get("configurable") or {}
    thread = configurable.get("thread_id")
    # langgraph-api puts the attempt of a background run in its metadata.
    attempt = (config.get("metadata") or {}).get("run_attempt")
    return Scope(
        workflow=workflow,
        agent=agent,
        tenant_id=ctx.tenant_id,
        user_id=ctx.user_id,
        roles=frozenset(ctx.roles),
        thread_id=str(thread) if thread is not None else None,
        task_id=task_id,
        round=round,
        policies=policies,
        run_attempt=attempt if isinstance(attempt, int) and attempt > 1 else 1,
    )


def call_scope(scope: Scope) -> P.CallScope:
    return P.CallScope(
        tenant=scope.tenant_id,
        workflow=scope.workflow,
        agent=scope.agent,
        roles=frozenset(scope.roles),
    )
