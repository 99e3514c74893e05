"""`podium effects` (the side-effect ledger) and `podium effects resolve` (in-doubt calls).

A side-effect call whose process died mid-tool is in doubt: its task waits at an effect
gate until an operator says what happened. `resolve` decides that gate through the same
`decide` API as every other gate (role checks, one decision per gate, audit) and lets
the run continue.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import podium.render as render
from podium.commands._common import caller, command, db_and_tenant, runtime
from podium.commands._runner import GateMode, compile_workflow, follow, traced
from podium.gates.decision import decide
from podium.gates.request import Decision
from podium.stores.effects.keys import EFFECT_STATES


def register(sub: Any) -> None:
    effects = command(
        sub, "effects", cmd_list, "List a tenant's side-effect calls (the exactly-once ledger)."
    )
    db_and_tenant(effects)
    effects.add_argument("--status", choices=EFFECT_STATES, default=None, help="Only these.")
    effects.add_argument("--thread", default=None, help="Only this thread.")
    verbs = effects.add_subparsers(dest="effects_command", metavar="ACTION")
    resolve = command(
        verbs,
        "resolve",
        cmd_resolve,
        "Say whether an in-doubt side effect happened: done (it did), retry (it did not: "
        "run it again) or abandon (do not run it); the run then continues.",
    )
    resolve.add_argument("thread", help="Thread id (see `podium approvals`).")
    resolve.add_argument("answer", choices=["done", "retry", "abandon"], help="What happened.")
    resolve.add_argument("--gate", default=None, help="Gate id; needed when several wait.")
    resolve.add_argument("--comment", default="", help="Why (kept in the audit log).")
    resolve.add_argument("--user", default="cli", help="Who decides (default %(default)s).")
    resolve.add_argument(
        "--role",
        action="append",
        default=[],
        help="A role of the deciding user (repeatable); refused when PODIUM_CLI_ROLES=off.",
    )
    resolve.add_argument("--quiet", action="store_true", help="No progress lines.")
    db_and_tenant(resolve)


def cmd_list(args: argparse.Namespace) -> int:
    with runtime(args) as rt:
        rows = rt.services.effects.list(args.tenant, status=args.status, thread_id=args.thread)
    if not rows:
        print(f"no side-effect calls for tenant {args.tenant!r}")
        return 0
    now = time.time()
    table = [
        [
            e.key.thread_id,
            e.key.task_id,
            e.key.call_key,
            e.tool,
            e.status,
            e.attempts,
            render.age(now - e.updated_at),
            e.resolution or "-",
        ]
        for e in rows
    ]
    print(
        render.table(
            ["thread", "task", "call", "tool", "status", "attempts", "updated", "resolution"],
            table,
        )
    )
    return 0


def cmd_resolve(args: argparse.Namespace) -> int:
    context = caller(args)  # refuses --role under PODIUM_CLI_ROLES=off
    decision = Decision(decision=args.answer, comment=args.comment, user=context.user_id)
    with runtime(args) as rt:  # PODIUM_AUDIT_KEY chains the decision's audit events
        info = rt.threads.get(args.thread, tenant_id=args.tenant)
        app = compile_workflow(rt, info.workflow, None)
        events = decide(
            app.with_config(traced(app, args.thread, context)),
            args.thread,
            decision,
            context=context,
            gate=args.gate,
            stream_mode="custom",
        )
        print(f"effects resolve: {args.answer} recorded for {args.thread}", file=sys.stderr)
        return follow(
            rt, app, args.thread, context, events, quiet=args.quiet, gates=GateMode("stop")
        )
