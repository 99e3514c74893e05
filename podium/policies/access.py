"""Who may use which tool, and which data namespaces an agent may read.

Both default to deny: a tool or namespace that no setting allows is refused. A workflow
built without a policy runs under `PolicySet.baseline()`, which allows nothing, and its
refusals say so.

Tool access, most specific first: `tools.<tool>.enabled: false` turns a tool off for
everyone (`enabled: true` allows nothing by itself; it only leaves the tool on). Then
the agent, workflow, tenant and global `tools` lists: the first scope whose lists
mention the tool (by name, or by "*") decides. Within one scope a name beats "*", and
deny beats allow. So `{allow: [search_corpus], deny: ["*"]}` on an agent means "this
tool and nothing else", whatever wider scopes say.

Data scopes: the most specific scope with a `data_scopes` list decides; the namespace
is allowed when a pattern in that list matches it. Patterns use "*" (any text,
including "/") and the placeholders {tenant}, {workflow} and {agent}, so a global
`["store:{tenant}/*"]` confines every tenant to its own store.
"""

from __future__ import annotations

import re
from functools import lru_cache

from podium.policies.decision import (
    DEFAULT_DENY,
    CallScope,
    Decision,
    allow,
    deny,
    key,
    layers,
)
from podium.policies.schema import PolicySet, ToolAccess

WILDCARD = "*"


def evaluate_tool(policy: PolicySet, call: CallScope, tool: str) -> Decision:
    """May `call` use `tool`?

    Returns:
        A Decision whose rule is e.g. "agents.researcher.tools.allow",
        "tools.publish_report.enabled" or "default-deny".
    """
    settings = policy.tools.get(tool)
    if settings is not None and not settings.enabled:
        return deny(
            f"tool {tool!r} is disabled for everyone", key("tools", tool, "enabled"), tool=tool
        )
    for prefix, block in layers(policy, call):
        if block.tools is None:
            continue
        verdict = _match(block.tools, tool)
        if verdict is None:
            continue
        allowed, field, entry = verdict
        rule = f"{prefix}.tools.{field}"
        how = "by name" if entry == tool else "by '*'"
        reason = f"tool {tool!r} is {'allowed' if allowed else 'denied'} {how} in {rule}"
        return (allow if allowed else deny)(reason, rule, tool=tool, entry=entry)
    if policy.is_baseline:
        return deny(
            f"tool {tool!r} is denied: the workflow has no policy, and without one every tool "
            f"is denied; allow it with `{_where(call)}.tools.allow: [{tool}]` in a policy file "
            "passed as build_workflow(policies=...)",
            DEFAULT_DENY,
            tool=tool,
        )
    return deny(
        f"no rule allows tool {tool!r} for {call.describe()}; add it to {_where(call)}.tools.allow",
        DEFAULT_DENY,
        tool=tool,
    )


def evaluate_data_scope(policy: PolicySet, call: CallScope, namespace: str) -> Decision:
    """May `call` read or write the data namespace `namespace` (e.g. "corpus:energy")?"""
    for prefix, block in layers(policy, call):
        patterns = block.data_scopes
        if patterns is None:
            continue
        rule = f"{prefix}.data_scopes"
        for pattern in patterns:
            if scope_matches(pattern, namespace, call):
                return allow(
                    f"namespace {namespace!r} matches {pattern!r} in {rule}",
                    rule,
                    namespace=namespace,
                    pattern=pattern,
                )
        listed = ", ".join(repr(p) for p in patterns) or "nothing"
        return deny(
            f"namespace {namespace!r} is not in {rule} (allows {listed})",
            rule,
            namespace=namespace,
            patterns=tuple(patterns),
        )
    if policy.is_baseline:
        return deny(
            f"namespace {namespace!r} is refused: the workflow has no policy, and without one "
            f"every data namespace is refused; list it in `{_where(call)}.data_scopes` in a "
            "policy file passed as build_workflow(policies=...)",
            DEFAULT_DENY,
            namespace=namespace,
        )
    return deny(
        f"no data_scopes setting covers {call.describe()}, so namespace {namespace!r} is "
        f"refused; list it in {_where(call)}.data_scopes",
        DEFAULT_DENY,
        namespace=namespace,
    )


def scope_matches(pattern: str, namespace: str, call: CallScope) -> bool:
    """Whether a data-scope pattern, with its placeholders filled in for `call`, matches."""
    values = {"tenant": call.tenant, "workflow": call.workflow, "agent": call.agent}
    regex = _compile(pattern, tuple(sorted(values.items(), key=lambda kv: kv[0])))
    return regex is not None and regex.fullmatch(namespace) is not None


@lru_cache(maxsize=512)
def _compile(pattern: str, values: tuple[tuple[str, str | None], ...]) -> re.Pattern[str] | None:
    filled = dict(values)
    out: list[str] = []
    for token in re.split(r"(\*|\{[a-z]+\})", pattern):
        if token == WILDCARD:
            out.append(".*")
        elif token.startswith("{") and token.endswith("}") and token[1:-1] in filled:
            value = filled[token[1:-1]]
            if value is None:
                return None  # a placeholder the caller cannot fill matches nothing
            out.append(re.escape(value))
        else:
            out.append(re.escape(token))
    return re.compile("".join(out), re.DOTALL)


def _match(access: ToolAccess, tool: str) -> tuple[bool, str, str] | None:
    for entry in (tool, WILDCARD):
        if entry in access.deny:
            return False, "deny", entry
        if entry in access.allow:
            return True, "allow", entry
    return None


def _where(call: CallScope) -> str:
    if call.agent:
        return key("agents", call.agent)
    if call.workflow:
        return key("workflows", call.workflow)
    return "global"
