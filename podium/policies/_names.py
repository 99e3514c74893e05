"""Check that a policy names only agents, tools and workflows that exist.

A typo such as `agents.reseacher` would otherwise be a rule that never applies, so it
is an error at load or build time, pointing at the line to fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from podium.policies._problems import Problem, policy_error, suggest
from podium.policies._yaml import Path

# `PolicySet` and `Block` (podium.policies.schema) are read by attribute here; the schema
# imports this module to check names, so this one does not import the schema back.
PolicySet = Any
Block = Any

WILDCARD = "*"


def check_names(
    policy: PolicySet,
    *,
    agents: Iterable[str] | None,
    tools: Iterable[str] | None,
    workflows: Iterable[str] | None,
) -> None:
    """Raise one PolicyError listing every unknown name (see `PolicySet.validate_names`)."""
    problems: list[Problem] = []
    if agents is not None:
        problems += _unknown("agent", policy.agents, ("agents",), agents)
    if workflows is not None:
        problems += _unknown("workflow", policy.workflows, ("workflows",), workflows)
    if tools is not None:
        known = sorted(set(tools))
        problems += _unknown("tool", policy.tools, ("tools",), known)
        for at, block in blocks(policy):
            if block.tools is None:
                continue
            for field in ("allow", "deny"):
                for index, name in enumerate(getattr(block.tools, field)):
                    if name != WILDCARD and name not in known:
                        path = (*at, "tools", field, index)
                        problems.append(Problem(path, _text("tool", name, known)))
    if problems:
        raise policy_error(problems, dict(policy._origins))


def blocks(policy: PolicySet) -> Iterator[tuple[Path, Block]]:
    """Every scope block with its key path: global, then tenants, workflows, agents."""
    yield ("global",), policy.global_
    for section in ("tenants", "workflows", "agents"):
        for name, block in getattr(policy, section).items():
            yield (section, name), block


def _unknown(kind: str, section: Iterable[str], at: Path, known: Iterable[str]) -> list[Problem]:
    listed = sorted(set(known))
    return [
        Problem((*at, name), _text(kind, name, listed)) for name in section if name not in listed
    ]


def _text(kind: str, name: str, known: list[str]) -> str:
    names = ", ".join(known) if known else "(none)"
    return f"unknown {kind} {name!r}; known: {names}{suggest(name, known)}"
