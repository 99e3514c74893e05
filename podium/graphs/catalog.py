"""The workflow catalog: names -> factories, extensible by user code.

A factory takes `model=` (a model string, chat model or None) and returns an
uncompiled workflow graph. Workflows are found, in order, from podium's own
`podium.workflows` entry points (including other installed packages'), from
`PODIUM_WORKFLOWS` ("name=module:factory,..." read by the entry points that pass
it in), and from `register_workflow` calls.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from langgraph.graph import StateGraph

from podium.errors import ConfigurationError, UnknownWorkflowError

Factory = Callable[..., StateGraph[Any]]
_registered: dict[str, Factory] = {}


def register_workflow(name: str, factory: Factory) -> None:
    """Make `factory` available under `name` to the CLI, the app and the server."""
    _registered[name] = factory


def load_factory(ref: str) -> Factory:
    """Import "package.module:function"."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(f"workflow reference {ref!r} must look like 'module:function'")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load workflow factory {ref!r}: {exc}") from exc
    if not callable(factory):
        raise ConfigurationError(f"workflow factory {ref!r} is not callable")
    loaded: Factory = factory
    return loaded


def catalog(extra: str | None = None) -> dict[str, Factory]:
    """All known workflows. `extra` is the value of PODIUM_WORKFLOWS, if any."""
    found: dict[str, Factory] = {}
    for ep in entry_points(group="podium.workflows"):
        found[ep.name] = _lazy(ep.value)
    for item in filter(None, (part.strip() for part in (extra or "").split(","))):
        name, sep, ref = item.partition("=")
        if not sep:
            raise ConfigurationError(
                f"PODIUM_WORKFLOWS entry {item!r} must look like 'name=module:function'"
            )
        found[name.strip()] = _lazy(ref.strip())
    found.update(_registered)
    if "research_brief" not in found:  # running from a source tree without installed metadata
        from podium.graphs.research_brief import build_research_brief

        found["research_brief"] = build_research_brief
    return found


def get_workflow(name: str, extra: str | None = None) -> Factory:
    """The factory of workflow `name`.

    Raises:
        UnknownWorkflowError: listing the known names.
    """
    known = catalog(extra)
    if name not in known:
        raise UnknownWorkflowError(name, known)
    return known[name]


def _lazy(ref: str) -> Factory:
    def factory(*args: Any, **kwargs: Any) -> StateGraph[Any]:
        return load_factory(ref)(*args, **kwargs)

    factory.__name__ = ref
    factory.ref = ref  # type: ignore[attr-defined]
    return factory


def describe(factory: Factory) -> str:
    """The first line of a factory's docstring (importing a lazy entry to read it)."""
    target = factory
    ref = getattr(factory, "ref", None)
    if ref:
        try:
            target = load_factory(ref)
        except ConfigurationError as exc:
            return f"(cannot load: {exc})"
    doc = (target.__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""
