"""`evaluate` and the `calculate` tool: arithmetic, functions, and everything they refuse."""

from __future__ import annotations

import math

import pytest
from langchain_core.tools import ToolException

from podium.tools.calculator import calculate, evaluate


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2", 3),
        ("7 - 10", -3),
        ("6 * 7", 42),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("2 ** 10", 1024),
        ("2 ** -2", 0.25),
        ("2 ** 100", 2**100),
        ("-3", -3),
        ("+3", 3),
        ("--3", 3),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("2 ** 3 ** 2", 512),
        ("-2 ** 2", -4),
        ("0.1 + 0.2", 0.1 + 0.2),
        ("1_000 * 3", 3000),
        ("1e3 / 4", 250.0),
        ("(180 - 120) / 120 * 100", 50.0),
        ("(139 - 210) / 210 * 100", (139 - 210) / 210 * 100),
    ],
)
def test_arithmetic(expression, expected):
    assert evaluate(expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("abs(-4.5)", 4.5),
        ("round(2.567, 2)", 2.57),
        ("round(7.6)", 8),
        ("min(3, 1, 2)", 1),
        ("max(3, 1, 2)", 3),
        ("sqrt(16)", 4.0),
        ("sqrt(2) ** 2", math.sqrt(2) ** 2),
        ("max(abs(-5), sqrt(9)) + min(1, 2)", 6),
    ],
)
def test_functions(expression, expected):
    assert evaluate(expression) == expected


REJECTED = [
    "__import__('os')",
    "__import__('os').system('true')",
    "open('/etc/passwd')",
    "eval('1')",
    "x",
    "pi",
    "x + 1",
    "(1).real",
    "math.sqrt(4)",
    "abs.__class__",
    "sqrt(x=4)",
    "'a' * 3",
    "b'1' + b'2'",
    "True + 1",
    "None",
    "1j * 2",
    "[1, 2]",
    "(1, 2)",
    "{1: 2}",
    "1 < 2",
    "1 if 1 else 2",
    "not 1",
    "~1",
    "1 & 3",
    "1 << 3",
    "lambda: 1",
    "[x for x in (1, 2)]",
    "(y := 3)",
    "f'{1}'",
]


@pytest.mark.parametrize("expression", REJECTED)
def test_anything_but_arithmetic_is_rejected(expression):
    with pytest.raises(ValueError, match="unsupported element"):
        evaluate(expression)


@pytest.mark.parametrize(
    "expression",
    ["", "   ", "1 +", "import os", "1; 2", "x = 1", "2 +* 3", "(1 + 2"],
    ids=["empty", "blank", "dangling-op", "import", "two-statements", "assign", "ops", "paren"],
)
def test_syntax_errors_are_value_errors(expression):
    with pytest.raises(ValueError, match="not an arithmetic expression"):
        evaluate(expression)


@pytest.mark.parametrize(
    ("expression", "match"),
    [
        ("2 ** 101", "exponent 101 is larger than 100"),
        ("2 ** -101", "exponent -101 is larger than 100"),
        ("9 ** 9 ** 9", "exponent 387420489 is larger than 100"),
        ("10 ** 1e6", "is larger than 100"),
        ("1 / 0", "division by zero"),
        ("1 // 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("1 / (2 - 2)", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("1" * 201, "longer than 200 characters"),
        ("1 + " * 60 + "1", "longer than 200 characters"),
    ],
    ids=[
        "big-exponent",
        "big-negative-exponent",
        "power-tower",
        "float-exponent",
        "div-zero",
        "floordiv-zero",
        "mod-zero",
        "computed-zero",
        "zero-to-negative",
        "long-number",
        "long-sum",
    ],
)
def test_limits_and_zero_division(expression, match):
    with pytest.raises(ValueError, match=match):
        evaluate(expression)


def test_exactly_the_length_limit_is_accepted():
    expression = "1" + " + 1" * 49 + " " * 3
    assert len(expression) == 200
    assert evaluate(expression) == 50


@pytest.mark.parametrize(
    "expression",
    [
        # Each exponent is within the limit, but nesting them makes the result enormous.
        "((10 ** 100) ** 100) ** 100",
        "(10.0 ** 100) ** 100",
        # Wrong argument counts for the allowed functions.
        "min()",
        "abs()",
        "round(1, 2, 3)",
        "sqrt(1, 2)",
        # A fractional power of a negative number is a complex number, not arithmetic.
        "(-8) ** 0.5",
    ],
    ids=[
        "nested-int-powers",
        "nested-float-powers",
        "min-no-args",
        "abs-no-args",
        "round-three-args",
        "sqrt-two-args",
        "complex-result",
    ],
)
def test_other_bad_input_raises_value_error_as_documented(expression):
    # evaluate() documents ValueError for anything but plain arithmetic or too-large results.
    with pytest.raises(ValueError):
        evaluate(expression)


# -- the tool -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("(180 - 120) / 120 * 100", "50.0"),
        ("(139 - 210) / 210 * 100", "-33.8095"),
        ("2 / 3", "0.6667"),
        ("6 * 7", "42"),
        ("sqrt(2)", "1.4142"),
    ],
)
def test_calculate_returns_the_rounded_result_as_text(expression, expected):
    assert calculate.invoke({"expression": expression}) == expected


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os')", "unsupported element"),
        ("1 / 0", "division by zero"),
        ("2 ** 1000", "exponent 1000 is larger than 100"),
        ("1" * 201, "longer than 200 characters"),
        ("1 +", "not an arithmetic expression"),
        ("sqrt(-1)", "math domain error"),
    ],
    ids=["import", "div-zero", "big-exponent", "too-long", "syntax", "domain"],
)
def test_calculate_raises_tool_exception_quoting_the_expression(expression, reason):
    with pytest.raises(ToolException) as info:
        calculate.invoke({"expression": expression})
    message = str(info.value)
    assert message.startswith(f"cannot calculate {expression!r}: ")
    assert reason in message
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize(
    "expression",
    ["(10 ** 100) ** 100", "(10.0 ** 100) ** 100", "min()", "round(1, 2, 3)", "(-8) ** 0.5"],
    ids=["10k-digit-int", "float-overflow", "min-no-args", "round-three-args", "complex"],
)
def test_calculate_turns_every_failure_into_a_tool_exception(expression):
    # A recoverable tool failure must reach the model as a ToolException, never as a raw
    # ValueError, OverflowError or TypeError that aborts the worker.
    with pytest.raises(ToolException, match=r"^cannot calculate "):
        calculate.invoke({"expression": expression})


def test_calculate_schema_shows_only_the_expression():
    assert set(calculate.args) == {"expression"}
    assert "arithmetic expression" in calculate.description
