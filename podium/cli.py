"""The `podium` command: run workflows, inspect threads, resume runs.

Environment (read here and in `podium.commands`): PODIUM_DATABASE_URL (default
sqlite:///.podium/podium.db), PODIUM_MODEL (default "demo"), PODIUM_WORKFLOWS (extra
"name=module:function" entries), PODIUM_AUDIT_KEY (HMAC key of the audit chains, used by
every command that writes or verifies events), PODIUM_CLI_ROLES ("off" refuses `--role`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence

import podium.render as render
from podium.commands._common import caller, command, db_and_tenant, hint, runtime
from podium.commands._runner import (
    GateMode,
    compile_workflow,
    config_of,
    decide_command,
    describe,
    execute,
    open_gates,
    task_tokens,
    usage_table,
)
from podium.errors import PodiumError
from podium.gates.decision import pending_gates
from podium.graphs.catalog import catalog
from podium.graphs.catalog import describe as describe_workflow
from podium.graphs.research_brief import DEMO_GOAL, default_policy_path
from podium.lifecycle import RUN_FINISHED, RunStatus

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE = 0, 1, 2
#: Modules of podium.commands whose `register(subparsers)` adds command groups.
COMMAND_MODULES: list[str] = [
    "approvals",
    "audit",
    "costs",
    "dlq",
    "effects",
    "keys",
    "policies",
    "status",
]


def main(argv: Sequence[str] | None = None) -> int:
    # PODIUM_WORKFLOWS names modules; like other servers and tools that import user code
    # by name, look in the working directory too (last, so it shadows nothing installed).
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    # The connection pool logs each failed reconnect while a database is down; podium says
    # what is wrong itself, in one line, so those lines stay out of the CLI's output unless
    # logging is configured to show them.
    logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except PodiumError as exc:
        print(f"podium: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("podium: interrupted; the last checkpoint is kept", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="podium",
        description="podium: a governed orchestration runtime for fleets of LangGraph agents.",
        epilog="Run `podium COMMAND --help` for the options of a command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = command(
        sub, "demo", cmd_demo, "Run the research_brief example offline on the embedded database."
    )
    demo.add_argument("--goal", default=DEMO_GOAL, help="What to write a brief on.")
    _run_options(demo)

    run = command(sub, "run", cmd_run, "Run a workflow on a goal and print the answer.")
    run.add_argument("workflow", help="Workflow name (see `podium workflows`).")
    run.add_argument("goal", help="What the workflow should achieve.")
    _run_options(run)

    resume = command(
        sub, "resume", cmd_resume, "Continue a thread whose run stopped (crash, error or pause)."
    )
    resume.add_argument("thread", help="Thread id (see `podium threads`).")
    db_and_tenant(resume)
    resume.add_argument("--model", default=None, help="Model for the rest of the run.")
    resume.add_argument("--user", default="cli", help="User id recorded for the run.")
    _gate_options(resume)

    threads = command(sub, "threads", cmd_threads, "List a tenant's threads, newest first.")
    db_and_tenant(threads)
    threads.add_argument("--limit", type=int, default=20, help="How many (default 20).")

    show = command(
        sub, "show", cmd_show, "Show a thread: plan, task states, results, answer and usage."
    )
    show.add_argument("thread", help="Thread id.")
    db_and_tenant(show)

    command(sub, "workflows", cmd_workflows, "List the workflows podium can run.")
    for module in COMMAND_MODULES:
        importlib.import_module(f"podium.commands.{module}").register(sub)
    return parser


def _run_options(parser: argparse.ArgumentParser) -> None:
    db_and_tenant(parser)
    parser.add_argument(
        "--thread",
        default=None,
        help="Thread id (default: a new one); reuse one to continue its conversation.",
    )
    parser.add_argument("--user", default="cli", help="User id recorded for the run.")
    parser.add_argument(
        "--model",
        default=None,
        help="Model for the supervisor and agents without their own: 'demo' "
        "(offline) or e.g. 'openai:gpt-4o-mini' (default: $PODIUM_MODEL "
        "or demo).",
    )
    parser.add_argument("--quiet", action="store_true", help="No progress lines.")
    _gate_options(parser)


def _gate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--approve-all",
        action="store_true",
        help="Approve every gate unattended (otherwise: ask at a terminal, or "
        "stop at the gate and print the command that decides it).",
    )
    parser.add_argument(
        "--no-input",
        action="store_true",
        help="Never ask at a terminal: stop at a gate and print the command that decides "
        "it, as without a terminal (the run waits in its checkpoint).",
    )
    parser.add_argument(
        "--role",
        action="append",
        default=[],
        help="A role the local operator asserts for the user (repeatable), e.g. --role "
        "editor; refused when PODIUM_CLI_ROLES=off. --approve-all and answers at the terminal "
        "act with the gates' roles unless PODIUM_CLI_ROLES=off.",
    )


# -- commands ---------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    print(
        f"podium demo: research_brief on {_masked(args.db)} with the {_model(args)!r} model\n"
        f"policy: {_shown(default_policy_path())}; tools are default deny (each agent calls "
        "only what the policy allows it), and publish_report waits for an editor",
        file=sys.stderr,
    )
    return _run_workflow("research_brief", args.goal, args)


def _shown(path: os.PathLike[str]) -> str:
    """A path relative to the working directory when below it (shorter to read)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive
        return str(path)
    return str(path) if relative.startswith("..") else relative


def cmd_run(args: argparse.Namespace) -> int:
    return _run_workflow(args.workflow, args.goal, args)


def cmd_resume(args: argparse.Namespace) -> int:
    with runtime(args) as rt:
        info = rt.threads.get(args.thread, tenant_id=args.tenant)
        app = compile_workflow(rt, info.workflow, _model(args))
        snapshot = app.get_state(config_of(args.thread))
        # A run cut off mid-step may show no next node while its tasks are still pending.
        if not snapshot.next and not snapshot.tasks:
            shown = hint("show", args.thread, db=args.db, tenant=args.tenant)
            print(
                f"thread {args.thread!r} has nothing left to run (status {info.status}); "
                f"see `{shown}`",
                file=sys.stderr,
            )
            return EXIT_OK
        print(f"resuming {args.thread} ({info.workflow}) from its last checkpoint", file=sys.stderr)
        context = caller(args)
        gates = GateMode.choose(args.approve_all, args.no_input)
        waiting = bool(pending_gates(app, args.thread))
        return execute(rt, app, None, args.thread, context, gates=gates, at_gates=waiting)


def cmd_threads(args: argparse.Namespace) -> int:
    with runtime(args) as rt:
        threads = rt.threads.list(tenant_id=args.tenant, limit=args.limit)
        gated = Counter(r.thread_id for r in open_gates(rt, args.tenant) if r.thread_id)
    if not threads:
        print(f"no threads for tenant {args.tenant!r} in {_masked(args.db)}")
        return EXIT_OK
    now = time.time()
    rows = [
        [
            t.thread_id,
            t.workflow,
            thread_status(t.status, gated[t.thread_id]),
            render.age(now - t.updated_at),
            _clip(t.title, 50),
        ]
        for t in threads
    ]
    print(render.table(["thread", "workflow", "status", "updated", "title"], rows))
    waiting = sum(1 for t in threads if gated[t.thread_id])
    if waiting:
        inbox = hint("approvals", db=args.db, tenant=args.tenant)
        shown = hint("show", "THREAD", db=args.db, tenant=args.tenant)
        print(f"\n{waiting} waiting at a gate: see `{inbox}` or `{shown}`")
    return EXIT_OK


def thread_status(stored: str, open_gates: int) -> str:
    """The status to show: a thread with open gates is `waiting` (the index says so once a
    gate stops its run; a thread indexed before that was recorded may still say `running`)."""
    if open_gates and stored not in RUN_FINISHED:
        return RunStatus.WAITING.value if open_gates == 1 else f"waiting ({open_gates} gates)"
    return stored


def cmd_show(args: argparse.Namespace) -> int:
    with runtime(args) as rt:
        info = rt.threads.get(args.thread, tenant_id=args.tenant)
        app = compile_workflow(rt, info.workflow, None)
        snapshot = app.get_state(config_of(args.thread))
        gates = pending_gates(app, args.thread) if snapshot.values else []
        ledger = rt.services.ledger
        usage = ledger.for_thread(args.thread, args.tenant)
        values = snapshot.values
        spent = task_tokens(ledger, args.thread, args.tenant, values)
    status = thread_status(values.get("status", info.status), len(gates))
    print(
        f"thread {info.thread_id}  workflow {info.workflow}  tenant {info.tenant_id}  "
        f"status {status}  round {values.get('round', 0)}"
    )
    print(f"goal: {values.get('goal', '')}")
    for gate in gates:
        request = gate.request
        where = f" (task {request.task_id}, {request.agent})" if request.task_id else ""
        what = "waiting (effect in doubt)" if request.kind == "effect" else "waiting"
        print(f"{what} at gate {request.gate_id}{where}: {describe(gate)}")
        print(f"  may decide: {', '.join(request.roles) or 'anyone'}")
        print(f"  decide with: {decide_command(args.thread, gate, db=args.db, tenant=args.tenant)}")
    if snapshot.next and not gates:
        again = hint("resume", args.thread, db=args.db, tenant=args.tenant)
        print(f"stopped before: {', '.join(snapshot.next)}  (continue: {again})")
    print()
    print(render.task_table(values, gates, spent) if values.get("tasks") else "no tasks yet")
    if values.get("error"):
        print(f"\nerror: {values['error']}")
    for task_id, result in (values.get("results") or {}).items():
        print(f"\n--- result {task_id} ({result['agent']}) ---\n{result['summary']}")
    if values.get("answer"):
        print(f"\n=== answer ===\n{values['answer']}")
    if usage:
        print(f"\n{usage_table(usage)}")
    return EXIT_OK


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def cmd_workflows(args: argparse.Namespace) -> int:
    known = catalog(os.environ.get("PODIUM_WORKFLOWS"))
    rows = [[name, describe_workflow(factory)] for name, factory in sorted(known.items())]
    print(render.table(["workflow", "description"], rows))
    return EXIT_OK


# -- running ----------------------------------------------------------------------------


def _run_workflow(name: str, goal: str, args: argparse.Namespace) -> int:
    thread_id = args.thread or f"{name}-{uuid.uuid4().hex[:8]}"
    context = caller(args)
    with runtime(args) as rt:
        app = compile_workflow(rt, name, _model(args))
        return execute(
            rt,
            app,
            {"goal": goal},
            thread_id,
            context,
            quiet=args.quiet,
            gates=GateMode.choose(args.approve_all, args.no_input),
        )


def _model(args: argparse.Namespace) -> str:
    return args.model or os.environ.get("PODIUM_MODEL") or "demo"


def _masked(url: str) -> str:
    from podium.storage.urls import mask

    return mask(url)


if __name__ == "__main__":
    raise SystemExit(main())
