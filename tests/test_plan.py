"""Plans: validation, cycle detection, JSON extraction, parsing, `Plan.chain`."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest
from pydantic import ValidationError

from podium.errors import PlanError
from podium.plan import (
    Plan,
    PlannedTask,
    RouterChoice,
    extract_json,
    find_cycle,
    parse_choice,
    parse_plan,
    validate_plan,
)

AGENTS = ["researcher", "analyst", "writer"]


def _plan(*tasks: tuple[str, str, list[str]]) -> Plan:
    """A plan from (id, agent, depends_on) triples."""
    return Plan(
        tasks=[
            PlannedTask(id=i, agent=agent, instruction=f"do {i}", depends_on=deps)
            for i, agent, deps in tasks
        ]
    )


# -- validate_plan ------------------------------------------------------------------------

VALID = {
    "single": _plan(("t1", "researcher", [])),
    "parallel": _plan(("t1", "researcher", []), ("t2", "researcher", [])),
    "chain": _plan(("t1", "researcher", []), ("t2", "analyst", ["t1"]), ("t3", "writer", ["t2"])),
    "diamond": _plan(
        ("t1", "researcher", []),
        ("t2", "researcher", ["t1"]),
        ("t3", "analyst", ["t1"]),
        ("t4", "writer", ["t2", "t3"]),
    ),
    "forward-reference": _plan(("t1", "writer", ["t2"]), ("t2", "researcher", [])),
}


@pytest.mark.parametrize("plan", list(VALID.values()), ids=list(VALID))
def test_valid_plans_pass_and_are_returned_unchanged(plan):
    assert validate_plan(plan, AGENTS) is plan


def test_agents_may_be_any_iterable():
    plan = VALID["diamond"]
    assert validate_plan(plan, (name for name in AGENTS)) is plan


INVALID = [
    pytest.param(
        _plan(("t1", "researcher", []), ("t2", "reseacher", ["t1"])),
        [
            "unknown agent 'reseacher'",
            "plan task 't2'",
            "known agents: analyst, researcher, writer",
        ],
        id="unknown-agent",
    ),
    pytest.param(
        _plan(("t1", "researcher", []), ("t2", "writer", ["t1", "t9"])),
        ["task 't2' depends on unknown task 't9'", "task ids: t1, t2"],
        id="unknown-dependency",
    ),
    pytest.param(
        _plan(("t1", "researcher", []), ("t2", "writer", ["t2"])),
        ["task 't2' depends on itself"],
        id="self-dependency",
    ),
    pytest.param(
        _plan(("t1", "researcher", []), ("t1", "writer", [])),
        ["duplicate task id 't1'", "give every task its own id"],
        id="duplicate-id",
    ),
    pytest.param(
        _plan(("t1", "researcher", ["t2"]), ("t2", "writer", ["t1"])),
        ["dependency cycle: t1 -> t2 -> t1", "remove one edge"],
        id="cycle-of-2",
    ),
    pytest.param(
        _plan(("t1", "researcher", ["t3"]), ("t2", "analyst", ["t1"]), ("t3", "writer", ["t2"])),
        ["dependency cycle: t1 -> t3 -> t2 -> t1", "remove one edge"],
        id="cycle-of-3",
    ),
    pytest.param(
        _plan(("t0", "researcher", []), ("t1", "analyst", ["t2"]), ("t2", "writer", ["t1"])),
        ["dependency cycle: t1 -> t2 -> t1"],
        id="cycle-after-a-free-task",
    ),
]


@pytest.mark.parametrize(("plan", "fragments"), INVALID)
def test_invalid_plans_raise_plan_error_naming_the_problem(plan, fragments):
    with pytest.raises(PlanError) as info:
        validate_plan(plan, AGENTS)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_unknown_agent_with_no_known_agents():
    with pytest.raises(PlanError, match="unknown agent 'researcher' in plan task 't1'"):
        validate_plan(VALID["single"], [])


# -- find_cycle ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({}, None),
        ({"a": []}, None),
        ({"a": ["b"], "b": ["c"], "c": []}, None),
        ({"d": ["b", "c"], "b": ["a"], "c": ["a"], "a": []}, None),
        ({"a": ["missing"]}, None),
        ({"a": ["a"]}, ["a", "a"]),
        ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({"a": ["b"], "b": ["c"], "c": ["a"]}, ["a", "b", "c", "a"]),
        ({"x": ["b"], "b": ["c"], "c": ["b"]}, ["b", "c", "b"]),
        ({"free": [], "a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
    ],
    ids=[
        "empty",
        "single",
        "chain",
        "diamond",
        "dangling-edge",
        "self-loop",
        "cycle-of-2",
        "cycle-of-3",
        "tail-into-cycle",
        "cycle-after-free-node",
    ],
)
def test_find_cycle(graph, expected):
    found = find_cycle(graph)
    assert found == expected
    if found:
        assert found[0] == found[-1]
        for node, dep in pairwise(found):
            assert dep in graph[node]


# -- extract_json -------------------------------------------------------------------------

OBJ = {"tasks": [{"id": "t1", "agent": "writer", "instruction": "write {it}"}]}
RAW = json.dumps(OBJ)


@pytest.mark.parametrize(
    "text",
    [
        RAW,
        f"  {RAW}\n",
        f"```json\n{RAW}\n```",
        f"```\n{RAW}\n```",
        f"Here is the plan:\n```json\n{RAW}\n```\nHope this helps!",
        f"Sure. {RAW} Let me know if you need more.",
        f"Plan below\n\n{json.dumps(OBJ, indent=2)}\n\nDone.",
    ],
    ids=["bare", "whitespace", "json-fence", "plain-fence", "prose-and-fence", "prose", "pretty"],
)
def test_extract_json_finds_the_object(text):
    assert extract_json(text) == OBJ


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "holds no JSON object"),
        ("I cannot make a plan for that.", "holds no JSON object"),
        ("[1, 2, 3]", "holds no JSON object"),
        ("} backwards {", "holds no JSON object"),
        ("```json\n```", "holds no JSON object"),
        ("{tasks: [1]}", r"not valid JSON \(.+ at char \d+\)"),
        ('{"tasks": [}', r"not valid JSON \(.+ at char \d+\)"),
        ('```json\n{"a": 1,}\n```', r"not valid JSON \(.+ at char \d+\)"),
    ],
    ids=[
        "empty",
        "prose-only",
        "array",
        "reversed-braces",
        "empty-fence",
        "unquoted-keys",
        "broken",
        "trailing-comma-in-fence",
    ],
)
def test_extract_json_errors(text, match):
    with pytest.raises(PlanError, match=match):
        extract_json(text)


def test_extract_json_keeps_the_decode_error_as_cause():
    with pytest.raises(PlanError) as info:
        extract_json("{nope}")
    assert isinstance(info.value.__cause__, json.JSONDecodeError)


# -- parse_plan ---------------------------------------------------------------------------


def test_parse_plan_parses_and_validates():
    text = (
        "```json\n"
        + json.dumps(
            {
                "tasks": [
                    {"id": "t1", "agent": "researcher", "instruction": "find heat pump facts"},
                    {"id": "t2", "agent": "researcher", "instruction": "find storage facts"},
                    {
                        "id": "t3",
                        "agent": "writer",
                        "instruction": "write",
                        "depends_on": ["t1", "t2"],
                    },
                ]
            }
        )
        + "\n```"
    )
    plan = parse_plan(text, AGENTS)
    assert [t.id for t in plan.tasks] == ["t1", "t2", "t3"]
    assert [t.depends_on for t in plan.tasks] == [[], [], ["t1", "t2"]]
    assert plan.tasks[2].agent == "writer"


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        ({"tasks": []}, ["does not match the schema", "tasks:"]),
        ({"steps": []}, ["does not match the schema", "tasks: Field required"]),
        (
            {"tasks": [{"id": "t1", "agent": "writer"}]},
            ["does not match the schema", "tasks.0.instruction: Field required"],
        ),
        (
            {"tasks": [{"id": "", "agent": "writer", "instruction": "x"}]},
            ["does not match the schema", "tasks.0.id:"],
        ),
        (
            {"tasks": [{"id": "t1", "agent": "writer", "instruction": "x", "priority": 1}]},
            ["does not match the schema", "tasks.0.priority: Extra inputs are not permitted"],
        ),
        (
            {"tasks": [{"id": "t1", "agent": "writer", "instruction": "x", "depends_on": "t0"}]},
            ["does not match the schema", "tasks.0.depends_on:"],
        ),
        (
            {"tasks": [{"id": "t1", "agent": "poet", "instruction": "x"}]},
            ["unknown agent 'poet' in plan task 't1'", "known agents: analyst, researcher"],
        ),
        (
            {
                "tasks": [
                    {"id": "t1", "agent": "writer", "instruction": "x", "depends_on": ["t2"]},
                    {"id": "t2", "agent": "writer", "instruction": "y", "depends_on": ["t1"]},
                ]
            },
            ["dependency cycle: t1 -> t2 -> t1"],
        ),
    ],
    ids=[
        "no-tasks",
        "wrong-key",
        "missing-instruction",
        "empty-id",
        "extra-field",
        "depends-on-not-a-list",
        "unknown-agent",
        "cycle",
    ],
)
def test_parse_plan_errors(data, fragments):
    with pytest.raises(PlanError) as info:
        parse_plan(json.dumps(data), AGENTS)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_parse_plan_schema_error_keeps_the_validation_error_as_cause():
    with pytest.raises(PlanError) as info:
        parse_plan('{"tasks": []}', AGENTS)
    assert isinstance(info.value.__cause__, ValidationError)


def test_parse_plan_without_json():
    with pytest.raises(PlanError, match="holds no JSON object"):
        parse_plan("First research, then write.", AGENTS)


# -- parse_choice -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"next": "FINISH"}', RouterChoice(next="FINISH", instruction="")),
        ('{"next": "FINISH", "instruction": ""}', RouterChoice(next="FINISH")),
        (
            'Next up:\n```json\n{"next": "writer", "instruction": "Write the brief."}\n```',
            RouterChoice(next="writer", instruction="Write the brief."),
        ),
        (
            '{"next": "researcher", "instruction": "Find facts."}',
            RouterChoice(next="researcher", instruction="Find facts."),
        ),
    ],
    ids=["finish", "finish-empty-instruction", "fenced-agent", "agent"],
)
def test_parse_choice_accepts(text, expected):
    assert parse_choice(text, AGENTS) == expected


def test_finish_is_accepted_without_any_agents():
    assert parse_choice('{"next": "FINISH"}', []).next == "FINISH"


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            '{"next": "poet", "instruction": "rhyme"}',
            ["unknown agent 'poet'", "choose one of: analyst, researcher, writer, or FINISH"],
        ),
        (
            '{"next": "finish"}',
            ["unknown agent 'finish'", "or FINISH"],
        ),
        ('{"next": "writer"}', ["no instruction for agent 'writer'", "say what it must do"]),
        (
            '{"next": "writer", "instruction": "   "}',
            ["no instruction for agent 'writer'"],
        ),
        ('{"agent": "writer"}', ["does not match the schema", "next: Field required"]),
        (
            '{"next": "writer", "instruction": "x", "why": "y"}',
            ["does not match the schema", "why: Extra inputs are not permitted"],
        ),
        ('{"next": 3}', ["does not match the schema", "next:"]),
        ("FINISH", ["holds no JSON object"]),
    ],
    ids=[
        "unknown-agent",
        "lowercase-finish",
        "missing-instruction",
        "blank-instruction",
        "missing-next",
        "extra-field",
        "next-not-a-string",
        "no-json",
    ],
)
def test_parse_choice_errors(text, fragments):
    with pytest.raises(PlanError) as info:
        parse_choice(text, AGENTS)
    for fragment in fragments:
        assert fragment in str(info.value)


# -- Plan.chain ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([("writer", "write")], [("t1", "writer", "write", [])]),
        (
            [("researcher", "find"), ("analyst", "count"), ("writer", "write")],
            [
                ("t1", "researcher", "find", []),
                ("t2", "analyst", "count", ["t1"]),
                ("t3", "writer", "write", ["t2"]),
            ],
        ),
        (
            [("researcher", "a"), ("researcher", "b")],
            [("t1", "researcher", "a", []), ("t2", "researcher", "b", ["t1"])],
        ),
    ],
    ids=["one-step", "three-steps", "same-agent-twice"],
)
def test_plan_chain(steps, expected):
    plan = Plan.chain(*steps)
    assert [(t.id, t.agent, t.instruction, t.depends_on) for t in plan.tasks] == expected
    assert validate_plan(plan, AGENTS) is plan


def test_plans_are_frozen():
    plan = Plan.chain(("writer", "write"))
    with pytest.raises(ValidationError):
        plan.tasks[0].agent = "researcher"
