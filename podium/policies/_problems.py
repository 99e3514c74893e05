"""Turn pydantic validation errors into one readable problem per bad key.

Pydantic reports a location such as `("workflows", "rb", "budgets", "per_day")`; the
loader needs the key path as the person wrote it, the line it is on, and, for an
unknown key, the keys that are allowed there.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from podium.errors import PolicyError
from podium.policies._yaml import Path, format_path

#: Where each key path of a policy came from: (file, line).
Origins = dict[Path, tuple[str, int]]

_WORDING = (
    ("Input should be a valid tuple", "should be a list"),
    ("Input should be a valid dictionary", "should be a mapping (key: value)"),
    ("Input should be", "should be"),
    ("Value error, ", ""),
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a policy, at a key path."""

    path: Path
    message: str


def problems_from(exc: ValidationError, data: Any, root: type[BaseModel]) -> list[Problem]:
    """One problem per pydantic error, located in `data` (the merged YAML)."""
    found: list[Problem] = []
    for error in exc.errors(include_url=False):
        path = _data_path(data, error["loc"], error["type"])
        problem = Problem(path, _message(error, path, root))
        if problem not in found:
            found.append(problem)
    return found


def suggest(name: str, known: Sequence[str]) -> str:
    """ "; did you mean 'x'?" when a known name is close to `name`, else ""."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _data_path(data: Any, loc: Sequence[Any], kind: str) -> Path:
    # Keep the parts of `loc` that exist in the data; the rest are pydantic's own
    # markers ("[key]", union member names) except a missing key, which we name.
    path: list[Any] = []
    current = data
    for index, part in enumerate(loc):
        if _has(current, part):
            current = current[part]
        elif kind == "missing" and index == len(loc) - 1:
            current = None
        else:
            continue
        path.append(part)
    return tuple(path)


def _has(container: Any, part: Any) -> bool:
    if isinstance(container, Mapping):
        return part in container
    return isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container)


def _message(error: Mapping[str, Any], path: Path, root: type[BaseModel]) -> str:
    kind, value = error["type"], error.get("input")
    key = path[-1] if path else ""
    if kind == "extra_forbidden":
        allowed = allowed_keys(root, path[:-1])
        listed = ", ".join(allowed) if allowed else "(none)"
        return f"unknown key {key!r}; allowed: {listed}{suggest(key, allowed)}"
    if kind == "missing" and isinstance(key, int):
        return f"too few items: item [{key}] is missing"
    if kind == "missing":
        return f"missing required key {key!r}; add it"
    text = str(error["msg"])
    for old, new in _WORDING:
        text = text.replace(old, new)
    if kind == "value_error":
        return text
    return f"{text}; got {value!r}"


def allowed_keys(root: type[BaseModel], path: Path) -> list[str]:
    """The keys the schema allows in the mapping at `path` (empty when not a model)."""
    annotation: Any = root
    for part in path:
        model = _as_model(annotation)
        if model is not None:
            field = _field(model, part)
            if field is None:
                return []
            annotation = field.annotation
            continue
        inner = _strip(annotation)
        origin, args = get_origin(inner), get_args(inner)
        if origin in (dict, Mapping) and len(args) == 2:
            annotation = args[1]
        elif origin is tuple and args:
            annotation = args[0]
        else:
            return []
    model = _as_model(annotation)
    if model is None:
        return []
    return sorted(field.alias or name for name, field in model.model_fields.items())


def _field(model: type[BaseModel], key: Any) -> Any:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def _strip(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _as_model(annotation: Any) -> type[BaseModel] | None:
    annotation = _strip(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        for member in get_args(annotation):
            model = _as_model(member)
            if model is not None:
                return model
    return None


def policy_error(problems: list[Problem], origins: Origins) -> PolicyError:
    """One PolicyError for `problems`, the first (in file order) in its fields."""
    located = sorted(
        ((_locate(problem.path, origins), problem) for problem in problems), key=lambda x: x[0]
    )
    (file, line), first = located[0]
    more = [
        f"{f or '<policy>'}:{n} {format_path(p.path)}: {p.message}" for (f, n), p in located[1:]
    ]
    return PolicyError(
        first.message,
        path=file or None,
        line=line or None,
        key_path=format_path(first.path),
        more=more,
    )


def _locate(path: Path, origins: Origins) -> tuple[str, int]:
    for end in range(len(path), -1, -1):
        found = origins.get(tuple(path[:end]))
        if found is not None:
            return found
    return ("", 0)
