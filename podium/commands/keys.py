"""`podium keys create|list|revoke`: the server's API keys, kept hashed in its database.

`--db` defaults to $PODIUM_DATABASE_URL, else the server's default database
(`sqlite:///.podium/server.db`), so run these where the server runs, with its
environment. `create` prints the key once, alone on stdout (capture it:
`KEY=$(podium keys create ...)`); the database keeps only its SHA-256.
A user of a tenant has one active key per label, so `create` run again is refused
(exit 2, one line naming the key to revoke) rather than issuing a second secret.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import podium.render as render
from podium.commands._common import command
from podium.server._runtime import SERVER_DEFAULT_URL
from podium.server.keys import ApiKeys
from podium.storage.database import open_database
from podium.storage.urls import mask, parse_url


def register(sub: Any) -> None:
    keys = command(sub, "keys", _help, "The server's API keys: create, list, revoke.")
    verbs = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    create = command(
        verbs, "create", cmd_create, "Make a key for a user of a tenant; prints it once."
    )
    create.add_argument("--tenant", required=True, help="The tenant the key signs in to.")
    create.add_argument("--user", required=True, help="The user it signs in as.")
    create.add_argument(
        "--role",
        action="append",
        default=[],
        help="A role of the user (repeatable), e.g. --role editor.",
    )
    create.add_argument("--label", default="", help="What the key is for (shown in `list`).")
    listing = command(verbs, "list", cmd_list, "Keys (never the keys themselves), newest first.")
    listing.add_argument("--tenant", default=None, help="Only this tenant's keys (default: all).")
    listing.add_argument("--active", action="store_true", help="Leave out revoked keys.")
    revoke = command(
        verbs, "revoke", cmd_revoke, "Revoke a key: every server on the database refuses it now."
    )
    revoke.add_argument("id", help="The key's id (see `podium keys list`).")
    revoke.add_argument("--tenant", default=None, help="Refuse unless the key is this tenant's.")
    for parser in (create, listing, revoke):
        parser.add_argument(
            "--db",
            default=os.environ.get("PODIUM_DATABASE_URL") or SERVER_DEFAULT_URL,
            help="The server's podium database (default: $PODIUM_DATABASE_URL or %(default)s).",
        )
    keys.set_defaults(keys_parser=keys)


def _help(args: argparse.Namespace) -> int:
    args.keys_parser.print_help(sys.stderr)
    return 2


@contextmanager
def _keys(url: str) -> Iterator[ApiKeys]:
    db = open_database(parse_url(url))
    try:
        yield ApiKeys(db)
    finally:
        db.close()


def cmd_create(args: argparse.Namespace) -> int:
    with _keys(args.db) as keys:
        key, info = keys.create(args.tenant, args.user, args.role, label=args.label)
    roles = ", ".join(info.roles) or "none"
    print(
        f"created API key {info.key_id} for {info.identity!r} of tenant {info.tenant_id!r} "
        f"(roles: {roles}) in {mask(args.db)}; it is shown once, below: store it now",
        file=sys.stderr,
    )
    print(key)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with _keys(args.db) as keys:
        found = keys.list(args.tenant)
    if args.active:
        found = [k for k in found if k.active]
    if not found:
        whose = f" of tenant {args.tenant!r}" if args.tenant else ""
        print(f"no API keys{whose} in {mask(args.db)}")
        return 0
    now = time.time()
    rows = [
        [
            k.key_id,
            k.tenant_id,
            k.identity,
            ", ".join(k.roles) or "-",
            render.age(now - k.created_at),
            "active" if k.active else f"revoked {render.age(now - (k.revoked_at or now))}",
            k.label,
        ]
        for k in found
    ]
    print(render.table(["id", "tenant", "user", "roles", "created", "status", "label"], rows))
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    with _keys(args.db) as keys:
        info = keys.revoke(args.id, tenant_id=args.tenant)
    print(
        f"revoked API key {info.key_id} of {info.identity!r} (tenant {info.tenant_id!r}); "
        "servers on this database refuse it from now on"
    )
    return 0
