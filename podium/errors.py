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


class ApiKeyNotFound(PodiumError):
    """An API key id that podium's database has no record of (for the tenant, if given)."""

    def __init__(self, key_id: str, tenant_id: str | None = None) -> None:
        self.key_id = key_id
        self.tenant_id = tenant_id
        of = f" of tenant {tenant_id!r}" if tenant_id is not None else ""
        super().__init__(f"no API key {key_id!r}{of}; list the keys with `podium keys list`")


class PolicyError(ConfigurationError):
    """A policy file is malformed or names an agent, tool or workflow that does not exist.

    Attributes:
        path: The policy file (None when the policy was not loaded from a file).
        line: 1-based line of the offending key or value (None when unknown).
        key_path: Where in the policy, e.g. "agents.researcher.tools.allow[0]".
        problem: What is wrong and what is allowed instead.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str | None = None,
        line: int | None = None,
        key_path: str = "",
        more: Iterable[str] = (),
    ) -> None:
        self.path, self.line, self.key_path, self.problem = path, line, key_path, problem
        self.more = tuple(more)
        where = path or "<policy>"
        if line is not None:
            where = f"{where}:{line}"
        head = f"{where} {key_path}: {problem}" if key_path else f"{where}: {problem}"
        extra = "".join(f"\n  also: {item}" for item in self.more)
        super().__init__(head + extra)


class PolicyViolation(RunError):
    """A policy refused a call (tool not allowed, argument out of bounds, data scope...)."""

    def __init__(self, rule: str, reason: str, details: dict[str, object] | None = None) -> None:
        self.rule, self.reason = rule, reason
        self.details = dict(details or {})
        super().__init__(
            f"refused by policy rule {rule!r}: {reason}; "
            f"see which rule decides with `podium policies explain`"
        )


class BudgetExceeded(RunError):
    """A call would take a budget level (tenant per day, run, agent) over its limit."""

    def __init__(
        self,
        *,
        scope: str,
        unit: str,
        limit: float,
        spent: float,
        requested: float,
        rule: str | None = None,
        tenant_id: str | None = None,
        reserved: float = 0.0,
    ) -> None:
        self.scope, self.unit, self.limit = scope, unit, limit
        self.spent, self.requested, self.rule, self.tenant_id = spent, requested, rule, tenant_id
        self.reserved = reserved
        owner = f" of tenant {tenant_id!r}" if tenant_id is not None else ""
        source = f" (set by {rule})" if rule else ""
        held = f" and {reserved:g} held by calls still running" if reserved else ""
        super().__init__(
            f"{scope} budget{owner} of {limit:g} {unit}{source} has no room for {requested:g} "
            f"{unit}: {spent:g} already spent{held}; raise the limit in the policy or wait"
        )
