"""Read one YAML policy file into plain data plus the line of every key.

`yaml.compose` keeps each node's position, so a validation error found later in the
plain data can be reported at the line the person has to edit.
"""

from __future__ import annotations

from typing import Any

import yaml

from podium.errors import PolicyError

Path = tuple[Any, ...]


def format_path(path: Path) -> str:
    """`("agents", "researcher", "tools", "allow", 0)` -> "agents.researcher.tools.allow[0]"."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            name = str(part)
            # Model names such as "gpt-4.1" contain dots; quote them so the path stays readable.
            piece = f'"{name}"' if ("." in name or " " in name or not name) else name
            text += f".{piece}" if text else piece
    return text


def parse(text: str, path: str) -> tuple[Any, dict[Path, int]]:
    """Parse YAML `text` read from `path`.

    Returns:
        The plain data (None for an empty document) and a map from key path to 1-based line.

    Raises:
        PolicyError: for a YAML syntax error or a key repeated within one mapping.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {(): 1}
        lines: dict[Path, int] = {}
        _walk(loader, node, (), lines, path, set())
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(part for part in (exc.context, exc.problem) if part) or "unreadable"
        raise PolicyError(
            f"invalid YAML: {problem}; fix the syntax (indentation, ':' after keys, quotes)",
            path=path,
            line=mark.line + 1 if mark else None,
        ) from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"invalid YAML: {exc}", path=path) from None
    finally:
        loader.dispose()


def _walk(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    at: Path,
    lines: dict[Path, int],
    path: str,
    seen: set[int],
) -> None:
    lines.setdefault(at, node.start_mark.line + 1)
    # An alias repeats a node already walked; walking it again could loop (a recursive
    # anchor) or take exponential time, and its lines are known from the first visit.
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        key_lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = loader.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in key_lines:
                raise PolicyError(
                    f"key {key!r} appears twice (first at line {key_lines[key]}); keep one",
                    path=path,
                    line=line,
                    key_path=format_path((*at, key)),
                )
            key_lines[key] = line
            lines[(*at, key)] = line
            _walk(loader, value_node, (*at, key), lines, path, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*at, index)] = item.start_mark.line + 1
            _walk(loader, item, (*at, index), lines, path, seen)
