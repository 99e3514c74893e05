"""One exception hierarchy for podium.

Every message quotes the bad value and says how to fix it, because these errors
are read by people wiring up workflows, usually from a terminal.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from podium.words import count

# What some errors read of the stores' values. Protocols, not imports: the stores import
# this module, and this module imports nothing of podium's but `podium.words`.


class GateRecord(Protocol):
    """A decided gate (`podium.stores.approvals.GateRecord`)."""

    @property
    def gate_id(self) -> str: ...

    @property
    def decision(self) -> Mapping[str, Any] | None: ...

    @property
    def decided_by(self) -> str | None: ...

    @property
    def decided_at(self) -> float | None: ...


class EffectKey(Protocol):
    """An effect's key (`podium.stores.effects.keys.EffectKey`)."""

    @property
    def tenant_id(self) -> str: ...

    @property
    def thread_id(self) -> str: ...

    @property
    def task_id(self) -> str: ...

    @property
    def call_key(self) -> str: ...


class DeadLetter(Protocol):
    """A dead letter (`podium.stores.dead_letters.letters.DeadLetter`)."""

    @property
    def id(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def resolution(self) -> Mapping[str, Any] | None: ...


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
            f"unknown workflow {name!r}; known workflows: {_known(self.known)}. A workflow "
            f"of your own is found through PODIUM_WORKFLOWS='{name}=your_module:factory' "
            "(a function returning the uncompiled graph) or a 'podium.workflows' entry point"
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


class ThreadBusy(RunError):
    """A run or resume of a thread that another run is writing right now (in this process
    or another); refused before anything ran, so the thread's history does not fork.

    Attributes:
        thread_id: The thread.
        tenant_id: Whose thread.
        holder: Who holds it, when known (e.g. "pid 4242 on host a1"), else "".
    """

    def __init__(self, thread_id: str, tenant_id: str, holder: str = "") -> None:
        self.thread_id = thread_id
        self.tenant_id = tenant_id
        self.holder = holder
        by = f" (by {holder})" if holder else ""
        super().__init__(
            f"thread {thread_id!r} of tenant {tenant_id!r} is already running{by}; only "
            "one run at a time may write a thread. Wait for that run to end or stop at a "
            f"gate, then resume it (`podium resume {thread_id} --tenant {tenant_id}`)"
        )


class WriterLockLost(ThreadBusy):
    """A running run's writer lock was lost (the database ended the session holding it)
    and another run took the thread meanwhile: the run stopped before its next checkpoint
    write, so the other run is the thread's one writer."""

    def __init__(self, thread_id: str, tenant_id: str, holder: str = "") -> None:
        self.thread_id, self.tenant_id, self.holder = thread_id, tenant_id, holder
        by = f" ({holder})" if holder else ""
        RunError.__init__(
            self,
            f"the run of thread {thread_id!r} of tenant {tenant_id!r} lost its writer lock "
            f"(the database ended the session holding it) and another run took the thread"
            f"{by}; this run stopped before writing more, so the thread has one writer. "
            f"When that run ends, look at the thread (`podium show {thread_id} --tenant "
            f"{tenant_id}`) and resume it if needed",
        )


class ApiKeyNotFound(PodiumError):
    """An API key id that podium's database has no record of (for the tenant, if given)."""

    def __init__(self, key_id: str, tenant_id: str | None = None) -> None:
        self.key_id = key_id
        self.tenant_id = tenant_id
        of = f" of tenant {tenant_id!r}" if tenant_id is not None else ""
        super().__init__(f"no API key {key_id!r}{of}; list the keys with `podium keys list`")


class ApiKeyExists(PodiumError):
    """A user of a tenant already has an active API key with the label asked for.

    A key's secret is kept only as a digest, so a second `create` cannot hand the first
    key out again; it is refused rather than issuing a second working secret, since the
    usual cause is the same command run again (after a lost answer or a crash).

    Attributes:
        key_id: The active key's id.
        tenant_id: Its tenant.
        identity: Its user.
        label: Its label ("" for none).
    """

    def __init__(self, key_id: str, tenant_id: str, identity: str, label: str) -> None:
        self.key_id = key_id
        self.tenant_id = tenant_id
        self.identity = identity
        self.label = label
        labelled = f"labelled {label!r}" if label else "with no label"
        super().__init__(
            f"user {identity!r} of tenant {tenant_id!r} already has an active API key "
            f"{key_id} {labelled}; no second key was made. Its secret was shown once, when "
            f"it was created: if you did not keep it, revoke it (`podium keys revoke "
            f"{key_id}`) and create it again; for a second key at once (a rotation), give "
            "the new one another --label, then revoke the old one"
        )


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


class TransientError(RunError):
    """Raise from a tool or model wrapper to mark a failure worth retrying."""

    error_class = "transient"


class CallTimeout(TransientError, TimeoutError):
    """A model call, tool call or task ran past its time limit."""

    def __init__(self, what: str, seconds: float) -> None:
        self.what = what
        self.seconds = seconds
        super().__init__(f"{what} timed out after {seconds:g}s")


class ContextWindowExceeded(RunError):
    """A model refused a call because its prompt is longer than the model's context window.

    Not retried, and no other model of the agent's list takes the call: the same prompt
    overflows again. The task fails (its agent's fallback, then a dead letter).

    Attributes:
        model: The model that refused the prompt.
        agent: Whose call it was.
        window: The model's context window in tokens, when its profile says it.
        detail: What the provider said.
    """

    error_class = "permanent"

    def __init__(self, model: str, agent: str, *, window: int | None, detail: str) -> None:
        self.model, self.agent, self.window, self.detail = model, agent, window, detail
        size = f" ({window:,} tokens)" if window else ""
        super().__init__(
            f"the prompt of agent {agent!r} exceeds the context window{size} of model "
            f"{model!r}; the provider said: {detail}. Not retried (the same prompt overflows "
            f"again): shorten what the task sends (its instruction, the results of the tasks "
            f"it depends on, long tool outputs), or give agent {agent!r} a model with a "
            "larger context window (AgentSpec(model=...) or the policy's model)"
        )


class RateLimited(RunError):
    """A rate limit's queue was longer than a call may wait; the call was not made.

    Attributes:
        tenant_id: Whose bucket.
        key: The bucket, e.g. "tool:acme:search_corpus".
        retry_after: Seconds the call would have had to wait for its turn.
        timeout: The most it was allowed to wait (the limit's `max_wait`, else its `per`).
        waited: Seconds already waited before the refusal.
    """

    error_class = "transient"  # fail fast now, retry or fall back later

    def __init__(
        self, tenant_id: str, key: str, retry_after: float, timeout: float, waited: float = 0.0
    ) -> None:
        self.tenant_id = tenant_id
        self.key = key
        self.retry_after = retry_after
        self.timeout = timeout
        self.waited = waited
        super().__init__(
            f"rate limit {key!r} of tenant {tenant_id!r} is exhausted: this call's turn "
            f"comes in {retry_after:.2f}s, more than the {timeout:.2f}s a call may wait "
            f"(waited {waited:.2f}s); lower the tenant's concurrent runs (max_runs), raise "
            "the limit's calls, or its max_wait, in the policy"
        )


class TooManyRuns(PodiumError):
    """A run was not started: its tenant already has as many runs in flight and queued as
    its policy's `max_runs` allows, and no slot came free within `run_wait` seconds.

    Attributes:
        tenant_id: Whose runs.
        limit: The tenant's `max_runs`.
        busy: Runs in flight or queued at the last look.
        waited: Seconds waited for a slot.
    """

    def __init__(self, tenant_id: str, limit: int, busy: int, waited: float, rule: str) -> None:
        self.tenant_id = tenant_id
        self.limit = limit
        self.busy = busy
        self.waited = waited
        super().__init__(
            f"tenant {tenant_id!r} has {count(busy, 'run')} in flight or queued and its limit "
            f"({rule}) is {limit}; no slot came free in {waited:.2f}s: retry later, or "
            "raise max_runs (or run_wait) in the policy"
        )


class CircuitOpen(RunError):
    """A call refused because its circuit breaker is open (or its one probe is in flight)."""

    error_class = "transient"  # fail fast now, retry or fall back later

    def __init__(self, key: str, retry_after: float, *, state: str = "open") -> None:
        self.key = key
        self.retry_after = retry_after
        self.state = state
        if state == "half_open":
            why = "is half-open and its single probe call has not reported yet"
        else:
            why = "is open after repeated failures"
        super().__init__(
            f"circuit breaker {key!r} {why}; calls fail fast until it lets a probe call "
            f"through in {retry_after:.1f}s. Retry after that, or use the agent's fallback"
        )


class BreakerKeyError(RunError):
    """A tenant-scoped breaker key used on behalf of another tenant."""

    def __init__(self, key: str, tenant_id: str) -> None:
        self.key = key
        self.tenant_id = tenant_id
        super().__init__(
            f"breaker key {key!r} belongs to another tenant than {tenant_id!r}; build "
            f"per-tenant keys with breaker_key(kind, name, tenant_id={tenant_id!r})"
        )


class GateError(RunError):
    """A decision that cannot be applied; the gate stays as it was."""


class AlreadyDecided(GateError):
    def __init__(self, gate: GateRecord) -> None:
        self.gate = gate
        verdict = (gate.decision or {}).get("decision", "?")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(gate.decided_at or 0))
        super().__init__(
            f"gate {gate.gate_id!r} was already decided: {verdict} by "
            f"{gate.decided_by or 'unknown'} at {when} UTC; nothing was done twice"
        )


class GateForbidden(GateError):
    """The deciding user lacks every role the gate requires."""


class EffectNotFound(RunError):
    """`complete`, `fail` or `resolve_in_doubt` for a key `begin` never saw."""

    def __init__(self, key: EffectKey) -> None:
        self.key = key
        super().__init__(
            f"no tool effect {key.call_key!r} of task {key.task_id!r} in thread "
            f"{key.thread_id!r} for tenant {key.tenant_id!r}; call EffectLedger.begin first"
        )


class EffectConflict(RunError):
    """One call key used for two different tools (a reused idempotency key)."""

    def __init__(self, key: EffectKey, recorded: str, tool: str) -> None:
        self.key = key
        super().__init__(
            f"call key {key.call_key!r} of task {key.task_id!r} was recorded for tool "
            f"{recorded!r}, not {tool!r}; give every tool call its own idempotency key"
        )


class EffectStateError(RunError):
    """`resolve_in_doubt` on a call that is not in doubt."""

    def __init__(self, key: EffectKey, state: str) -> None:
        self.key = key
        self.state = state
        super().__init__(
            f"tool effect {key.call_key!r} of task {key.task_id!r} is {state!r}, not in "
            "doubt; only a call that started and never completed or failed can be resolved"
        )


class DeadLetterNotFound(RunError):
    """A dead-letter id the tenant has no letter for (another tenant's is reported alike)."""

    def __init__(self, id: str, tenant_id: str) -> None:
        self.id = id
        self.tenant_id = tenant_id
        super().__init__(
            f"no dead letter {id!r} for tenant {tenant_id!r}; list the tenant's dead letters "
            "with `podium dlq list --tenant TENANT` (DeadLetters.list in Python)"
        )


class DeadLetterStateError(RunError):
    """An action the letter's status does not allow (double replay, discarding a replayed one)."""

    def __init__(self, letter: DeadLetter, action: str, next_step: str = "") -> None:
        self.id = letter.id
        self.status = letter.status
        self.action = action
        res = letter.resolution or {}
        why = {
            "pending": "it is pending and no replay is running; claim it first",
            "replaying": f"it is already being replayed by {res.get('replay_by')!r}; wait for "
            "that replay to finish (finish_replay) before acting on it again",
            "replayed": "it was already replayed; replaying it again would repeat its effects",
            "discarded": f"it was discarded by {res.get('discarded_by')!r} "
            f"({res.get('reason')!r}); nothing more can be done with it",
        }[letter.status]
        then = f". {next_step}" if next_step else ""
        super().__init__(f"cannot {action} dead letter {letter.id!r}: {why}{then}")


class ReplayError(RunError):
    """The dead letter cannot be replayed on its thread as it is now."""


class AuditError(PodiumError):
    """An audit event or a verify request that cannot be accepted as given."""
