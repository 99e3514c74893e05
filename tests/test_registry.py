"""AgentSpec and AgentRegistry: tool coercion, build-time validation, fallbacks, describe()."""

from __future__ import annotations

import re

import pytest
from langchain_core.tools import BaseTool, Tool
from pydantic import ValidationError

from podium.errors import ConfigurationError, UnknownAgentError
from podium.registry import RESERVED_NAMES, AgentRegistry, AgentSpec, as_registry
from podium.tools import calculate, search_corpus


def lookup_price(item: str) -> str:
    """Look up the price of an item."""
    return f"{item}: 3 dollars"


def count_words(text: str, minimum: int = 1) -> int:
    """Count the words in a text that have at least `minimum` letters."""
    return sum(len(w) >= minimum for w in text.split())


def _nameless_tool() -> Tool:
    return Tool(name="", func=lambda text: text, description="echo")


def _blank_tool() -> Tool:
    return Tool(name="   ", func=lambda text: text, description="echo")


# -- AgentSpec ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "name", "args"),
    [(lookup_price, "lookup_price", {"item"}), (count_words, "count_words", {"text", "minimum"})],
    ids=["one-arg", "two-args"],
)
def test_plain_functions_become_tools(function, name, args):
    spec = AgentSpec(name="shopper", tools=[function])

    (made,) = spec.tools
    assert isinstance(made, BaseTool)
    assert made.name == name
    assert made.description.startswith(function.__doc__.splitlines()[0])
    assert set(made.args) == args
    assert spec.tool_names == [name]


def test_coerced_tools_can_be_called():
    spec = AgentSpec(name="shopper", tools=[lookup_price, count_words])
    price, words = spec.tools
    assert price.invoke({"item": "tea"}) == "tea: 3 dollars"
    assert words.invoke({"text": "a bb ccc", "minimum": 2}) == 2


def test_langchain_tools_are_kept_as_they_are():
    spec = AgentSpec(name="mixed", tools=[calculate, lookup_price, search_corpus])
    assert spec.tools[0] is calculate
    assert spec.tools[2] is search_corpus
    assert spec.tool_names == ["calculate", "lookup_price", "search_corpus"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "a", "tools": ["calculate"]}, "neither a LangChain tool nor a function"),
        ({"name": "a", "tools": [42]}, "neither a LangChain tool nor a function"),
        ({"name": ""}, "name"),
        ({"name": "1st"}, "name"),
        ({"name": "has space"}, "name"),
        ({"name": "a", "max_steps": 0}, "max_steps"),
        ({"name": "a", "timeout": 0}, "timeout"),
        ({"name": "a", "colour": "red"}, "colour"),
    ],
    ids=[
        "tool-as-string",
        "tool-as-number",
        "empty-name",
        "name-starts-with-digit",
        "name-with-space",
        "zero-steps",
        "zero-timeout",
        "unknown-field",
    ],
)
def test_agent_spec_rejects_bad_fields(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        AgentSpec(**kwargs)


def test_no_tools_by_default():
    spec = AgentSpec(name="writer")
    assert spec.tools == [] and spec.tool_names == []


# -- AgentRegistry validation -------------------------------------------------------------

A = AgentSpec(name="a")
B = AgentSpec(name="b")

BAD = [
    pytest.param(
        [AgentSpec(name="a"), AgentSpec(name="a", description="again")],
        ConfigurationError,
        ["duplicate agent name 'a'"],
        r"give every agent a unique name",
        id="duplicate-name",
    ),
    *(
        pytest.param(
            [A, AgentSpec(name=reserved)],
            ConfigurationError,
            [f"agent name {reserved!r} is reserved", "supervisor"],
            r"rename it",
            id=f"reserved-{reserved}",
        )
        for reserved in ("supervisor", "aggregate", "FINISH")
    ),
    pytest.param(
        [],
        ConfigurationError,
        ["at least one agent"],
        r"needs at least one agent",
        id="no-agents",
    ),
    pytest.param(
        [A, {"name": "b"}],
        ConfigurationError,
        ["expected podium.AgentSpec", "dict"],
        r"expected podium\.AgentSpec",
        id="not-a-spec",
    ),
    pytest.param(
        [AgentSpec(name="a", fallback="reviewer"), B],
        UnknownAgentError,
        ["unknown agent 'reviewer'", "fallback of agent 'a'"],
        r"known agents: a, b",
        id="unknown-fallback",
    ),
    pytest.param(
        [AgentSpec(name="a", fallback="a"), B],
        ConfigurationError,
        ["agent 'a'", "its fallback"],
        r"(another agent|remove|drop|different|fallback=None|other agent)",
        id="fallback-to-itself",
    ),
    pytest.param(
        [AgentSpec(name="a", fallback="b"), AgentSpec(name="b", fallback="a")],
        ConfigurationError,
        ["fallback cycle: a -> b -> a"],
        r"end the chain at an agent without a fallback",
        id="fallback-cycle-of-2",
    ),
    pytest.param(
        [
            AgentSpec(name="a", fallback="b"),
            AgentSpec(name="b", fallback="c"),
            AgentSpec(name="c", fallback="a"),
        ],
        ConfigurationError,
        ["fallback cycle: a -> b -> c -> a"],
        r"end the chain at an agent without a fallback",
        id="fallback-cycle-of-3",
    ),
    pytest.param(
        [
            AgentSpec(name="entry", fallback="a"),
            AgentSpec(name="a", fallback="b"),
            AgentSpec(name="b", fallback="a"),
        ],
        ConfigurationError,
        ["fallback cycle:", "a -> b -> a"],
        r"end the chain at an agent without a fallback",
        id="chain-into-a-cycle",
    ),
    pytest.param(
        [AgentSpec(name="a", tools=[calculate, _nameless_tool()])],
        ConfigurationError,
        ["agent 'a' has a tool with an empty name (tools[1])"],
        r"give the tool a name",
        id="empty-tool-name",
    ),
    pytest.param(
        [AgentSpec(name="a", tools=[_blank_tool()])],
        ConfigurationError,
        ["agent 'a' has a tool with an empty name (tools[0])"],
        r"give the tool a name",
        id="blank-tool-name",
    ),
    pytest.param(
        [AgentSpec(name="a", tools=[calculate, search_corpus, calculate])],
        ConfigurationError,
        ["agent 'a'", "calculate", "more than once"],
        r"(remove|rename|once|unique|drop)",
        id="same-tool-twice",
    ),
    pytest.param(
        [AgentSpec(name="a", tools=[lookup_price, lookup_price])],
        ConfigurationError,
        ["agent 'a'", "lookup_price", "more than once"],
        r"(remove|rename|once|unique|drop)",
        id="same-function-twice",
    ),
    pytest.param(
        [AgentSpec(name="a", graph=object(), tools=[calculate])],
        ConfigurationError,
        ["agent 'a' has both graph= and tools="],
        r"a custom graph brings its own tools",
        id="graph-and-tools",
    ),
]


@pytest.mark.parametrize(("agents", "error", "fragments", "fix"), BAD)
def test_registry_rejects_bad_workflows_and_names_the_fix(agents, error, fragments, fix):
    with pytest.raises(error) as info:
        AgentRegistry(agents)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert re.search(fix, message), f"the message does not say how to fix it: {message}"


def test_unknown_fallback_error_carries_structured_fields():
    with pytest.raises(UnknownAgentError) as info:
        AgentRegistry([AgentSpec(name="a", fallback="zed"), B])
    assert info.value.name == "zed"
    assert info.value.known == ["a", "b"]
    assert isinstance(info.value, ConfigurationError)


def test_reserved_names_cover_the_graph_nodes():
    assert {"supervisor", "aggregate", "FINISH"} <= RESERVED_NAMES


def test_a_graph_without_tools_is_accepted():
    graph = object()
    registry = AgentRegistry([AgentSpec(name="delegate", graph=graph)])
    assert registry.get("delegate").graph is graph


# -- lookups and fallback chains ----------------------------------------------------------


@pytest.fixture
def chained() -> AgentRegistry:
    return AgentRegistry(
        [
            AgentSpec(name="primary", fallback="backup"),
            AgentSpec(name="backup", fallback="last"),
            AgentSpec(name="last"),
            AgentSpec(name="side", fallback="last"),
        ]
    )


@pytest.mark.parametrize(
    ("name", "chain"),
    [
        ("primary", ["backup", "last"]),
        ("backup", ["last"]),
        ("last", []),
        ("side", ["last"]),
    ],
)
def test_fallback_chain(chained, name, chain):
    assert chained.fallback_chain(name) == chain


def test_registry_lookups(chained):
    assert chained.names == ["primary", "backup", "last", "side"]
    assert len(chained) == 4
    assert "backup" in chained and "nobody" not in chained
    assert [spec.name for spec in chained] == chained.names
    assert chained.get("last").name == "last"


def test_fallback_agents_are_no_workers_and_the_supervisor_is_not_told_of_them(chained):
    assert chained.fallbacks == ["backup", "last"]
    assert chained.workers == ["primary", "side"]
    assert chained.describe().splitlines() == [
        "- primary: no description",
        "- side: no description",
    ]


def test_get_unknown_agent_names_the_known_ones(chained):
    with pytest.raises(UnknownAgentError, match="unknown agent 'bakup'; known agents: backup, "):
        chained.get("bakup")


def test_as_registry_wraps_specs_and_passes_registries_through(chained):
    assert as_registry(chained) is chained
    made = as_registry(iter([A, B]))
    assert isinstance(made, AgentRegistry) and made.names == ["a", "b"]


# -- describe -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "line"),
    [
        (AgentSpec(name="plain"), "- plain: no description"),
        (AgentSpec(name="w", description="Writes."), "- w: Writes."),
        (
            AgentSpec(name="w", description="Writes.", capabilities=["writing", "editing"]),
            "- w: Writes. (capabilities: writing, editing)",
        ),
        (
            AgentSpec(name="calc", tools=[calculate, lookup_price]),
            "- calc: no description (tools: calculate, lookup_price)",
        ),
        (
            AgentSpec(
                name="researcher",
                description="Finds facts.",
                capabilities=["research"],
                tools=[search_corpus],
            ),
            "- researcher: Finds facts. (capabilities: research; tools: search_corpus)",
        ),
    ],
    ids=["bare", "description", "capabilities", "tools", "everything"],
)
def test_describe_one_agent(spec, line):
    assert AgentRegistry([spec]).describe() == line


def test_describe_lists_agents_in_order_one_per_line():
    registry = AgentRegistry([AgentSpec(name="z", description="Last."), A, B])
    assert registry.describe().splitlines() == [
        "- z: Last.",
        "- a: no description",
        "- b: no description",
    ]
