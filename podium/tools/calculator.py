"""`calculate`: safe arithmetic for agents. Parses with `ast`; never calls `eval`."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

from langchain_core.tools import ToolException, tool

_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[float], float]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
}
_MAX_EXPONENT = 100
_MAX_LENGTH = 200
_MAX_MAGNITUDE = 1e100


def evaluate(expression: str) -> float:
    """Evaluate an arithmetic expression.

    Raises:
        ValueError: for anything but numbers, + - * / // % **, parentheses and
            abs/round/min/max/sqrt, or for an expression that is too large.
    """
    if len(expression) > _MAX_LENGTH:
        raise ValueError(f"expression longer than {_MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {expression!r}") from exc
    try:
        return _eval(tree.body)
    except (OverflowError, TypeError) as exc:
        raise ValueError(f"cannot evaluate {expression!r}: {exc}") from exc


def _bounded(value: object) -> float:
    """Keep every intermediate result a real number of sane size."""
    if isinstance(value, complex):
        raise ValueError("the result is not a real number")
    if abs(value) > _MAX_MAGNITUDE:  # type: ignore[arg-type]
        raise ValueError(f"a result exceeds {_MAX_MAGNITUDE:g}")
    return value  # type: ignore[return-value]


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _bounded(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise ValueError(f"exponent {right} is larger than {_MAX_EXPONENT}")
        try:
            return _bounded(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError as exc:
            raise ValueError("division by zero") from exc
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        return _bounded(_FUNCTIONS[node.func.id](*(_eval(a) for a in node.args)))
    raise ValueError(f"unsupported element {ast.dump(node)[:60]!r}; use numbers and + - * / ( )")


@tool
def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression such as "(180 - 120) / 120 * 100".

    Args:
        expression: Numbers, + - * / // % **, parentheses, and abs/round/min/max/sqrt.

    Returns:
        The result as a number (rounded to 4 decimals).
    """
    try:
        value = evaluate(expression)
    except ValueError as exc:
        raise ToolException(f"cannot calculate {expression!r}: {exc}") from exc
    return str(round(value, 4))
