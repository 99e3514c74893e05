"""The package's import graph: no cycles, and layers import only downward.

The graph is read from the source (every `import`, at module level or inside a function;
imports under `if TYPE_CHECKING:` are for type checkers only and are left out), so a lazy
import cannot hide a dependency.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "podium"

#: Bottom to top. A module belongs to the first layer with a prefix matching its name;
#: a module may import its own layer and the layers below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "vocabulary",
        (
            "podium.errors",
            "podium.context",
            "podium.lifecycle",
            "podium.names",
            "podium.plan",
            "podium.tokens",
            "podium.models",
            "podium.pricing",
            "podium._demo",
            "podium.state",
            "podium.registry",
            "podium.streaming",
            "podium.words",
            # Pure values with no podium imports of their own, used by stores and models.
            "podium.gates.request",
            "podium.nodes.prompts",
        ),
    ),
    ("policies", ("podium.policies",)),
    ("storage", ("podium.storage",)),
    ("stores", ("podium.stores",)),
    ("gates and tracing", ("podium.gates.interrupt", "podium.tracing")),
    ("governance", ("podium.governance",)),
    ("tools", ("podium.tools",)),
    ("nodes", ("podium.nodes",)),
    ("graphs", ("podium.graphs",)),
    ("runtime", ("podium.runtime",)),
    (
        "entry points",
        (
            "podium.gates.decision",
            "podium.replay",
            "podium.testing",
            "podium.render",
            "podium.session",
            "podium.ui",
            "podium.server",
            "podium.commands",
            "podium.cli",
            "podium.gates",
            "podium",
        ),
    ),
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = getattr(test, "id", None) or getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                skip.update(id(n) for n in ast.walk(node))
    return skip


def import_graph() -> dict[str, set[str]]:
    """module -> the podium modules it imports."""
    modules = _modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        skip = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([base] if base else [])])
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names
                ]
            for target in targets:
                while target not in modules and "." in target:
                    target = target.rpartition(".")[0]
                if target in modules and target != name:
                    edges[name].add(target)
    for name in modules:
        edges.setdefault(name, set())
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def layer_of(module: str) -> int:
    for number, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return number
    raise AssertionError(f"module {module!r} is in no layer; add it to LAYERS in {__file__}")


def test_the_package_has_no_import_cycles():
    assert _cycles(import_graph()) == []


def test_layers_import_only_downward():
    upward = [
        f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
        for a, targets in import_graph().items()
        for b in targets
        if layer_of(b) > layer_of(a) and b != "podium"
    ]
    assert upward == []


def test_production_code_never_imports_the_test_helpers():
    importers = sorted(a for a, targets in import_graph().items() if "podium.testing" in targets)
    assert importers == []


def test_only_public_langgraph_api_is_used():
    private = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom | ast.Import)
        and any(
            "._" in name or name.startswith("_")
            for name in (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
            )
            if name.startswith(("langgraph", "langchain"))
        )
    ]
    assert private == []


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The checks above can fail: a planted cycle and an upward edge are caught."""
    graph = {"a": {"b"}, "b": {"a"}, "c": set()}
    assert _cycles(graph) == [["a", "b"]]
    assert layer_of("podium.nodes.task") > layer_of("podium.stores.audit.log")
    assert "podium.stores.services" in import_graph()["podium.runtime"]
