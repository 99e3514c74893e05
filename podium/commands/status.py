"""`podium status`: every tenant's runs queued and in flight, gates waiting, dead letters,
open breakers and spending, from a server's `GET /podium/metrics` (the numbers an
autoscaler reads) or, without a server, from a database's podium tables (no run counts)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import podium.render as render
from podium.commands._common import command
from podium.errors import ConfigurationError, PodiumError
from podium.status import build_status, parse_metrics, status_rows, store_counts
from podium.storage.database import open_database
from podium.storage.urls import DEFAULT_URL, parse_url


def register(sub: Any) -> None:
    """Add `podium status` to the CLI's subparsers."""
    parser = command(
        sub,
        "status",
        cmd_status,
        "Per tenant: runs queued and in flight, gates waiting, dead letters, open breakers, "
        "spending.",
    )
    parser.add_argument(
        "--server",
        default=os.environ.get("PODIUM_SERVER_URL"),
        help="A podium LangGraph server (default $PODIUM_SERVER_URL); its /podium/metrics "
        "needs a credential with the operator role.",
    )
    parser.add_argument(
        "--key",
        default=os.environ.get("PODIUM_API_KEY"),
        help="API key for --server (default $PODIUM_API_KEY).",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("PODIUM_SERVER_TOKEN"),
        help="Bearer token for --server instead of a key (default $PODIUM_SERVER_TOKEN).",
    )
    parser.add_argument(
        "--db",
        default=os.environ.get("PODIUM_DATABASE_URL") or DEFAULT_URL,
        help="Without --server: the database to read (default: $PODIUM_DATABASE_URL or "
        "%(default)s); runs are counted only by a server.",
    )


def cmd_status(args: argparse.Namespace) -> int:
    if args.server:
        text = fetch_metrics(args.server, key=args.key, token=args.token)
        status, runs = parse_metrics(text), True
    else:
        db = open_database(parse_url(args.db))
        try:
            status, runs = build_status(store_counts(db)), False
        finally:
            db.close()
    headers, rows = status_rows(status, runs=runs)
    if not rows:
        print("nothing to report: no tenant has runs, gates, dead letters, breakers or usage")
        return 0
    print(render.table(headers, rows))
    if not runs:
        print("runs_*: counted by a server only; pass --server URL", file=sys.stderr)
    return 0


def fetch_metrics(server: str, *, key: str | None, token: str | None) -> str:
    """The text of `GET {server}/podium/metrics`.

    Raises:
        PodiumError: unreachable server or refused credential, saying what to do.
    """
    if not (key or token):
        raise ConfigurationError(
            "--server needs a credential: --key (or $PODIUM_API_KEY) or --token "
            "(or $PODIUM_SERVER_TOKEN) of a user with the operator role"
        )
    import httpx  # langgraph-sdk's dependency (the server extra); only this path needs it

    headers = {"x-api-key": key} if key else {"authorization": f"Bearer {token}"}
    url = f"{server.rstrip('/')}/podium/metrics"
    try:
        answer = httpx.get(url, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise PodiumError(f"cannot reach {url}: {exc}; is the server running?") from None
    if answer.status_code != 200:
        try:
            detail = answer.json().get("detail")
        except ValueError:
            detail = answer.text[:200]
        raise PodiumError(f"{url} answered {answer.status_code}: {detail}")
    return answer.text
