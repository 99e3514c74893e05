"""Model routing: which model a call should use, and the price table.

Three questions, asked in this order, each decided by the most specific scope
(agent -> workflow -> tenant -> global) whose `model` block answers it:

1. `downgrade: {below_fraction, to}`: when the remaining budget fraction is below the
   threshold, use `to`. It comes first because it protects the budget.
2. `route: {task_class: {<class>: <model>}}`: a model for this kind of task.
3. `use: <model>`: the scope's model.

When none answers, the call keeps its current model (rule "default").
"""

from __future__ import annotations

from podium.policies.decision import DEFAULT, CallScope, Decision, allow, first, layers
from podium.policies.schema import PolicySet
from podium.pricing import PRICES, ModelPrice, as_price


def route_model(
    policy: PolicySet,
    call: CallScope,
    *,
    current: str,
    task_class: str | None = None,
    remaining_fraction: float | None = None,
) -> Decision:
    """The model `call` should use instead of `current` (always allowed).

    Args:
        policy: The policy set.
        call: Who is calling.
        current: The model the agent would use without a policy.
        task_class: The kind of task (e.g. "summarise"), when the caller knows it.
        remaining_fraction: The budget fraction left (see `budget.remaining_fraction`).

    Returns:
        A Decision with details {"model": model to use, "routed": whether it changed}.
    """
    scopes = layers(policy, call)
    downgrade, rule = first(scopes, "model", "downgrade")
    if (
        downgrade is not None
        and rule is not None
        and remaining_fraction is not None
        and remaining_fraction < downgrade.below_fraction
    ):
        why = (
            f"{remaining_fraction:.0%} of the budget is left, under {downgrade.below_fraction:.0%}"
        )
        return _use(downgrade.to, current, why, rule)
    if task_class is not None:
        for prefix, block in scopes:
            route = block.model.route if block.model is not None else None
            if route is not None and task_class in route.task_class:
                reason = f"task class {task_class!r} is routed"
                rule = f"{prefix}.model.route.task_class.{task_class}"
                return _use(route.task_class[task_class], current, reason, rule)
    model, rule = first(scopes, "model", "use")
    if model is not None and rule is not None:
        return _use(model, current, "the scope sets its model", rule)
    return allow(f"no rule routes; keeping {current!r}", DEFAULT, model=current, routed=False)


def model_fallbacks(policy: PolicySet, call: CallScope) -> tuple[str, ...]:
    """The models that take over, in order, when the scope's model is down: the most
    specific scope's `model.fallbacks` (`model: [primary, secondary, ...]`); empty if none."""
    fallbacks, _rule = first(layers(policy, call), "model", "fallbacks")
    return tuple(fallbacks or ())


def price_table(policy: PolicySet) -> dict[str, ModelPrice]:
    """USD per 1M tokens per token kind: podium's PRICES overridden by `prices` (built
    once per policy; each caller gets its own copy to change)."""
    table = policy.memo(
        "price_table",
        lambda: {**PRICES, **{name: as_price(price) for name, price in policy.prices.items()}},
    )
    return dict(table)


def _use(model: str, current: str, why: str, rule: str) -> Decision:
    routed = model != current
    verb = f"use {model!r} instead of {current!r}" if routed else f"keep {current!r}"
    return allow(f"{why}: {verb} ({rule})", rule, model=model, routed=routed)
