"""Runtime metadata of tools and agents: side effects, idempotency, timeouts, retries.

Only schema and lookup; the runtime's recovery and idempotency code acts on them.
A tool's settings live in `tools.<tool>`; `idempotent` defaults to "no side effects"
(a read-only tool can be repeated safely). An agent's `timeout` and `retry` come from
the most specific of agent, workflow, tenant and global, each field on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from podium.policies.decision import CallScope, first, key, layers
from podium.policies.schema import BreakerPolicy, PolicySet, RetrySettings


@dataclass(frozen=True, slots=True)
class ToolSettings:
    """How the runtime should treat calls of one tool.

    Attributes:
        side_effects: The tool changes something outside the run (writes, sends, pays).
        idempotent: Repeating a call with the same arguments is harmless.
        timeout: Seconds a call may take, or None for no limit.
        retry: How to retry a failed call, or None for the runtime's default.
        rule: Key path of the tool's settings ("default" when the policy has none).
    """

    side_effects: bool = False
    idempotent: bool = True
    timeout: float | None = None
    retry: RetrySettings | None = None
    rule: str = "default"
    breaker: BreakerPolicy | None = None


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """Timeout (seconds per task attempt) and retry settings of one agent."""

    timeout: float | None = None
    retry: RetrySettings | None = None
    timeout_rule: str | None = None
    retry_rule: str | None = None


def tool_settings(policy: PolicySet, call: CallScope, tool: str) -> ToolSettings:
    """The settings of `tool` (the defaults when the policy says nothing about it)."""
    del call  # Tool metadata is the same for every caller; kept for a uniform signature.
    settings = policy.tools.get(tool)
    if settings is None:
        return ToolSettings()
    idempotent = settings.idempotent
    return ToolSettings(
        side_effects=settings.side_effects,
        idempotent=(not settings.side_effects) if idempotent is None else idempotent,
        timeout=settings.timeout,
        retry=settings.retry,
        rule=key("tools", tool),
        breaker=settings.breaker,
    )


def agent_settings(policy: PolicySet, call: CallScope) -> AgentSettings:
    """The timeout and retry settings for the agent of `call`."""
    return policy.memo(("agent_settings", call), lambda: _agent_settings(policy, call))


def _agent_settings(policy: PolicySet, call: CallScope) -> AgentSettings:
    scopes = layers(policy, call)
    timeout, timeout_rule = first(scopes, "timeout")
    retry, retry_rule = first(scopes, "retry")
    return AgentSettings(timeout, retry, timeout_rule, retry_rule)
