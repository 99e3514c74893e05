"""One exception hierarchy for podium.

Every message quotes the bad value and says how to fix it, because these errors
are read by people wiring up workflows, usually from a terminal.
"""

from __future__ import annotations

from collections.abc import Iterable


def _known(names: Iterable[str]) -> str:
    listed = sorted(names)
    return ", ".join(listed) if listed else "(none)"


class PodiumError(Exception):
    """Base class of every error podium raises on purpose."""


class ConfigurationError(PodiumError):
    """Misuse detected while building a workflow or opening a runtime."""


class UnknownAgentError(ConfigurationError):
    """A name refers to an agent the registry does not have."""

    def __init__(self, name: str, known: Iterable[str], *, where: str = "") -> None:
        self.name = name
        self.known = sorted(known)
        place = f" in {where}" if where else ""
        super().__init__(f"unknown agent {name!r}{place}; known agents: {_known(self.known)}")


class UnknownWorkflowError(ConfigurationError):
    """A workflow name is not in the workflow catalog."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(
            f"unknown workflow {name!r}; known workflows: {_known(self.known)} "
            "(register more with the 'podium.workflows' entry point or PODIUM_WORKFLOWS)"
        )


class DatabaseError(PodiumError):
    """The runtime database URL is wrong or the database cannot be reached."""


class PlanError(PodiumError):
    """A plan failed validation: unknown agent, unknown dependency, cycle, duplicate id."""


class RunError(PodiumError):
    """Base class of errors raised while a workflow runs; carry structured fields."""


class TaskFailed(RunError):
    """A task could not produce a result."""

    def __init__(self, task_id: str, agent: str, reason: str) -> None:
        self.task_id = task_id
        self.agent = agent
        self.reason = reason
        super().__init__(f"task {task_id!r} (agent {agent!r}) failed: {reason}")


class IllegalTransition(RunError):
    """A task lifecycle transition that the lifecycle does not allow."""

    def __init__(self, task_id: str, current: str, target: str, allowed: Iterable[str]) -> None:
        self.task_id = task_id
        self.current = current
        self.target = target
        super().__init__(
            f"task {task_id!r} cannot go from {current!r} to {target!r}; "
            f"from {current!r} it may go to: {_known(allowed)}"
        )


class ThreadNotFound(RunError):
    """A thread id that the runtime has no record of."""

    def __init__(self, thread_id: str, tenant_id: str) -> None:
        self.thread_id = thread_id
        self.tenant_id = tenant_id
        super().__init__(
            f"no thread {thread_id!r} for tenant {tenant_id!r}; "
            "list the tenant's threads with `podium threads --tenant TENANT`"
        )
