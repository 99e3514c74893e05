"""`podium dlq list|show|replay|discard`: the dead-letter queue, for the on-call engineer."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import podium.render as render
import podium.replay as replays
from podium.commands._common import command, db_and_tenant, runtime
from podium.commands._runner import GateMode, compile_workflow, follow
from podium.context import RunContext
from podium.stores.dead_letters import DeadLetter


def register(sub: Any) -> None:
    dlq = command(sub, "dlq", _help, "The dead-letter queue: tasks that failed for good.")
    verbs = dlq.add_subparsers(dest="dlq_command", metavar="ACTION")
    listing = command(verbs, "list", cmd_list, "Dead letters of a tenant, newest first.")
    listing.add_argument(
        "--status",
        choices=["pending", "replaying", "replayed", "discarded"],
        default=None,
        help="Only letters in this state (default: all).",
    )
    show = command(verbs, "show", cmd_show, "Everything stored with one dead letter.")
    replay = command(
        verbs,
        "replay",
        cmd_replay,
        "Run the task again on its thread (once; a second replay is refused).",
    )
    discard = command(verbs, "discard", cmd_discard, "Close a dead letter without replaying.")
    for parser in (show, replay, discard):
        parser.add_argument("id", help="Dead letter id (dl-...).")
    replay.add_argument("--agent", default=None, help="Give the task to another agent.")
    replay.add_argument("--user", default="cli", help="Who replays (default %(default)s).")
    replay.add_argument("--quiet", action="store_true", help="No progress lines.")
    discard.add_argument("--reason", required=True, help="Why it is closed.")
    discard.add_argument("--user", default="cli", help="Who discards (default %(default)s).")
    for parser in (listing, show, replay, discard):
        db_and_tenant(parser)
    dlq.set_defaults(dlq_parser=dlq)


def _help(args: argparse.Namespace) -> int:
    args.dlq_parser.print_help(sys.stderr)
    return 2


def cmd_list(args: argparse.Namespace) -> int:
    with runtime(args) as rt:
        letters = rt.services.dead_letters.list(args.tenant, status=args.status)
    if not letters:
        print(f"no dead letters for tenant {args.tenant!r}")
        return 0
    now = time.time()
    rows = [
        [
            d.id,
            _status(d),
            render.age(now - d.created_at),
            d.workflow,
            d.thread_id,
            d.task_id,
            d.agent,
            (d.attempts[-1].error if d.attempts else "")[:50],
        ]
        for d in letters
    ]
    print(
        render.table(
            ["id", "status", "age", "workflow", "thread", "task", "agent", "last error"], rows
        )
    )
    return 0


def _status(letter: DeadLetter) -> str:
    """A replayed letter whose replay's run stopped says so until a run finishes its thread
    (`podium resume` shows the way on)."""
    if "stopped" in ((letter.resolution or {}).get("result") or {}):
        return f"{letter.status} (run stopped)"
    return letter.status


def cmd_show(args: argparse.Namespace) -> int:
    with runtime(args) as rt:
        d = rt.services.dead_letters.get(args.id, args.tenant)
    print(f"dead letter {d.id}  status {d.status}  tenant {d.tenant_id}")
    print(f"workflow {d.workflow}  thread {d.thread_id}  task {d.task_id}  agent {d.agent}")
    print(f"last good checkpoint: {d.last_checkpoint_id or '-'}")
    print("\nattempts:")
    for a in d.attempts:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(a.at))
        print(f"  {stamp}  {a.agent} #{a.attempt}  {a.error_type}: {a.error}")
    print("\ninputs:")
    print(json.dumps(d.inputs, indent=2, ensure_ascii=False))
    if d.resolution:
        print("\nresolution:")
        print(json.dumps(d.resolution, indent=2, ensure_ascii=False))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    context = RunContext(tenant_id=args.tenant, user_id=args.user)
    with runtime(args) as rt:
        letter = rt.services.dead_letters.get(args.id, args.tenant)
        app = compile_workflow(rt, letter.workflow, None)
        events = replays.replay(
            app,
            letter,
            services=rt.services,
            context=context,
            agent=args.agent,
            stream_mode="custom",
        )
        print(
            f"replaying {letter.id}: task {letter.task_id} on thread {letter.thread_id}",
            file=sys.stderr,
        )
        code = follow(
            rt, app, letter.thread_id, context, events, quiet=args.quiet, gates=GateMode("stop")
        )
        status = replays.finish(app, letter, services=rt.services)
    print(f"replay of {letter.id}: task {letter.task_id} is now {status}", file=sys.stderr)
    return code


def cmd_discard(args: argparse.Namespace) -> int:
    with runtime(args) as rt:
        letter = rt.services.dead_letters.discard(
            args.id, args.tenant, by=args.user, reason=args.reason
        )
    print(f"discarded {letter.id}: {args.reason}")
    return 0
