"""`podium audit`: verify, export, head and show of the tamper-evident audit log.

Environment (read in `podium.commands._common`, as an entry point): PODIUM_AUDIT_KEY, the
HMAC key as text (its UTF-8 bytes are the key). Set it wherever events are written and
verified; verify says "written without the key" for rows that were not signed with it, and
calls a chain verified without a key "unkeyed", with what that means on stderr.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import podium.render as render
from podium.commands._common import audit_key, command, db_and_tenant
from podium.storage.database import open_database
from podium.storage.urls import mask, parse_url
from podium.stores.audit.log import AuditError, AuditLog, ChainReport, Head, StoredEvent
from podium.stores.threads import ThreadIndex

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SEQ_HASH = re.compile(r"^(\d+):([0-9a-f]{64})$")


def register(sub: Any) -> None:
    """Add `podium audit` and its subcommands to the CLI's subparsers."""
    group = command(sub, "audit", _help, "Verify, export and read the tamper-evident audit log.")
    inner = group.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")
    group.set_defaults(audit_parser=group)

    verify = command(
        inner, "verify", cmd_verify, "Recompute the hash chains; exit 1 on the first bad row."
    )
    _all_tenants(verify)
    verify.add_argument(
        "--head",
        metavar="FILE_OR_HASH",
        help="A head stored earlier (a file from `podium audit head --json`, SEQ:HASH, or a "
        "hash) to detect a truncated tail.",
    )

    export = command(inner, "export", cmd_export, "Write the stored events, one JSON per line.")
    _all_tenants(export)
    export.add_argument("--format", choices=["jsonl"], default="jsonl", help="Only jsonl.")
    export.add_argument("--output", default="-", help="File to write (default: stdout).")

    head = command(inner, "head", cmd_head, "Print the chain heads, to store somewhere else.")
    _all_tenants(head)
    head.add_argument("--json", action="store_true", help="As JSON, for `verify --head`.")

    show = command(inner, "show", cmd_show, "Show a thread's audit timeline, oldest first.")
    show.add_argument("thread", help="Thread id.")
    db_and_tenant(show)


def _all_tenants(parser: argparse.ArgumentParser) -> None:
    """`--db` and `--tenant`, where no `--tenant` means every tenant."""
    db_and_tenant(parser)
    parser.set_defaults(tenant=None)
    # argparse keeps options by flag only in this mapping; the shared help names a default.
    parser._option_string_actions["--tenant"].help = "Tenant id (default: every tenant)."


def _help(args: argparse.Namespace) -> int:
    args.audit_parser.print_help(sys.stderr)
    return EXIT_USAGE


@contextmanager
def _open_log(args: argparse.Namespace) -> Iterator[AuditLog]:
    db = open_database(parse_url(args.db))
    try:
        yield AuditLog(db, key=audit_key())
    finally:
        db.close()


# -- verify ---------------------------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    heads = load_heads(args.head, args.tenant) if args.head else None
    with _open_log(args) as log:
        report = log.verify(args.tenant, head=heads)
    if not report.chains:
        print(f"no audit events in {mask(args.db)}")
        return EXIT_OK
    keyed = audit_key() is not None
    for chain in report:
        print(_verdict(chain, keyed))
    if not keyed and any(chain.problem is None for chain in report):
        print(UNKEYED_NOTE, file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED


#: What verify says of a chain checked without a key (its rows are plain SHA-256).
UNKEYED_NOTE = (
    "note: these chains are unkeyed (plain SHA-256, PODIUM_AUDIT_KEY unset): anyone with "
    "write access to the database can edit, insert or delete events and recompute every "
    "hash after them, and verify still passes. Only an HMAC key (PODIUM_AUDIT_KEY, set "
    "wherever events are written and verified) or a head kept elsewhere (`podium audit head`, "
    "then `verify --head`) detects that."
)


def _verdict(chain: ChainReport, keyed: bool = True) -> str:
    if chain.problem is None:
        return (
            f"OK    tenant {chain.tenant_id}: {render.count(chain.count, 'event')}, "
            f"head {chain.head.seq} {chain.head.hash}" + ("" if keyed else ", unkeyed (SHA-256)")
        )
    problem = chain.problem
    return (
        f"FAIL  tenant {chain.tenant_id}: seq {problem.seq} {problem.kind}: {problem.detail} "
        f"({render.count(chain.count, 'event')} verified before it)"
    )


def load_heads(value: str, tenant: str | None) -> list[Head]:
    """Heads from a file or an inline value: JSON (an object or a list), `tenant seq hash`
    lines, `SEQ:HASH`, or a bare hash. The last two need `tenant`.

    Raises:
        AuditError: naming the value and the accepted forms.
    """
    path = Path(value)
    text = path.read_text(encoding="utf-8") if path.is_file() else value
    heads = _parse_heads(text.strip(), tenant)
    if heads is None:
        what = f"the file {value!r}" if path.is_file() else f"{value!r} (not a file either)"
        raise AuditError(
            f"cannot read a head from {what}; pass a file written by "
            "`podium audit head --json`, SEQ:HASH, or a 64-hex-digit hash"
        )
    if tenant is not None:
        heads = [h for h in heads if h.tenant_id == tenant]
        if not heads:
            raise AuditError(f"{value!r} holds no head for tenant {tenant!r}")
    return heads


def _parse_heads(text: str, tenant: str | None) -> list[Head] | None:
    inline = _SEQ_HASH.match(text) or _HEX64.match(text)
    if inline:
        if tenant is None:
            raise AuditError(f"head {text!r} names no tenant; say which with --tenant")
        if _HEX64.match(text):
            return [Head(tenant, None, text)]
        return [Head(tenant, int(inline.group(1)), inline.group(2))]
    try:
        data = json.loads(text)
    except ValueError:
        lines = [line.split() for line in text.splitlines() if line.strip()]
        if not lines or any(len(p) != 3 or not p[1].isdigit() for p in lines):
            return None
        return [Head(p[0], int(p[1]), p[2]) for p in lines]
    items = data if isinstance(data, list) else [data]
    if not all(_is_head(item) for item in items):
        return None
    return [Head(d["tenant_id"], d["seq"], d["hash"]) for d in items]


def _is_head(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("tenant_id"), str)
        and isinstance(item.get("hash"), str)
        and (item.get("seq") is None or type(item.get("seq")) is int)
    )


# -- export, head, show ---------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    count = 0
    with _open_log(args) as log, _output(args.output) as out:
        for row in log.export(args.tenant):
            out.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    where = "stdout" if args.output == "-" else args.output
    print(f"exported {count} audit events to {where}", file=sys.stderr)
    return EXIT_OK


@contextmanager
def _output(target: str) -> Iterator[Any]:
    if target == "-":
        yield sys.stdout
        return
    with open(target, "w", encoding="utf-8") as handle:
        yield handle


def cmd_head(args: argparse.Namespace) -> int:
    with _open_log(args) as log:
        tenants = [args.tenant] if args.tenant is not None else log.tenants()
        heads = [log.head(t) for t in tenants]
    if args.json:
        data: Any = heads[0].to_dict() if args.tenant else [h.to_dict() for h in heads]
        print(json.dumps(data, indent=2))
        return EXIT_OK
    if not heads:
        print(f"no audit events in {mask(args.db)}")
    for head in heads:
        print(f"{head.tenant_id} {head.seq} {head.hash}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    """The thread's timeline; a thread the tenant does not have is an error (exit 2), as
    for `podium show`."""
    db = open_database(parse_url(args.db))
    try:
        events = AuditLog(db, key=audit_key()).timeline(args.thread, args.tenant)
        if not events:
            # Raises ThreadNotFound (exit 2) for a thread the tenant does not have.
            ThreadIndex(db).get(args.thread, tenant_id=args.tenant)
    finally:
        db.close()
    if not events:
        print(f"no audit events for thread {args.thread!r} of tenant {args.tenant!r}")
        return EXIT_OK
    print(
        render.table(
            ["time (UTC)", "seq", "actor", "kind", "task", "summary"],
            [_timeline_row(e) for e in events],
        )
    )
    return EXIT_OK


def _timeline_row(event: StoredEvent) -> list[Any]:
    when = datetime.fromtimestamp(event.at, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return [when, event.seq, str(event.actor), event.kind, event.task_id, summary(event.payload)]


def summary(payload: dict[str, Any], width: int = 90) -> str:
    """One line for a payload: its `summary` or `message` if any, else `key=value` pairs."""
    for name in ("summary", "message"):
        if isinstance(payload.get(name), str):
            return _clip(payload[name], width)
    parts = [f"{k}={_short(v)}" for k, v in sorted(payload.items())]
    return _clip(", ".join(parts), width)


def _short(value: Any) -> str:
    if isinstance(value, str):
        if value.startswith("sha256:"):
            return value[:19]  # "sha256:" and 12 hex digits identify a content hash
        return _clip(value, 40)
    return _clip(json.dumps(value, ensure_ascii=False, separators=(",", ":")), 40)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."
