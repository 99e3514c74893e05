"""Options and helpers shared by CLI command modules. Entry-point code: may read env vars.

Environment (read here): PODIUM_DATABASE_URL (`--db`'s default), PODIUM_AUDIT_KEY (the HMAC
key of the audit chains, as UTF-8 text; every command that writes or verifies audit events
uses it), PODIUM_CLI_ROLES ("off" refuses `--role`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from podium.context import DEFAULT_TENANT, RunContext
from podium.errors import ConfigurationError
from podium.runtime import PodiumRuntime, open_runtime
from podium.storage.urls import DEFAULT_URL

#: Set to "off" to refuse `--role` (and the roles `--approve-all` acts with) on this machine.
CLI_ROLES_ENV = "PODIUM_CLI_ROLES"


def command(sub: Any, name: str, handler: Any, text: str) -> argparse.ArgumentParser:
    """Add a subcommand whose `--help` says `text` and which runs `handler(args) -> int`."""
    parser = sub.add_parser(name, help=text, description=text)
    parser.set_defaults(handler=handler)
    return parser  # type: ignore[no-any-return]  # argparse's add_parser is untyped


def db_and_tenant(parser: argparse.ArgumentParser) -> None:
    """`--db` (default $PODIUM_DATABASE_URL or the embedded SQLite file) and `--tenant`."""
    parser.add_argument(
        "--db",
        default=os.environ.get("PODIUM_DATABASE_URL") or DEFAULT_URL,
        help="Database URL: sqlite:///path, postgresql://..., or memory:// "
        "(default: $PODIUM_DATABASE_URL or %(default)s).",
    )
    parser.add_argument("--tenant", default=DEFAULT_TENANT, help="Tenant id (default %(default)s).")


def cli_roles_enabled() -> bool:
    """Whether the CLI may act with roles its operator asserts (`PODIUM_CLI_ROLES`, default
    "on"; "off" turns them off).

    Raises:
        ConfigurationError: for a value other than "on" or "off".
    """
    value = (os.environ.get(CLI_ROLES_ENV) or "on").strip().lower()
    if value not in ("on", "off"):
        raise ConfigurationError(
            f"{CLI_ROLES_ENV}={value!r} is not understood; use 'on' (the default) or 'off'"
        )
    return value == "on"


def caller(args: argparse.Namespace) -> RunContext:
    """Who a CLI command acts as: `--tenant`, `--user` and `--role`.

    These are what the local operator asserts, not a credential: whoever can run the CLI
    against the database can name any user and role, so the database is the trust boundary.
    Where that is not acceptable, `PODIUM_CLI_ROLES=off` refuses `--role`, and gates that
    need a role are decided on the LangGraph server, whose roles come from the credential.

    Raises:
        ConfigurationError: for `--role` while `PODIUM_CLI_ROLES=off`.
    """
    roles = frozenset(getattr(args, "role", None) or ())
    if roles and not cli_roles_enabled():
        raise ConfigurationError(
            f"--role {' --role '.join(sorted(roles))} refused: {CLI_ROLES_ENV}=off on this "
            "machine, so the CLI acts with no role; decide gates that need a role on the "
            "LangGraph server (roles come from the credential there)"
        )
    return RunContext(tenant_id=args.tenant, user_id=args.user, roles=roles)


def audit_key() -> bytes | None:
    """PODIUM_AUDIT_KEY as bytes (its UTF-8 text), or None when unset or empty."""
    text = os.environ.get("PODIUM_AUDIT_KEY")
    return text.encode("utf-8") if text else None


@contextmanager
def runtime(args: argparse.Namespace) -> Iterator[PodiumRuntime]:
    """`open_runtime(args.db)` with the audit key of PODIUM_AUDIT_KEY, so events a command
    writes are chained as `podium audit verify` will check them."""
    with open_runtime(args.db, audit_key=audit_key()) as rt:
        yield rt
