"""A readable report of which rule decides each question for one caller.

Backs `podium policies explain`: every line names the deciding setting by key path,
so the person reading it can open the policy file at that key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from podium.policies.access import evaluate_tool
from podium.policies.approval import ApprovalKind, approval_for, requires_approval
from podium.policies.arguments import evaluate_arguments
from podium.policies.budget import budget_limits
from podium.policies.decision import CallScope, Decision, first, layers
from podium.policies.output import OutputFilters, output_filters
from podium.policies.ratelimit import RateLimit, rate_limits_for
from podium.policies.schema import PolicySet
from podium.policies.settings import agent_settings, tool_settings
from podium.words import count

_WIDTH = 16


def explain(
    policy: PolicySet,
    call: CallScope,
    *,
    tool: str | None = None,
    args: Mapping[str, Any] | None = None,
) -> str:
    """Which rule decides tool access, arguments, approval, rate limits, budgets, model
    routing, data scopes and output filters for `call` (and `tool`, when given)."""
    roles = ", ".join(sorted(call.roles)) or "none"
    out = [f"policy for {call.describe()} (roles: {roles})"]
    if policy.sources:
        out.append(f"from {', '.join(policy.sources)}")
    if tool is not None:
        out += ["", f"tool {tool!r}", *_tool(policy, call, tool, args)]
    out += ["", "rate limits", *_rate_limits(policy, call, tool)]
    out += ["", "budgets", *_budgets(policy, call)]
    out += ["", "models", *_models(policy, call)]
    out += ["", "data and gates", *_gates(policy, call)]
    if tool is not None:
        out += ["", f"output filters on results of {tool!r}"]
        out += _filters(output_filters(policy, call, tool=tool))
    out += ["", "output filters on the final answer"]
    out += _filters(output_filters(policy, call))
    return "\n".join(out)


def _line(label: str, text: str, rule: str | None) -> str:
    suffix = f"  [rule: {rule}]" if rule else ""
    return f"  {label:<{_WIDTH}} {text}{suffix}"


def _verdict(label: str, decision: Decision, yes: str = "ALLOW", no: str = "DENY") -> str:
    word = yes if decision.allowed else no
    return _line(label, f"{word}: {decision.reason}", decision.rule)


def _tool(
    policy: PolicySet, call: CallScope, tool: str, args: Mapping[str, Any] | None
) -> list[str]:
    lines = [_verdict("access", evaluate_tool(policy, call, tool))]
    if args is None:
        constraints = policy.tools[tool].args if tool in policy.tools else {}
        listed = ", ".join(constraints) or "none"
        lines.append(
            _line("arguments", f"not checked (no args given); constrained: {listed}", None)
        )
    else:
        lines.append(_verdict("arguments", evaluate_arguments(policy, call, tool, args)))
    lines.append(_approval(policy, call, tool, args))
    settings = tool_settings(policy, call, tool)
    retry = json.dumps(settings.retry.model_dump()) if settings.retry else "runtime default"
    text = (
        f"side_effects={settings.side_effects} idempotent={settings.idempotent} "
        f"timeout={settings.timeout} retry={retry}"
    )
    lines.append(_line("settings", text, settings.rule))
    return lines


def _approval(policy: PolicySet, call: CallScope, tool: str, args: Mapping[str, Any] | None) -> str:
    settings = policy.tools.get(tool)
    approval = settings.requires_approval if settings is not None else None
    if args is None and approval is not None and approval.when:
        # Without arguments a conditional approval cannot be decided; say what it hangs on.
        rule = f"tools.{tool}.requires_approval.when"
        listed = ", ".join(approval.when)
        return _line("approval", f"DEPENDS on arguments {listed} (pass args to decide)", rule)
    decision = requires_approval(policy, call, tool, args or {})
    return _verdict("approval", decision, yes="NOT NEEDED", no="NEEDED")


def _rate_limits(policy: PolicySet, call: CallScope, tool: str | None) -> list[str]:
    lines = []
    if tool is not None:
        lines += _buckets(f"calls of {tool!r}", rate_limits_for(policy, call, tool=tool))
    # model="" stands for any model: it selects the scopes' model-call limits.
    limits = rate_limits_for(policy, call, model="")
    for name in policy.models:
        limits += [
            limit
            for limit in rate_limits_for(policy, call, model=name)
            if limit.key.startswith("model:")
        ]
    return lines + _buckets("model calls", limits)


def _buckets(what: str, limits: list[RateLimit]) -> list[str]:
    if not limits:
        return [_line(what, "no rate limit applies", "default")]
    lines = []
    for limit in limits:
        text = f"{what}: {limit.key} {count(limit.capacity, 'call')} per {limit.per:g}s"
        lines.append(_line("bucket", text, limit.rule))
    return lines


def _budgets(policy: PolicySet, call: CallScope) -> list[str]:
    limits = budget_limits(policy, call)
    if not limits:
        return [_line("none", "no budget limit applies", "default")]
    return [_line(limit.key, f"{limit.limit:g} {limit.unit}", limit.rule) for limit in limits]


def _models(policy: PolicySet, call: CallScope) -> list[str]:
    scopes = layers(policy, call)
    use, use_rule = first(scopes, "model", "use")
    lines = [_line("model", repr(use) if use else "the agent's own model", use_rule or "default")]
    for prefix, block in scopes:
        route = block.model.route if block.model is not None else None
        for task_class, model in (route.task_class if route else {}).items():
            route_rule = f"{prefix}.model.route.task_class.{task_class}"
            lines.append(_line("route", f"task class {task_class!r} -> {model!r}", route_rule))
    downgrade, rule = first(scopes, "model", "downgrade")
    if downgrade is not None:
        text = f"to {downgrade.to!r} when under {downgrade.below_fraction:.0%} of budget is left"
        lines.append(_line("downgrade", text, rule))
    settings = agent_settings(policy, call)
    lines.append(_line("timeout", f"{settings.timeout}", settings.timeout_rule or "default"))
    retry = json.dumps(settings.retry.model_dump()) if settings.retry else "runtime default"
    lines.append(_line("retry", retry, settings.retry_rule or "default"))
    return lines


def _gates(policy: PolicySet, call: CallScope) -> list[str]:
    patterns, rule = first(layers(policy, call), "data_scopes")
    text = ", ".join(patterns) if patterns else "none (every namespace is refused)"
    lines = [_line("data scopes", text, rule or "default-deny")]
    kinds: tuple[ApprovalKind, ...] = ("plan", "answer")
    for kind in kinds:
        decision = approval_for(policy, call, kind)
        lines.append(_verdict(f"{kind} approval", decision, yes="NOT NEEDED", no="NEEDED"))
    return lines


def _filters(filters: OutputFilters) -> list[str]:
    lines = [
        _line("redact", f"{r.pattern!r} -> {r.replacement!r}", rule) for r, rule in filters.redact
    ]
    lines += [_line("pii", kind, rule) for kind, rule in filters.pii]
    if filters.max_length is not None:
        text = f"{filters.max_length} characters, then {filters.marker!r}"
        lines.append(_line("max_length", text, filters.max_length_rule))
    return lines or [_line("none", "output passes unchanged", "default")]
