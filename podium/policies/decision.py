"""Decisions, the caller's scope, and how scopes layer.

Scopes layer from general to specific: global -> tenant -> workflow -> agent -> tool.
For each question the most specific scope that says something about it decides, and
the decision names that setting by its key path (e.g. "agents.researcher.tools.allow"),
so a person can find the line that decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from podium.context import DEFAULT_TENANT
from podium.errors import PolicyViolation
from podium.policies._yaml import format_path
from podium.policies.schema import Block, PolicySet

#: Rule name of a refusal because no setting allows the thing asked for.
DEFAULT_DENY = "default-deny"
#: Rule name of an answer given because no setting says anything (nothing to enforce).
DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one policy question.

    Attributes:
        allowed: True when the call may go ahead as asked. For approval questions False
            means "needs a human approval first"; for routing and output filters it is
            always True (they rewrite, they do not refuse).
        reason: One sentence for people and audit logs.
        rule: Key path of the deciding setting, "default-deny" or "default".
        details: Structured facts (argument, limit, retry_after, model...), read-only.
    """

    allowed: bool
    reason: str
    rule: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    def raise_if_denied(self) -> Decision:
        """Return self when allowed, else raise `PolicyViolation` carrying rule and reason."""
        if not self.allowed:
            raise PolicyViolation(self.rule, self.reason, dict(self.details))
        return self


@dataclass(frozen=True, slots=True)
class CallScope:
    """Who is asking: the tenant, the workflow and agent (when known) and the user's roles."""

    tenant: str = DEFAULT_TENANT
    workflow: str | None = None
    agent: str | None = None
    roles: frozenset[str] = frozenset()

    def describe(self) -> str:
        """E.g. "tenant 'acme', workflow 'research_brief', agent 'researcher'"."""
        parts = [f"tenant {self.tenant!r}"]
        if self.workflow:
            parts.append(f"workflow {self.workflow!r}")
        if self.agent:
            parts.append(f"agent {self.agent!r}")
        return ", ".join(parts)


def allow(reason: str, rule: str, **details: Any) -> Decision:
    return Decision(True, reason, rule, details)


def deny(reason: str, rule: str, **details: Any) -> Decision:
    return Decision(False, reason, rule, details)


def layers(policy: PolicySet, call: CallScope) -> list[tuple[str, Block]]:
    """The scope blocks that apply to `call`, most specific first, with their key paths."""
    found: list[tuple[str, Block]] = []
    if call.agent is not None and call.agent in policy.agents:
        found.append((format_path(("agents", call.agent)), policy.agents[call.agent]))
    if call.workflow is not None and call.workflow in policy.workflows:
        found.append((format_path(("workflows", call.workflow)), policy.workflows[call.workflow]))
    if call.tenant in policy.tenants:
        found.append((format_path(("tenants", call.tenant)), policy.tenants[call.tenant]))
    found.append(("global", policy.global_))
    return found


def first(scopes: list[tuple[str, Any]], *attributes: str) -> tuple[Any, str] | tuple[None, None]:
    """The value at `attributes` in the most specific scope that sets it, with its key path.

    `first(layers(ps, call), "output", "max_length")` -> `(4000, "global.output.max_length")`.
    """
    for prefix, block in scopes:
        value: Any = block
        for name in attributes:
            value = getattr(value, name, None)
            if value is None:
                break
        if value is not None:
            return value, ".".join((prefix, *attributes))
    return None, None


def key(*parts: Any) -> str:
    """A key path for a rule, quoting names with dots: key("tools", "x", "args")."""
    return format_path(parts)
