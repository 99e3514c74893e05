"""Options and helpers shared by CLI command modules. Entry-point code: may read env vars."""

from __future__ import annotations

import argparse
import os
from typing import Any

from podium.context import DEFAULT_TENANT
from podium.storage.urls import DEFAULT_URL


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
