"""`podium policies`: check policy files and explain which rule decides what.

podium policies check PATH [--workflow NAME]... [--known-tool NAME]...
podium policies explain --file PATH [--tenant T] [--workflow W] [--agent A]
                        [--tool X] [--args JSON] [--role R]...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import podium.render as render
from podium.commands._common import command
from podium.context import DEFAULT_TENANT
from podium.errors import ConfigurationError, PolicyError
from podium.policies import CallScope, PolicySet, explain, load_policies

EXIT_OK, EXIT_BAD = 0, 2
DEFAULT_FILE = "policies/default.yaml"


def register(sub: Any) -> None:
    """Add `podium policies check|explain` to the CLI's subparsers."""
    group = command(sub, "policies", None, "Check policy files and explain which rule decides.")
    actions = group.add_subparsers(dest="policies_action", metavar="ACTION")
    group.set_defaults(handler=lambda args: _usage(group))

    check = command(
        actions,
        "check",
        cmd_check,
        "Validate a policy file or directory; exit 0 when valid, 2 with file:line otherwise.",
    )
    check.add_argument("path", help="A policy .yaml file or a directory of them.")
    check.add_argument(
        "--workflow",
        action="append",
        default=[],
        metavar="NAME",
        help="Also check that agents, tools and workflows named in the policy exist in this "
        "workflow (repeatable; see `podium workflows`).",
    )
    check.add_argument(
        "--known-tool",
        action="append",
        default=[],
        metavar="NAME",
        help="A tool that exists outside the --workflow graphs (repeatable).",
    )

    show = command(
        actions,
        "explain",
        cmd_explain,
        "Show which policy rule decides tool access, arguments, approval, rate limits, "
        "budgets, model routing and output filters for one caller.",
    )
    show.add_argument(
        "--file",
        default=None,
        help=f"Policy file or directory (default: {DEFAULT_FILE} when it exists here, else "
        "the policy shipped with podium).",
    )
    show.add_argument("--tenant", default=DEFAULT_TENANT, help="Tenant id (default %(default)s).")
    show.add_argument("--workflow", default=None, help="Workflow name.")
    show.add_argument("--agent", default=None, help="Agent name.")
    show.add_argument("--tool", default=None, help="Tool name.")
    show.add_argument(
        "--args", default=None, metavar="JSON", help='Tool arguments, e.g. \'{"path": "a.md"}\'.'
    )
    show.add_argument(
        "--role", action="append", default=[], help="A role of the caller (repeatable)."
    )


def cmd_check(args: argparse.Namespace) -> int:
    try:
        policy = load_policies(args.path)
        if args.workflow:
            agents, tools = _names_of(args.workflow)
            policy.validate_names(
                agents=agents, tools=tools | set(args.known_tool), workflows=args.workflow
            )
    except (PolicyError, ConfigurationError) as exc:
        print(f"podium: error: {exc}", file=sys.stderr)
        return EXIT_BAD
    print(f"{args.path}: valid ({_summary(policy)})")
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    call_args = _json_object(args.args) if args.args is not None else None
    policy = load_policies(args.file or _default_file())

    call = CallScope(
        tenant=args.tenant, workflow=args.workflow, agent=args.agent, roles=frozenset(args.role)
    )
    print(explain(policy, call, tool=args.tool, args=call_args))
    return EXIT_OK


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_BAD


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"--args is not valid JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f'--args must be a JSON object like {{"path": "a.md"}}: {text!r}')
    return value


def _names_of(workflows: list[str]) -> tuple[set[str], set[str]]:
    # Imported here: building graphs pulls in LangGraph, which `check PATH` alone never needs.
    from podium.graphs.catalog import get_workflow

    agents: set[str] = set()
    tools: set[str] = set()
    for name in workflows:
        graph = get_workflow(name, os.environ.get("PODIUM_WORKFLOWS"))(model="demo")
        registry = getattr(graph, "registry", None)
        if registry is None:
            raise ConfigurationError(
                f"workflow {name!r} is not a podium workflow graph, so its agents are unknown; "
                "check without --workflow"
            )
        for spec in registry:
            agents.add(spec.name)
            tools.update(spec.tool_names)
    return agents, tools


def _summary(policy: PolicySet) -> str:
    counts = [
        render.count(len(getattr(policy, section)), section.removesuffix("s"))
        for section in ("tenants", "workflows", "agents", "tools", "models")
    ]
    return f"{render.count(len(policy.sources), 'file')}: " + ", ".join(counts)


def _default_file() -> str:
    """`policies/default.yaml` in the working directory, else the one podium ships."""
    if Path(DEFAULT_FILE).exists():
        return DEFAULT_FILE
    from podium.graphs.research_brief import default_policy_path

    return str(default_policy_path())
