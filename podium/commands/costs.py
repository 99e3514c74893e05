"""`podium costs`: usage and cost totals from the ledger, grouped, with a total row."""

from __future__ import annotations

import argparse
import re
import time
from datetime import UTC, datetime
from typing import Any

import podium.render as render
from podium.commands._common import command, db_and_tenant
from podium.context import DEFAULT_TENANT
from podium.errors import ConfigurationError
from podium.storage.database import open_database
from podium.storage.urls import mask, parse_url
from podium.stores.ledger import GROUPINGS, CostRow, UsageLedger

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SINCE_HELP = "use a duration such as 30m, 24h, 7d or 2w, or a UTC date such as 2026-11-01"


def register(sub: Any) -> None:
    """Add `podium costs` to the CLI's subparsers."""
    parser = command(sub, "costs", cmd_costs, "Show token usage and cost totals from the ledger.")
    db_and_tenant(parser)
    parser.add_argument(
        "--all-tenants",
        action="store_true",
        help="Sum every tenant (an operator's report); not with --tenant.",
    )
    parser.add_argument(
        "--by", choices=GROUPINGS, default="agent", help="Group rows by (default %(default)s)."
    )
    parser.add_argument(
        "--since",
        type=_since_arg,
        default=None,
        metavar="WHEN",
        help="Only calls since WHEN: 30m, 24h, 7d, 2w, or a UTC date like 2026-11-01.",
    )


def since_timestamp(text: str, now: float) -> float:
    """Seconds since the epoch for `--since`: a duration back from `now`, or a date.

    A date or date-time without a zone is read as UTC.

    Raises:
        ConfigurationError: quoting the value and the accepted forms.
    """
    match = _DURATION.match(text)
    if match:
        return now - float(match.group(1)) * _SECONDS[match.group(2)]
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigurationError(f"bad --since value {text!r}; {_SINCE_HELP}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _since_arg(text: str) -> float:
    try:
        return since_timestamp(text, time.time())
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_costs(args: argparse.Namespace) -> int:
    """Print the totals table; the tenant is `--tenant`, or every tenant with `--all-tenants`."""
    if args.all_tenants and args.tenant != DEFAULT_TENANT:
        raise ConfigurationError(
            f"--tenant {args.tenant!r} and --all-tenants contradict each other; pass one"
        )
    tenant = None if args.all_tenants else args.tenant
    db = open_database(parse_url(args.db))
    try:
        rows = UsageLedger(db).totals(tenant, by=args.by, since=args.since)
    finally:
        db.close()
    if not rows:
        whose = "any tenant" if tenant is None else f"tenant {tenant!r}"
        print(f"no usage recorded for {whose} in {mask(args.db)}")
        return 0
    print(cost_table(args.by, rows))
    return 0


def cost_table(by: str, rows: list[CostRow]) -> str:
    """The totals as a text table, one row per key and a final `total` row."""
    body: list[list[Any]] = [_cells(r.key, r) for r in rows]
    total = CostRow(
        key="total",
        calls=sum(r.calls for r in rows),
        input_tokens=sum(r.input_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        cached_tokens=sum(r.cached_tokens for r in rows),
        total_tokens=sum(r.total_tokens for r in rows),
        cost_usd=sum(r.cost_usd for r in rows),
    )
    body.append(_cells("total", total))
    headers = [by, "calls", "input", "output", "cached", "tokens", "cost_usd"]
    return render.table(headers, body)


def _cells(key: str, row: CostRow) -> list[Any]:
    return [
        key,
        row.calls,
        row.input_tokens,
        row.output_tokens,
        row.cached_tokens,
        row.total_tokens,
        f"{row.cost_usd:.4f}",
    ]
