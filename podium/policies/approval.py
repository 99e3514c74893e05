"""Which calls, plans and answers need a human approval first.

A tool needs approval when `tools.<tool>.requires_approval` is set, its `when`
constraints (if any) all hold for the call's arguments (e.g. `amount: {min: 1000}`),
and the caller has none of its `unless_roles`. Plans and answers need approval when
the most specific of workflow, tenant and global sets `approve_plan` / `approve_answer`.
A Decision with allowed=False means "ask a person" and carries
details {"roles": (...), "expires_in": seconds or None}: who may approve, for how long.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from podium.policies.arguments import check
from podium.policies.decision import DEFAULT, CallScope, Decision, allow, deny, first, key, layers
from podium.policies.schema import Approval, PolicySet

ApprovalKind = Literal["plan", "answer"]


def requires_approval(
    policy: PolicySet, call: CallScope, tool: str, args: Mapping[str, Any]
) -> Decision:
    """Does this call of `tool` need a human approval? allowed=False means yes."""
    settings = policy.tools.get(tool)
    approval = settings.requires_approval if settings is not None else None
    rule = key("tools", tool, "requires_approval")
    if approval is None or not approval.required:
        return allow(f"tool {tool!r} needs no approval", rule if approval else DEFAULT)
    exempt = sorted(call.roles & set(approval.unless_roles))
    if exempt:
        return allow(
            f"the caller has role {exempt[0]!r}, exempt by {rule}.unless_roles",
            f"{rule}.unless_roles",
            role=exempt[0],
        )
    for name, constraint in approval.when.items():
        if name not in args or check(constraint, args[name]) is not None:
            return allow(
                f"argument {name!r} is outside {rule}.when.{name}, so no approval is needed",
                f"{rule}.when",
                argument=name,
            )
    return deny(
        f"tool {tool!r} needs approval by {_who(approval)} ({rule})", rule, **_details(approval)
    )


def approval_for(policy: PolicySet, call: CallScope, kind: ApprovalKind) -> Decision:
    """Does the plan (kind="plan") or the final answer (kind="answer") need approval?"""
    if kind not in ("plan", "answer"):
        raise ValueError(f"approval kind must be 'plan' or 'answer'; got {kind!r}")
    # Agent blocks have no approve_* keys, so in practice workflow, tenant or global decides.
    approval, rule = first(layers(policy, call), f"approve_{kind}")
    if approval is None or rule is None:
        return allow(f"no rule asks for approval of the {kind}", DEFAULT)
    if not approval.required:
        return allow(f"{rule} says the {kind} needs no approval", rule)
    return deny(
        f"the {kind} needs approval by {_who(approval)} ({rule})", rule, **_details(approval)
    )


def _who(approval: Approval) -> str:
    if not approval.roles:
        return "any reviewer"
    return "role " + " or ".join(repr(role) for role in approval.roles)


def _details(approval: Approval) -> dict[str, Any]:
    return {"roles": tuple(approval.roles), "expires_in": approval.expires_in}
