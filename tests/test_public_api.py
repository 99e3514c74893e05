"""Every public name the documentation uses exists where it says.

The list is read from README.md and docs/*.md, not kept by hand: `podium.X` must be in
`podium.__all__`; a dotted `podium.a.b.C` must import (module) or resolve (attribute);
`from podium import a, b` in a code block must name exported names only.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

import podium

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: `podium.<name>` in prose that is not a Python name: the entry-point group.
NOT_PYTHON = {"podium.workflows"}

#: A dotted podium name, not part of a path or URL (`.podium/podium.db`).
DOTTED = re.compile(r"(?<![\w./:-])podium(?:\.[A-Za-z_]\w*)+")
FROM_IMPORT = re.compile(r"^\s*from podium import \(?([\w\s,]+)\)?", re.M)


def documented() -> tuple[set[str], set[str]]:
    """(top-level names, dotted paths) the docs use."""
    top: set[str] = set()
    dotted: set[str] = set()
    for doc in DOCS:
        text = doc.read_text()
        for match in DOTTED.findall(text):
            if match in NOT_PYTHON or match.endswith((".py", ".yaml", ".db")):
                continue
            parts = match.split(".")
            if len(parts) == 2 and importlib.util.find_spec(match) is None:
                top.add(parts[1])
            else:
                dotted.add(match)
        for names in FROM_IMPORT.findall(text):
            top.update(n.strip() for n in names.split(",") if n.strip())
    return top, dotted


def _resolve(path: str) -> object:
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(path)


def test_the_docs_name_public_things():
    top, _ = documented()
    assert {"open_runtime", "load_policies", "AgentSpec"} <= top  # the reader works


@pytest.mark.parametrize("name", sorted(documented()[0]))
def test_documented_top_level_name_is_exported(name):
    assert name in podium.__all__, f"README uses podium.{name}; export it in podium/__init__.py"
    assert getattr(podium, name) is not None


@pytest.mark.parametrize("path", sorted(documented()[1]))
def test_documented_dotted_name_resolves(path):
    head = path.split(".")[1]
    if head in podium.__all__:
        obj: object = podium
        for attr in path.split(".")[1:]:
            obj = getattr(obj, attr)
    else:
        _resolve(path)


def test_all_names_resolve():
    missing = [name for name in podium.__all__ if not hasattr(podium, name)]
    assert missing == []


def test_every_error_a_caller_may_catch_lives_in_errors_and_is_exported():
    from podium import errors

    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type)
        and issubclass(value, Exception)
        and value.__module__ == "podium.errors"
    }
    assert defined - set(podium.__all__) == set()


def test_error_hierarchy():
    assert issubclass(podium.ConfigurationError, podium.PodiumError)
    assert issubclass(podium.UnknownAgentError, podium.ConfigurationError)
    assert issubclass(podium.TaskFailed, podium.RunError)
    assert issubclass(podium.DatabaseError, podium.PodiumError)
    assert issubclass(podium.AlreadyDecided, podium.GateError)
    assert issubclass(podium.PolicyError, podium.ConfigurationError)
