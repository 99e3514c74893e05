"""Argument constraints on tool calls (`tools.<tool>.args.<argument>`).

Constraints: `required`, `under` (a path stays inside a directory after normalisation),
`min`/`max` (numbers), `hosts` (the host of a URL; "*.example.com" covers subdomains),
`pattern` (regex, full match), `one_of`, `max_length`. An argument the call does not
pass is not checked unless it is `required`: the tool's own default applies.

`under` is checked on the text of the path alone (no file system access): symlinks are
the tool's concern. Backslashes count as separators, so Windows-style escapes are
caught too.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from podium.policies.decision import DEFAULT, CallScope, Decision, allow, deny, key
from podium.policies.schema import ArgConstraint, PolicySet, compiled

_DRIVE = re.compile(r"^[A-Za-z]:/")


def evaluate_arguments(
    policy: PolicySet, call: CallScope, tool: str, args: Mapping[str, Any]
) -> Decision:
    """Do the arguments of a call to `tool` satisfy `tools.<tool>.args`?

    Returns:
        A refusal naming the argument and the constraint, rule e.g.
        "tools.publish_report.args.path.under", details {argument, constraint, value}.
    """
    settings = policy.tools.get(tool)
    if settings is None or not settings.args:
        return allow(f"tool {tool!r} has no argument constraints", DEFAULT, tool=tool)
    for name, constraint in settings.args.items():
        if name not in args:
            if constraint.required:
                rule = key("tools", tool, "args", name, "required")
                return deny(
                    f"argument {name!r} of tool {tool!r} is required by {rule}",
                    rule,
                    argument=name,
                    constraint="required",
                )
            continue
        failed = check(constraint, args[name])
        if failed is not None:
            which, why = failed
            rule = key("tools", tool, "args", name, which)
            return deny(
                f"argument {name!r} of tool {tool!r} {why} ({rule})",
                rule,
                argument=name,
                constraint=which,
                value=args[name],
            )
    rule = key("tools", tool, "args")
    return allow(f"arguments of tool {tool!r} satisfy {rule}", rule, tool=tool)


def check(constraint: ArgConstraint, value: Any) -> tuple[str, str] | None:
    """The first constraint `value` breaks, as (constraint name, why), or None."""
    checks: tuple[tuple[str, Any, Callable[[Any, Any], str | None]], ...] = (
        ("under", constraint.under, _under),
        ("min", constraint.min, _min),
        ("max", constraint.max, _max),
        ("hosts", constraint.hosts, _hosts),
        ("pattern", constraint.pattern, _pattern),
        ("one_of", constraint.one_of, _one_of),
        ("max_length", constraint.max_length, _max_length),
    )
    for name, setting, test in checks:
        if setting is not None:
            why = test(value, setting)
            if why is not None:
                return name, why
    return None


def normalise_path(value: str) -> str:
    """The path as a tool would resolve it textually: '/' separators, '.' and '..' folded."""
    path = value.replace("\\", "/")
    path = re.sub(r"^/+", "/", path)  # POSIX keeps "//x" as is; treat it as "/x"
    return posixpath.normpath(path)


def _under(value: Any, base: str) -> str | None:
    if not isinstance(value, str) or not value:
        return f"must be a non-empty path; got {value!r}"
    if "\x00" in value:
        return f"contains a NUL byte: {value!r}"
    if value.startswith("~"):
        return f"{value!r} starts with '~' (a home directory); use a path under {base!r}"
    path, root = normalise_path(value), normalise_path(base)
    path_abs = path.startswith("/") or bool(_DRIVE.match(path))
    root_abs = root.startswith("/") or bool(_DRIVE.match(root))
    if path_abs and not root_abs:
        return f"{value!r} is an absolute path outside {base!r}"
    if root_abs and not path_abs:
        return f"{value!r} is relative; give an absolute path under {base!r}"
    if path == ".." or path.startswith("../"):
        return f"{value!r} escapes {base!r} (it resolves to {path!r})"
    if root == "." or path == root or path.startswith(root.rstrip("/") + "/"):
        return None
    return f"{value!r} resolves to {path!r}, outside {base!r}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def _min(value: Any, bound: float) -> str | None:
    number = _number(value)
    if number is None:
        return f"must be a number; got {value!r}"
    return None if number >= bound else f"is {value!r}, below the minimum {bound:g}"


def _max(value: Any, bound: float) -> str | None:
    number = _number(value)
    if number is None:
        return f"must be a number; got {value!r}"
    return None if number <= bound else f"is {value!r}, above the maximum {bound:g}"


def _hosts(value: Any, hosts: tuple[str, ...]) -> str | None:
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
        host = parts.hostname if parts is not None else None
    except ValueError:
        host = None
    if not host:
        return f"must be a URL with a host; got {value!r}"
    host = host.rstrip(".")
    for entry in hosts:
        allowed = entry.lower().rstrip(".")
        if host == allowed or (allowed.startswith("*.") and host.endswith(allowed[1:])):
            return None
    return f"has host {host!r}, not one of {', '.join(hosts)}"


def _pattern(value: Any, pattern: str) -> str | None:
    if not isinstance(value, str):
        return f"must be a string; got {value!r}"
    return None if compiled(pattern).fullmatch(value) else f"{value!r} does not match {pattern!r}"


def _one_of(value: Any, choices: tuple[Any, ...]) -> str | None:
    for choice in choices:
        # True == 1 in Python; a boolean only matches a boolean.
        if choice == value and isinstance(choice, bool) == isinstance(value, bool):
            return None
    listed = ", ".join(repr(c) for c in choices)
    return f"is {value!r}, not one of {listed}"


def _max_length(value: Any, limit: int) -> str | None:
    if not isinstance(value, str | list | tuple | dict):
        return f"has no length; got {value!r}"
    size = len(value)
    return None if size <= limit else f"is {size} long, over the maximum length {limit}"
