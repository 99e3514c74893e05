"""Options and helpers shared by CLI command modules. Entry-point code: may read env vars.

Environment (read here): PODIUM_DATABASE_URL (`--db`'s default), PODIUM_AUDIT_KEY (the HMAC
key of the audit chains, as UTF-8 text; every command that writes or verifies audit events
uses it), PODIUM_CLI_ROLES ("off" refuses `--role`), PODIUM_DB_RETRY_FOR (seconds a lost
PostgreSQL connection is retried).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from podium.context import DEFAULT_TENANT, RunContext
from podium.errors import ConfigurationError
from podium.runtime import PodiumRuntime, open_runtime
from podium.storage.faults import RETRY_FOR_ENV, retry_window
from podium.storage.urls import DEFAULT_URL, mask

#: Set to "off" to refuse `--role` (and the roles `--approve-all` acts with) on this machine.
CLI_ROLES_ENV = "PODIUM_CLI_ROLES"


def command(sub: Any, name: str, handler: Any, text: str) -> argparse.ArgumentParser:
    """Add a subcommand whose `--help` says `text` and which runs `handler(args) -> int`."""
    parser = sub.add_parser(name, help=text, description=text)
    parser.set_defaults(handler=handler)
    return parser  # type: ignore[no-any-return]  # argparse's add_parser is untyped


def default_db() -> str:
    """The database of commands run without `--db`: $PODIUM_DATABASE_URL or the embedded one."""
    return os.environ.get("PODIUM_DATABASE_URL") or DEFAULT_URL


def db_and_tenant(parser: argparse.ArgumentParser) -> None:
    """`--db` (default $PODIUM_DATABASE_URL or the embedded SQLite file) and `--tenant`."""
    parser.add_argument(
        "--db",
        default=default_db(),
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
    writes are chained as `podium audit verify` will check them, and the retry window of
    PODIUM_DB_RETRY_FOR."""
    window = retry_window(os.environ.get(RETRY_FOR_ENV))
    with open_runtime(args.db, audit_key=audit_key(), db_retry_for=window) as rt:
        yield rt


def invocation(
    argv0: str | None = None,
    *,
    which: Callable[[str], str | None] = shutil.which,
    cwd: str | None = None,
) -> str:
    """How to start podium again, as the user did, so a printed hint runs as printed.

    `podium` when that name on PATH is this very command; otherwise the path it was started
    by (e.g. `.venv/bin/podium` before the virtualenv is activated), relative to the working
    directory when it lies below it; `python -m podium.cli` for a module run.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    path = Path(argv0)
    if path.name == "cli.py" and path.parent.name == "podium":
        return f"{_program('python', sys.executable, which, cwd)} -m podium.cli"
    if path.stem != "podium":  # not started as the command (e.g. main() called from code)
        return "podium"
    return _program("podium", argv0, which, cwd)


def _program(name: str, path: str, which: Callable[[str], str | None], cwd: str | None) -> str:
    """`name` when PATH finds this very file under it, else the file's path (relative to
    the working directory when below it), quoted for a shell."""
    found = which(name)
    if found and _same_file(found, path):
        return name
    here = Path(cwd or os.getcwd()).resolve()
    # Not resolved: a virtualenv's bin/python is a symlink to the base interpreter, and
    # only the link runs with the virtualenv's packages.
    full = Path(os.path.abspath(Path(here, path)))
    try:
        shown = full.relative_to(here).as_posix()
    except ValueError:
        shown = str(full)
    return shlex.quote(shown if "/" in shown else f"./{shown}")


def _same_file(a: str, b: str) -> bool:
    # Paths, not inodes: a virtualenv's python is a link to the system's, yet only the
    # link starts with the virtualenv's packages.
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def hint(*words: str, db: str | None = None, tenant: str = DEFAULT_TENANT) -> str:
    """A podium command line to print as the next step, runnable as printed.

    `--db` is added when `db` is not the default database (its password masked, so such a
    hint needs the password put back) and `--tenant` when the tenant is not the default.
    """
    parts = list(words)
    if db is not None and db != default_db():
        parts += ["--db", mask(db)]
    if tenant != DEFAULT_TENANT:
        parts += ["--tenant", tenant]
    return " ".join([invocation(), shlex.join(parts)])
