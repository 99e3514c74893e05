"""Task and run statuses are named by `podium.TaskStatus` and `podium.RunStatus`, not spelled
out: production code that compares a status string (`==`, `!=`, `in`), writes one under a
`"status"` key or a `status=` argument, or lists several in a collection fails here.

The check reads the source with `ast`, so a docstring or a message that mentions
"completed" is fine; only code that acts on the value is flagged.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from podium.lifecycle import RunStatus, TaskStatus

PACKAGE = Path(__file__).resolve().parents[1] / "podium"

#: Every status value, task and run.
STATUSES = frozenset(s.value for s in (*TaskStatus, *RunStatus))

#: Paths under `podium/` the check skips, and why.
EXCLUDED: dict[str, str] = {
    "lifecycle.py": "defines TaskStatus and RunStatus: the one place the values are spelled",
    "stores/": "store rows have statuses of their own (approvals 'pending', dead letters "
    "'replaying', effects 'completed'...), kept in SQL text and compared there",
    "storage/": "database back ends: SQL text, no run or task statuses",
}


def _excluded(path: Path) -> bool:
    relative = path.relative_to(PACKAGE).as_posix()
    return any(relative == e or (e.endswith("/") and relative.startswith(e)) for e in EXCLUDED)


def _is_status(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in STATUSES


def _items(node: ast.AST) -> list[ast.AST] | None:
    """The items of a literal collection: `(...)`, `[...]`, `{...}` or `frozenset({...})`."""
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return list(node.elts)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("frozenset", "set", "tuple")
        and len(node.args) == 1
    ):
        return _items(node.args[0])
    return None


def _compared(node: ast.AST) -> Iterator[ast.AST]:
    """Status constants on a side of a comparison, alone or in a literal collection."""
    if _is_status(node):
        yield node
    yield from (item for item in _items(node) or () if _is_status(item))


def spelled_statuses(source: str) -> list[tuple[int, str]]:
    """(line, value) of every status spelled out in `source` where code acts on it."""
    found: list[ast.AST] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(
            isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops
        ):
            for side in (node.left, *node.comparators):
                found.extend(_compared(side))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "status":
                    found.extend(n for n in ast.walk(value) if _is_status(n))
        elif isinstance(node, ast.keyword) and node.arg == "status":
            found.extend(n for n in ast.walk(node.value) if _is_status(n))
        items = _items(node)
        if items and len(items) > 1 and all(_is_status(i) for i in items):
            found.extend(items)  # a status set spelled out
    return sorted({(n.lineno, n.value) for n in found if isinstance(n, ast.Constant)})


def test_statuses_are_named_not_spelled_out():
    spelled = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {value!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if not _excluded(path)
        for line, value in spelled_statuses(path.read_text())
    ]
    assert spelled == [], "use podium.lifecycle.TaskStatus / RunStatus members (`.value` in state)"


def test_every_exclusion_names_a_path_that_exists():
    missing = [e for e in EXCLUDED if not (PACKAGE / e.rstrip("/")).exists()]
    assert missing == []


def test_the_check_sees_statuses_spelled_out():
    """The check can fail: each way of spelling a status out is caught, named ones are not."""
    source = """
if task["status"] == "completed": pass
if state.get("status") != "failed": pass
if task["status"] in ("retrying", "waiting"): pass
update = {"status": "running", "error": None}
fallback = {"status": event.get("status") or "queued"}
row = replace(row, status="cancelled")
FINISHED = frozenset({"completed", "partial"})
ok = task["status"] == TaskStatus.COMPLETED
named = {"status": RunStatus.FAILED.value, "kind": "completed"}
label = "completed"
"""
    assert spelled_statuses(source) == [
        (2, "completed"),
        (3, "failed"),
        (4, "retrying"),
        (4, "waiting"),
        (5, "running"),
        (6, "queued"),
        (7, "cancelled"),
        (8, "completed"),
        (8, "partial"),
    ]
