"""Loading policy files: every malformed case names file, line and key path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from podium.errors import ConfigurationError, PolicyError
from podium.graphs.research_brief import research_agents
from podium.policies import PolicySet, load_policies

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "policies" / "default.yaml"

AGENTS = ["analyst", "researcher", "writer"]
TOOLS = ["calculate", "search_corpus"]

MALFORMED = [
    # (id, yaml text, line, key path, words the message must contain)
    (
        "yaml-syntax",
        """
        global:
          tools:
            allow: [a, b
          output: {}
        """,
        4,
        "",
        ["invalid YAML", "expected ',' or ']'"],
    ),
    (
        "yaml-indentation",
        """
        global:
          timeout: 3
         tools: {}
        """,
        3,
        "",
        ["invalid YAML"],
    ),
    (
        "two-documents",
        """
        global: {}
        ---
        global: {}
        """,
        2,
        "",
        ["invalid YAML", "single document"],
    ),
    (
        "unknown-key",
        """
        global:
          tools:
            alow: [x]
        """,
        3,
        "global.tools.alow",
        ["unknown key 'alow'", "allowed: allow, deny", "did you mean 'allow'"],
    ),
    (
        "unknown-section",
        """
        global: {}
        agent:
          researcher: {}
        """,
        2,
        "agent",
        ["unknown key 'agent'", "agents, global, models, prices, tenants, tools, workflows"],
    ),
    (
        "key-not-allowed-at-this-scope",
        """
        agents:
          writer:
            budgets: {per_day: {usd: 1}}
        """,
        3,
        "agents.writer.budgets.per_day",
        ["unknown key 'per_day'", "allowed: per_run"],
    ),
    (
        "wrong-type",
        """
        global:
          output: {}
          timeout: soon
        """,
        3,
        "global.timeout",
        ["valid number", "'soon'"],
    ),
    (
        "wrong-type-in-list-item",
        """
        global:
          rate_limits:
            - {calls: 5, per: 1}
            - calls: -1
              per: 60
        """,
        4,
        "global.rate_limits[1].calls",
        ["greater than 0", "-1"],
    ),
    (
        "negative-max-wait",
        """
        tools:
          search_corpus:
            rate_limit: {calls: 5, per: 60, max_wait: -1}
        """,
        3,
        "tools.search_corpus.rate_limit.max_wait",
        ["greater than or equal to 0", "-1"],
    ),
    (
        "max-wait-over-a-day",
        """
        global:
          rate_limits: [{calls: 5, per: 60, max_wait: 100000}]
        """,
        2,
        "global.rate_limits[0].max_wait",
        ["less than or equal to 86400", "100000"],
    ),
    (
        "max-runs-zero",
        """
        tenants:
          acme:
            max_runs: 0
        """,
        3,
        "tenants.acme.max_runs",
        ["greater than or equal to 1", "0"],
    ),
    (
        "run-wait-over-an-hour",
        """
        global:
          max_runs: 10
          run_wait: 7200
        """,
        3,
        "global.run_wait",
        ["less than or equal to 3600", "7200"],
    ),
    (
        "missing-required",
        """
        tools:
          search_corpus:
            rate_limit: {per: 60}
        """,
        3,
        "tools.search_corpus.rate_limit.calls",
        ["missing required key 'calls'"],
    ),
    (
        "not-a-choice",
        """
        global:
          rate_limits: [{calls: 1, per: 1, kind: models}]
        """,
        2,
        "global.rate_limits[0].kind",
        ["'any', 'model' or 'tool'", "'models'"],
    ),
    (
        "bad-regex",
        """
        tools:
          search_corpus:
            args:
              query: {pattern: "("}
        """,
        4,
        "tools.search_corpus.args.query.pattern",
        ["invalid regular expression '('"],
    ),
    (
        "min-above-max",
        """
        tools:
          calculate:
            args:
              expression: {min: 5, max: 1}
        """,
        4,
        "tools.calculate.args.expression",
        ["min 5.0 is larger than max 1.0"],
    ),
    (
        "key-twice-in-one-file",
        """
        agents:
          writer: {}
          writer: {}
        """,
        3,
        "agents.writer",
        ["appears twice", "first at line 2"],
    ),
    (
        "top-level-not-a-mapping",
        """
        - global
        """,
        1,
        "",
        ["top level must be a mapping"],
    ),
    (
        "section-not-a-mapping",
        """
        agents: [researcher]
        """,
        1,
        "agents",
        ["mapping of names"],
    ),
    (
        "price-too-short",
        """
        prices:
          gpt-4o: [1.0]
        """,
        2,
        "prices.gpt-4o[1]",
        ["too few items"],
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "key_path", "words"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_policy_names_file_line_and_key_path(write_policy, text, line, key_path, words):
    path = write_policy(text)
    with pytest.raises(PolicyError) as caught:
        load_policies(path)
    error = caught.value
    assert (error.path, error.line, error.key_path) == (str(path), line, key_path)
    prefix = f"{path}:{line} {key_path}: " if key_path else f"{path}:{line}: "
    assert str(error).startswith(prefix), str(error)
    for word in words:
        assert word in str(error)
    assert isinstance(error, ConfigurationError)


NAMES = [
    (
        "unknown-agent",
        """
        agents:
          researcher: {}
          reseacher: {}
        """,
        3,
        "agents.reseacher",
        "unknown agent 'reseacher'; known: analyst, researcher, writer; did you mean 'researcher'?",
    ),
    (
        "unknown-tool-section",
        """
        tools:
          serch_corpus: {timeout: 3}
        """,
        2,
        "tools.serch_corpus",
        "unknown tool 'serch_corpus'; known: calculate, search_corpus; "
        "did you mean 'search_corpus'?",
    ),
    (
        "unknown-tool-in-allow-list",
        """
        agents:
          researcher:
            tools:
              allow:
                - "*"
                - search_corpus
                - calculator
        """,
        7,
        "agents.researcher.tools.allow[2]",
        "unknown tool 'calculator'; known: calculate, search_corpus; did you mean 'calculate'?",
    ),
    (
        "unknown-tool-in-global-deny",
        """
        global:
          tools: {deny: [rm_rf]}
        """,
        2,
        "global.tools.deny[0]",
        "unknown tool 'rm_rf'; known: calculate, search_corpus",
    ),
    (
        "unknown-workflow",
        """
        workflows:
          research_breif: {}
        """,
        2,
        "workflows.research_breif",
        "unknown workflow 'research_breif'; known: research_brief; did you mean 'research_brief'?",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "key_path", "message"),
    [case[1:] for case in NAMES],
    ids=[case[0] for case in NAMES],
)
def test_unknown_names_are_errors_with_line(write_policy, text, line, key_path, message):
    path = write_policy(text)
    with pytest.raises(PolicyError) as caught:
        load_policies(path, agents=AGENTS, tools=TOOLS, workflows=["research_brief"])
    assert str(caught.value) == f"{path}:{line} {key_path}: {message}"


def test_unknown_names_checked_later_by_validate_names(write_policy):
    path = write_policy(
        """
        global: {}
        agents:
          reseacher: {timeout: 5}
        """
    )
    policy = load_policies(path)  # no names given: loads
    policy.validate_names(tools=TOOLS)  # agents not given: not checked
    with pytest.raises(PolicyError) as caught:
        policy.validate_names(agents=AGENTS)
    assert str(caught.value).startswith(f"{path}:3 agents.reseacher: unknown agent 'reseacher'")


def test_every_problem_is_listed_first_one_in_file_order(write_policy):
    path = write_policy(
        """
        tools:
          calculate: {timeout: -1}
        global:
          tools: {alow: []}
        """
    )
    with pytest.raises(PolicyError) as caught:
        load_policies(path)
    error = caught.value
    assert (error.line, error.key_path) == (2, "tools.calculate.timeout")
    assert error.more == (
        f"{path}:4 global.tools.alow: unknown key 'alow'; allowed: allow, deny; "
        "did you mean 'allow'?",
    )


def test_scope_defined_in_two_files_names_both(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("agents:\n  researcher: {}\n  writer: {timeout: 5}\n")
    (tmp_path / "b.yaml").write_text("tools: {}\nagents:\n  writer: {timeout: 9}\n")
    with pytest.raises(PolicyError) as caught:
        load_policies(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'b.yaml'}:3 agents.writer: defined twice")
    assert f"{tmp_path / 'a.yaml'}:3" in message


def test_global_in_two_files_is_an_error(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("global: {timeout: 5}\n")
    (tmp_path / "b.yml").write_text("\nglobal: {timeout: 9}\n")
    with pytest.raises(PolicyError) as caught:
        load_policies(tmp_path)
    assert (caught.value.path, caught.value.line, caught.value.key_path) == (
        str(tmp_path / "b.yml"),
        2,
        "global",
    )
    assert f"{tmp_path / 'a.yaml'}:1" in str(caught.value)


def test_directory_merges_scopes_and_errors_point_at_the_right_file(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("global: {timeout: 5}\nagents:\n  researcher: {}\n")
    (tmp_path / "b.yaml").write_text("agents:\n  writer: {timeout: 9}\n")
    (tmp_path / "notes.txt").write_text("not a policy")
    policy = load_policies(tmp_path, agents=AGENTS)
    assert set(policy.agents) == {"researcher", "writer"}
    assert policy.global_.timeout == 5
    assert policy.sources == (str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))
    assert policy.origin(("agents", "writer", "timeout")) == (str(tmp_path / "b.yaml"), 2)
    (tmp_path / "c.yaml").write_text("tools:\n  calculate:\n    timeot: 1\n")
    with pytest.raises(PolicyError) as caught:
        load_policies(tmp_path)  # one bad file: nothing is loaded
    assert (caught.value.path, caught.value.line) == (str(tmp_path / "c.yaml"), 3)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: d / "missing.yaml", "no policy file or directory"),
        (lambda d: d, "no *.yaml files in directory"),
    ],
    ids=["missing-path", "empty-directory"],
)
def test_missing_files_are_errors(tmp_path: Path, make, words):
    with pytest.raises(PolicyError, match="no ") as caught:
        load_policies(make(tmp_path))
    assert words in str(caught.value)


def test_empty_file_and_empty_sections_load(write_policy):
    assert load_policies(write_policy("")).agents == {}
    policy = load_policies(write_policy("agents:\ntools:\nglobal:\n  tools: {allow: []}\n"))
    assert (dict(policy.agents), policy.global_.tools.allow) == ({}, ())


def test_policy_is_frozen(write_policy):
    policy = load_policies(write_policy("agents:\n  writer: {data_scopes: [a]}\n"))
    with pytest.raises(ValidationError):
        policy.agents["writer"].timeout = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.agents["x"] = policy.agents["writer"]  # type: ignore[index]
    assert policy.agents["writer"].data_scopes == ("a",)


def test_built_in_code_without_files(write_policy):
    policy = PolicySet.model_validate({"agents": {"reseacher": {}}})
    with pytest.raises(PolicyError) as caught:
        policy.validate_names(agents=AGENTS)
    assert str(caught.value).startswith("<policy> agents.reseacher: unknown agent")


def test_default_policy_loads_and_validates_against_research_brief():
    agents = research_agents()
    names = [agent.name for agent in agents]
    tools = {tool for agent in agents for tool in agent.tool_names}
    policy = load_policies(DEFAULT_POLICY, agents=names, tools=tools, workflows=["research_brief"])
    assert set(policy.agents) == set(names)
    assert set(policy.tools) == tools == {"search_corpus", "calculate", "publish_report"}
    assert policy.tools["publish_report"].requires_approval.roles == ("editor",)
    with pytest.raises(PolicyError, match="unknown tool 'publish_report'"):
        policy.validate_names(tools=tools - {"publish_report"})


def test_default_policy_is_explicit_about_data_scopes():
    policy = load_policies(DEFAULT_POLICY)
    assert policy.global_.data_scopes == ()
    assert all(block.data_scopes is not None for block in policy.agents.values())


def test_line_of_a_nested_value_in_flow_style(write_policy):
    text = textwrap.dedent(
        """
        global:
          budgets:
            per_run: {tokens: 10, usd: -1}
        """
    ).lstrip("\n")
    with pytest.raises(PolicyError) as caught:
        load_policies(write_policy(text))
    assert (caught.value.line, caught.value.key_path) == (3, "global.budgets.per_run.usd")


def test_anchors_and_aliases_are_followed(write_policy):
    policy = load_policies(
        write_policy(
            """
            global: &base
              tools: {allow: [search_corpus]}
            tenants:
              acme: *base
              globex: *base
            """
        )
    )
    assert policy.tenants["globex"].tools.allow == ("search_corpus",)
    assert policy.origin(("tenants", "globex")) == (policy.sources[0], 5)
