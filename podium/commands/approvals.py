"""`podium approvals` (the inbox) and `podium approve|reject|edit|respond` (decisions).

The decider is `--user` with the roles `--role` asserts: the local operator's word, not a
credential (see `podium.commands._common.caller`; `PODIUM_CLI_ROLES=off` refuses `--role`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from pydantic import ValidationError

import podium.render as render
from podium.commands._common import caller, command, db_and_tenant, runtime
from podium.commands._runner import (
    GateMode,
    compile_workflow,
    describe,
    follow,
    open_gates,
    traced,
)
from podium.errors import ConfigurationError
from podium.gates.decision import PendingGate, decide
from podium.gates.request import Decision


def register(sub: Any) -> None:
    inbox = command(
        sub,
        "approvals",
        cmd_approvals,
        "List every pending gate of a tenant across threads (oldest first); "
        "gates past their expiry are escalated, never approved.",
    )
    db_and_tenant(inbox)
    for verb, text in (
        ("approve", "Approve a pending gate and let the run continue."),
        ("reject", "Reject a pending gate; the comment goes back to the agent."),
        ("edit", "Approve a gate with edited tool arguments, plan or answer."),
        ("respond", "Answer a question an agent asked (ask_human)."),
    ):
        parser = command(sub, verb, cmd_decide, text)
        parser.add_argument("thread", help="Thread id (see `podium approvals`).")
        parser.add_argument(
            "--gate", default=None, help="Gate id; needed when several gates are pending."
        )
        parser.add_argument("--comment", default="", help="Why (kept in the audit log).")
        parser.add_argument(
            "--user",
            default="cli",
            help="Who decides, as the local operator asserts it; recorded in the approvals "
            "table and the audit log (default %(default)s).",
        )
        parser.add_argument(
            "--role",
            action="append",
            default=[],
            help="A role the local operator asserts for the deciding user (repeatable), e.g. "
            "--role editor; refused when PODIUM_CLI_ROLES=off.",
        )
        parser.add_argument("--quiet", action="store_true", help="No progress lines.")
        if verb == "edit":
            what = parser.add_mutually_exclusive_group(required=True)
            what.add_argument("--args", help="New tool arguments as a JSON object.")
            what.add_argument("--plan", help="New plan as a JSON list of tasks.")
            what.add_argument("--answer", help="New final answer text.")
        if verb == "respond":
            parser.add_argument("response", help="The answer to the agent's question.")
        db_and_tenant(parser)
        parser.set_defaults(verb=verb)


def cmd_approvals(args: argparse.Namespace) -> int:
    with runtime(args) as rt:
        records = open_gates(rt, args.tenant)
    if not records:
        print(f"no pending gates for tenant {args.tenant!r}")
        return 0
    now = time.time()
    rows = []
    for record in records:
        gate = PendingGate("", record.request)
        rows.append(
            [
                record.gate_id,
                record.thread_id,
                render.age(now - record.requested_at),
                record.kind,
                record.agent or "-",
                record.status,
                describe(gate),
            ]
        )
    print(render.table(["gate", "thread", "age", "kind", "agent", "status", "asks"], rows))
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    decision = _decision(args)
    context = caller(args)
    with runtime(args) as rt:
        info = rt.threads.get(args.thread, tenant_id=args.tenant)
        app = compile_workflow(rt, info.workflow, None)
        traced_app = app.with_config(traced(app, args.thread, context))
        events = decide(
            traced_app,
            args.thread,
            decision,
            context=context,
            gate=args.gate,
            stream_mode="custom",
        )
        print(f"{args.verb}: recorded for thread {args.thread}", file=sys.stderr)
        return follow(
            rt, app, args.thread, context, events, quiet=args.quiet, gates=GateMode("stop")
        )


def _decision(args: argparse.Namespace) -> Decision:
    common = {"comment": args.comment}  # the decider is the caller (`decide`'s context)
    if args.verb == "approve":
        return Decision(decision="approve", **common)
    if args.verb == "reject":
        return Decision(decision="reject", **common)
    if args.verb == "respond":
        return Decision(decision="respond", response=args.response, **common)
    flag, shape = ("--args", "object") if args.args is not None else ("--plan", "list")
    try:
        if args.args is not None:
            return Decision(decision="edit", args=json.loads(args.args), **common)
        if args.plan is not None:
            return Decision(decision="edit", plan=json.loads(args.plan), **common)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{flag} must be JSON: {exc.msg} at char {exc.pos}") from exc
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"][1:])
        raise ConfigurationError(
            f"{flag} must be a JSON {shape}"
            + (" of tasks" if flag == "--plan" else " of argument names to values")
            + f"; {('at ' + where + ': ') if where else ''}{first['msg'].lower()}"
        ) from exc
    return Decision(decision="edit", answer=args.answer, **common)
