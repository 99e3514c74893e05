"""Policies: schema, YAML loader and pure evaluate_* functions (enforced by the governor)."""

from podium.policies.access import evaluate_data_scope, evaluate_tool
from podium.policies.approval import ApprovalKind, approval_for, requires_approval
from podium.policies.arguments import evaluate_arguments
from podium.policies.budget import (
    BudgetLimit,
    BudgetLimits,
    budget_limits,
    remaining,
    remaining_fraction,
)
from podium.policies.decision import DEFAULT, DEFAULT_DENY, CallScope, Decision
from podium.policies.explain import explain
from podium.policies.loader import load_policies
from podium.policies.output import FilterResult, OutputFilters, filter_output, output_filters
from podium.policies.ratelimit import BucketStep, RateLimit, book, rate_limits_for, take
from podium.policies.routing import model_fallbacks, price_table, route_model
from podium.policies.runs import RunAdmission, RunLimit, admit, run_limit
from podium.policies.schema import PolicySet, RetrySettings
from podium.policies.settings import AgentSettings, ToolSettings, agent_settings, tool_settings

__all__ = [
    "DEFAULT",
    "DEFAULT_DENY",
    "AgentSettings",
    "ApprovalKind",
    "BucketStep",
    "BudgetLimit",
    "BudgetLimits",
    "CallScope",
    "Decision",
    "FilterResult",
    "OutputFilters",
    "PolicySet",
    "RateLimit",
    "RetrySettings",
    "RunAdmission",
    "RunLimit",
    "ToolSettings",
    "admit",
    "agent_settings",
    "approval_for",
    "book",
    "budget_limits",
    "evaluate_arguments",
    "evaluate_data_scope",
    "evaluate_tool",
    "explain",
    "filter_output",
    "load_policies",
    "model_fallbacks",
    "output_filters",
    "price_table",
    "rate_limits_for",
    "remaining",
    "remaining_fraction",
    "requires_approval",
    "route_model",
    "run_limit",
    "take",
    "tool_settings",
]
