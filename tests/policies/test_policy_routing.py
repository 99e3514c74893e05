"""Model routing: downgrade first, then task-class routes, then the scope's model."""

from __future__ import annotations

import pytest

from podium.errors import PolicyError
from podium.models import PRICES
from podium.policies import CallScope, model_fallbacks, price_table, route_model
from podium.pricing import ModelPrice

POLICY = """
global:
  model:
    use: "openai:gpt-4o"
    route: {task_class: {summarise: "openai:gpt-4o-mini", extract: "openai:gpt-4.1-mini"}}
    downgrade: {below_fraction: 0.1, to: demo}
tenants:
  acme:
    model: {use: "anthropic:claude-sonnet-4-0"}
workflows:
  research_brief:
    model:
      downgrade: {below_fraction: 0.25, to: "openai:gpt-4o-mini"}
agents:
  writer:
    model:
      use: "openai:gpt-4.1"
      route: {task_class: {summarise: "openai:gpt-4.1-mini"}}
prices:
  gpt-4o-mini: [0.1, 0.4]
  my-local: [0, 0]
"""

CASES = [
    # (call, task_class, remaining_fraction, model, rule)
    (CallScope(), None, None, "openai:gpt-4o", "global.model.use"),
    (CallScope("acme"), None, None, "anthropic:claude-sonnet-4-0", "tenants.acme.model.use"),
    (CallScope(agent="writer"), None, 0.5, "openai:gpt-4.1", "agents.writer.model.use"),
    (
        CallScope(agent="writer"),
        "summarise",
        None,
        "openai:gpt-4.1-mini",
        "agents.writer.model.route.task_class.summarise",
    ),
    (
        CallScope(agent="writer"),
        "extract",
        None,
        "openai:gpt-4.1-mini",
        "global.model.route.task_class.extract",
    ),
    (CallScope(agent="writer"), "unknown_class", None, "openai:gpt-4.1", "agents.writer.model.use"),
    (CallScope(agent="writer"), "summarise", 0.05, "demo", "global.model.downgrade"),
    (CallScope(agent="writer"), None, 0.1, "openai:gpt-4.1", "agents.writer.model.use"),
    (
        CallScope("acme", "research_brief", "writer"),
        None,
        0.2,
        "openai:gpt-4o-mini",
        "workflows.research_brief.model.downgrade",
    ),
    # The workflow's threshold is the most specific: 0.3 is above it, no downgrade.
    (
        CallScope("acme", "research_brief"),
        None,
        0.3,
        "anthropic:claude-sonnet-4-0",
        "tenants.acme.model.use",
    ),
]


@pytest.mark.parametrize(("call", "task_class", "fraction", "model", "rule"), CASES)
def test_route_model(policy, call, task_class, fraction, model, rule):
    decision = route_model(
        policy(POLICY), call, current="demo", task_class=task_class, remaining_fraction=fraction
    )
    assert decision.allowed
    assert (decision.details["model"], decision.rule) == (model, rule), decision.reason
    assert decision.details["routed"] is (model != "demo")


def test_no_rule_keeps_the_current_model(policy):
    decision = route_model(policy("{}"), CallScope(), current="openai:gpt-4o", task_class="x")
    assert (decision.rule, dict(decision.details)) == (
        "default",
        {"model": "openai:gpt-4o", "routed": False},
    )


def test_price_table_overrides_defaults(policy):
    prices = price_table(policy(POLICY))
    assert prices["gpt-4o-mini"] == ModelPrice(0.1, 0.4)
    assert prices["my-local"] == ModelPrice(0.0, 0.0)
    assert prices["gpt-4o"] == PRICES["gpt-4o"]
    assert PRICES["gpt-4o-mini"][:2] == (0.15, 0.60)  # the shared table is untouched


def test_a_price_table_changed_by_its_caller_leaves_the_policys_prices_alone(policy):
    loaded = policy(POLICY)
    mine = price_table(loaded)
    mine["gpt-4o-mini"] = ModelPrice(99.0, 99.0)  # a caller's own table, its own to change
    del mine["gpt-4o"]
    prices = price_table(loaded)
    assert prices["gpt-4o-mini"] == ModelPrice(0.1, 0.4)
    assert prices["gpt-4o"] == PRICES["gpt-4o"]


FALLBACKS = """
global:
  model: ["openai:gpt-4o", "anthropic:claude-sonnet-4-5"]
tenants:
  acme:
    model: "openai:gpt-4.1"
agents:
  writer:
    model: {use: "openai:gpt-4.1-mini", fallbacks: ["ollama:llama3.1"]}
"""


def test_a_model_list_is_the_model_then_its_fallbacks(policy):
    loaded = policy(FALLBACKS)
    assert route_model(loaded, CallScope(), current="demo").details["model"] == "openai:gpt-4o"
    assert model_fallbacks(loaded, CallScope()) == ("anthropic:claude-sonnet-4-5",)
    assert model_fallbacks(loaded, CallScope(agent="writer")) == ("ollama:llama3.1",)
    # A plain string names the model; the fallbacks of a more general scope still apply.
    assert route_model(loaded, CallScope("acme"), current="demo").details["model"] == (
        "openai:gpt-4.1"
    )
    assert model_fallbacks(loaded, CallScope("acme")) == ("anthropic:claude-sonnet-4-5",)


def test_an_empty_model_list_is_refused(policy):
    with pytest.raises(PolicyError, match="at least one model"):
        policy("global:\n  model: []\n")


def test_prices_are_set_per_token_kind(policy):
    loaded = policy(
        """
        prices:
          gpt-4o: {input: 2.0, output: 8.0, cached_input: 0.5}
          local: [0.1, 0.2, 0.05]
        """
    )
    prices = price_table(loaded)
    assert prices["gpt-4o"] == ModelPrice(2.0, 8.0, 0.5)
    assert prices["local"] == ModelPrice(0.1, 0.2, 0.05)
    with pytest.raises(PolicyError, match="prices"):
        policy("prices:\n  x: {input: 1, output: 2, cache: 3}\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("global:\n  model: {use: demo}\n", False),
        ("agents:\n  writer:\n    model: {downgrade: {below_fraction: 0.2, to: demo}}\n", True),
        ("tenants:\n  acme:\n    model: {downgrade: {below_fraction: 0.2, to: demo}}\n", True),
        ("workflows:\n  w:\n    model: {downgrade: {below_fraction: 0.2, to: demo}}\n", True),
    ],
)
def test_routes_on_budget_says_whether_routing_reads_spend(policy, text, expected):
    assert policy(text).routes_on_budget is expected
