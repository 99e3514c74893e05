"""Load policies from one YAML file or a directory of them, all or nothing.

Files in a directory are merged by scope key (`global`, `tenants.acme`,
`agents.researcher`, `tools.publish_report`...); a scope key defined in two files is
an error naming both, so no file silently overrides another. Any problem raises one
`PolicyError` naming the file, line and key path; nothing partial is returned.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path as FilePath
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from podium.errors import PolicyError
from podium.policies._problems import Origins, policy_error, problems_from
from podium.policies._yaml import Path, format_path, parse
from podium.policies.schema import PolicySet

#: Sections holding one entry per name; each entry is a scope key of its own.
NAMED_SECTIONS = ("tenants", "workflows", "agents", "tools", "models", "prices")
SECTIONS = ("global", *NAMED_SECTIONS)
SUFFIXES = (".yaml", ".yml")


def load_policies(
    path_or_dir: str | os.PathLike[str],
    *,
    agents: Iterable[str] | None = None,
    tools: Iterable[str] | None = None,
    workflows: Iterable[str] | None = None,
) -> PolicySet:
    """Load and validate a policy file, or every *.yaml/*.yml file of a directory.

    Args:
        path_or_dir: A YAML file, or a directory whose YAML files are merged (in name order).
        agents: Known agent names; when given, a policy naming another agent is an error.
        tools: Known tool names, checked the same way ("*" is always allowed).
        workflows: Known workflow names, checked the same way.

    Returns:
        The frozen `PolicySet`.

    Raises:
        PolicyError: for malformed YAML, an unknown key, a wrong type, an unknown name or
            a scope key defined in two files; the message names file, line and key path.
    """
    merged: dict[str, Any] = {}
    origins: Origins = {}
    files = policy_files(FilePath(path_or_dir))
    for file in files:
        data, lines = parse(_read(file), str(file))
        _merge(merged, origins, data, lines, str(file))
    try:
        policy = PolicySet.model_validate(merged)
    except ValidationError as exc:
        raise policy_error(problems_from(exc, merged, PolicySet), origins) from None
    policy._origins = MappingProxyType(origins)
    policy._sources = tuple(str(file) for file in files)
    if agents is not None or tools is not None or workflows is not None:
        policy.validate_names(agents=agents, tools=tools, workflows=workflows)
    return policy


def policy_files(path: FilePath) -> list[FilePath]:
    """`path` itself, or the YAML files directly inside the directory `path`."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
        if not files:
            raise PolicyError(f"no *.yaml files in directory {str(path)!r}", path=str(path))
        return files
    if not path.exists():
        raise PolicyError(
            f"no policy file or directory {str(path)!r}; pass a .yaml file or a directory of them",
            path=str(path),
        )
    return [path]


def _read(file: FilePath) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read the policy file: {exc}", path=str(file)) from None


def _merge(
    merged: dict[str, Any], origins: Origins, data: Any, lines: dict[Path, int], file: str
) -> None:
    if data is None:
        return
    if not isinstance(data, dict):
        raise PolicyError(
            f"the top level must be a mapping of sections ({', '.join(SECTIONS)}); "
            f"got {type(data).__name__}",
            path=file,
            line=lines.get((), 1),
        )
    for section, value in data.items():
        if section in NAMED_SECTIONS and value is None:
            continue  # an empty section, e.g. `tools:` with nothing under it
        if section in NAMED_SECTIONS and not isinstance(value, dict):
            raise PolicyError(
                f"should be a mapping of names to settings; got {value!r}",
                path=file,
                line=lines.get((section,)),
                key_path=section,
            )
        if section in NAMED_SECTIONS:
            target = merged.setdefault(section, {})
            for name, entry in value.items():
                _claim(origins, (section, name), lines, file)
                target[name] = entry
        elif section in merged:
            _claim(origins, (section,), lines, file)
        else:
            merged[section] = value
            _claim(origins, (section,), lines, file)
    for key, line in lines.items():
        origins.setdefault(key, (file, line))


def _claim(origins: Origins, key: Path, lines: dict[Path, int], file: str) -> None:
    # A scope key already claimed by an earlier file is an error that names both files.
    line = lines.get(key, 1)
    if key in origins and origins[key][0] != file:
        first_file, first_line = origins[key]
        raise PolicyError(
            f"defined twice: also in {first_file}:{first_line}; keep one definition of "
            f"{format_path(key)!r} across the policy files",
            path=file,
            line=line,
            key_path=format_path(key),
        )
    origins[key] = (file, line)
