"""Running a workflow from the CLI: progress lines, gates, and the final report.

At a gate the runner asks at a terminal, approves everything with `--approve-all`, or
(no terminal, no flag) stops, prints the command that decides the gate, and succeeds:
the run waits in its checkpoint. Ctrl-D at the prompt decides nothing: the gate stays
open, the command that decides it is printed, and the exit code is 1. Printed commands
start the way podium was started (`podium`, or e.g. `.venv/bin/podium`), so they run
as printed.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, TextIO

import podium.render as render
from podium.commands._common import CLI_ROLES_ENV, cli_roles_enabled, hint
from podium.commands._stream import AnswerPrinter, drain, stream_run
from podium.context import DEFAULT_TENANT, RunContext
from podium.errors import PodiumError
from podium.gates.decision import PendingGate, decide, pending_gates
from podium.gates.request import Decision
from podium.graphs.catalog import get_workflow
from podium.graphs.outage import DATABASE_UNAVAILABLE
from podium.lifecycle import RunStatus
from podium.runtime import PodiumRuntime
from podium.stores.approvals import GateRecord
from podium.stores.ledger import CostRow
from podium.streaming import STREAM_MODES, parts

#: Exit codes: done (or stopped at an approval gate, as asked); failed; waiting for an
#: operator to say whether a side effect happened (an effect gate).
EXIT_OK, EXIT_RUN_FAILED, EXIT_WAITING = 0, 1, 3


@dataclass(frozen=True, slots=True)
class GateMode:
    """How the CLI meets a gate: "ask" (a terminal), "approve" (unattended) or "stop"."""

    mode: str

    @classmethod
    def choose(
        cls, approve_all: bool, no_input: bool = False, stdin: TextIO = sys.stdin
    ) -> GateMode:
        if approve_all:
            return cls("approve")
        return cls("ask" if stdin.isatty() and not no_input else "stop")


def open_gates(rt: PodiumRuntime, tenant: str) -> list[GateRecord]:
    """The tenant's open gates, oldest first. Gates found expired now are escalated (never
    approved), and each escalation is recorded as an audit event."""
    records, escalated = rt.services.approvals.pending(tenant)
    for record in escalated:
        rt.services.recorder.event(
            "escalation",
            "system:podium",
            {"gate_id": record.gate_id, "kind": record.kind, "expired_at": record.expires_at},
            tenant_id=record.tenant_id,
            workflow=record.workflow,
            thread_id=record.thread_id,
            hook="escalation",
        )
    rt.services.flush()
    for record in escalated:
        print(f"escalated: gate {record.gate_id} expired undecided; it stays open", file=sys.stderr)
    return records


def compile_workflow(rt: PodiumRuntime, workflow: str, model: str | None) -> Any:
    factory = get_workflow(workflow, os.environ.get("PODIUM_WORKFLOWS"))
    return rt.compile(factory(model=model))


def config_of(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


def execute(
    rt: PodiumRuntime,
    app: Any,
    inputs: Any,
    thread_id: str,
    context: RunContext,
    *,
    quiet: bool = False,
    gates: GateMode = GateMode("stop"),
    at_gates: bool = False,
    stream: bool | None = None,
) -> int:
    """Stream a run (or a resume), meet its gates, and print the outcome.

    With `at_gates` the thread is already waiting at gates: decide those first. The
    answer is printed as it streams when `stream` (default: when stdout is a terminal).
    """
    print(f"thread: {thread_id}", file=sys.stderr)
    config = {**config_of(thread_id), **traced(app, thread_id, context)}
    events: Any = () if at_gates else stream_run(app, inputs, config, context)
    return follow(rt, app, thread_id, context, events, quiet=quiet, gates=gates, stream=stream)


_tracer: Any = None


def tracer() -> Any:
    """The process's Langfuse tracer, when LANGFUSE_* is set (read here, an entry point)."""
    global _tracer
    if _tracer is None:
        from podium.tracing.tracer import Tracer, settings_from_env

        settings = settings_from_env(os.environ)
        _tracer = Tracer(settings) if settings else False
        if _tracer:
            atexit.register(_tracer.shutdown)
    return _tracer or None


def traced(app: Any, thread_id: str, context: RunContext) -> dict[str, Any]:
    """The config fragment that traces a run in Langfuse ({} when Langfuse is off)."""
    from podium.tracing.tracer import tracing_config

    agents = [n for n in app.nodes if n not in ("supervisor", "aggregate", "gate", "__start__")]
    return tracing_config(
        tracer(),
        thread_id=thread_id,
        tenant_id=context.tenant_id,
        user_id=context.user_id,
        workflow=app.name,
        agents=agents,
    )


def follow(
    rt: PodiumRuntime,
    app: Any,
    thread_id: str,
    context: RunContext,
    events: Any,
    *,
    quiet: bool = False,
    gates: GateMode = GateMode("stop"),
    stream: bool | None = None,
) -> int:
    """Print a run's events until it ends or waits at a gate that this CLI cannot decide."""
    progress = render.Progress(sys.stderr)
    printer = AnswerPrinter(sys.stdout, live=sys.stdout.isatty() if stream is None else stream)
    db = rt.url.raw
    while True:
        if not _drain(rt, events, thread_id, progress, quiet, context.tenant_id, printer):
            return EXIT_RUN_FAILED
        pending = pending_gates(app, thread_id)
        if not pending:
            return report(rt, app, thread_id, context.tenant_id, printer)
        in_doubt = [g for g in pending if g.request.kind == "effect"]
        if in_doubt:
            # Never decided unattended: only an operator knows whether the effect happened.
            return _waiting_in_doubt(rt, thread_id, in_doubt, tenant=context.tenant_id)
        try:
            decisions = _decide(pending, gates, thread_id, db=db, tenant=context.tenant_id)
        except EOFError:  # Ctrl-D (or a closed stdin) at the prompt: nothing is decided
            print(
                "\nno decision (end of input): the gate stays open and the run waits; "
                "decide it later with:",
                file=sys.stderr,
            )
            for gate in pending:
                print(
                    f"  {decide_command(thread_id, gate, db=db, tenant=context.tenant_id)}",
                    file=sys.stderr,
                )
            return EXIT_RUN_FAILED
        if decisions is None:
            return EXIT_OK
        decider = _decider(context, pending, gates)
        events = decide(
            app.with_config(traced(app, thread_id, decider)),
            thread_id,
            decisions,
            context=decider,
            stream_mode=STREAM_MODES,
            subgraphs=True,
        )


def _drain(
    rt: PodiumRuntime,
    events: Any,
    thread_id: str,
    progress: Any,
    quiet: bool,
    tenant: str,
    printer: AnswerPrinter | None = None,
) -> bool:
    printer = printer or AnswerPrinter(sys.stdout, live=False)
    try:
        finished = drain(parts(events), None if quiet else progress, printer)
    except PodiumError:
        raise
    except Exception as exc:
        rt.threads.set_status(thread_id, "stopped")
        again = hint("resume", thread_id, db=rt.url.raw, tenant=tenant)
        print(
            f"podium: run stopped: {type(exc).__name__}: {exc}\n"
            f"The last checkpoint is kept; continue with `{again}`.",
            file=sys.stderr,
        )
        return False
    if finished is not None and finished.get("reason") == DATABASE_UNAVAILABLE:
        # The database is unreachable: the run ended `failed` where it was, and nothing of
        # the thread can be read to report on it.
        printer.break_line()
        print(f"podium: run failed: {finished.get('error')}", file=sys.stderr)
        return False
    return True


def _waiting_in_doubt(
    rt: PodiumRuntime, thread_id: str, gates: list[PendingGate], *, tenant: str
) -> int:
    for gate in gates:
        print(f"waiting: gate {gate.request.gate_id}: {describe(gate)}", file=sys.stderr)
        command = decide_command(thread_id, gate, db=rt.url.raw, tenant=tenant)
        print(f"  decide with: {command}", file=sys.stderr)
    return EXIT_WAITING


def _decider(context: RunContext, pending: list[PendingGate], gates: GateMode) -> RunContext:
    """Who decides: the CLI user, acting with the roles the gates ask for when the operator
    approves at the terminal or with --approve-all (they run the process, so they decide),
    unless PODIUM_CLI_ROLES=off: then only with the roles they hold, that is none."""
    if not cli_roles_enabled():
        return context
    roles = set(context.roles) | {r for g in pending for r in g.request.roles}
    return RunContext(tenant_id=context.tenant_id, user_id=context.user_id, roles=frozenset(roles))


def decide_command(
    thread_id: str, gate: PendingGate, *, db: str | None = None, tenant: str = DEFAULT_TENANT
) -> str:
    """The command that decides `gate`, runnable as printed (with a role that may decide)."""
    request = gate.request
    if request.kind == "question":
        words = ["respond", thread_id, "--gate", request.gate_id, "YOUR ANSWER"]
        return hint(*words, db=db, tenant=tenant)
    if request.kind == "effect":  # only an operator knows whether the effect happened
        words = ["effects", "resolve", thread_id, "--gate", request.gate_id]
        return hint(*words, db=db, tenant=tenant) + " done|retry|abandon"
    words = ["approve", thread_id, "--gate", request.gate_id]
    if request.roles:
        words += ["--role", request.roles[0]]
    return hint(*words, db=db, tenant=tenant) + "   (or reject / edit)"


def _decide(
    pending: list[PendingGate], gates: GateMode, thread_id: str, *, db: str, tenant: str
) -> dict[str, Decision] | None:
    if gates.mode == "approve":
        for gate in pending:
            print(
                f"approving gate {gate.request.gate_id} ({describe(gate)}) [--approve-all]",
                file=sys.stderr,
            )
        return {g.request.gate_id: Decision(decision="approve") for g in pending}
    if gates.mode == "stop":
        for gate in pending:
            print(
                f"waiting for approval: gate {gate.request.gate_id}: {describe(gate)}",
                file=sys.stderr,
            )
            if gate.request.roles and not cli_roles_enabled():
                print(
                    f"  it needs the role {gate.request.roles[0]!r} and {CLI_ROLES_ENV}=off: "
                    "decide it on the LangGraph server",
                    file=sys.stderr,
                )
                continue
            print(
                f"  decide with: {decide_command(thread_id, gate, db=db, tenant=tenant)}",
                file=sys.stderr,
            )
        return None
    return {g.request.gate_id: _ask(g) for g in pending}


def _ask(gate: PendingGate) -> Decision:
    """Ask at the terminal. Raises EOFError when input ends (Ctrl-D) before a decision."""
    request = gate.request
    print(
        f"\n=== approval needed ({request.kind}) ===\n{describe(gate, full=True)}\n",
        file=sys.stderr,
    )
    if request.kind == "question":
        return Decision(decision="respond", response=input("your answer> ").strip() or "(none)")
    while True:
        choice = input("[a]pprove, [r]eject or [e]dit? ").strip().lower()[:1]
        if choice == "a":
            return Decision(decision="approve")
        if choice == "r":
            return Decision(decision="reject", comment=input("comment> ").strip())
        if choice == "e" and request.kind == "tool":
            try:
                return Decision(decision="edit", args=json.loads(input("arguments JSON> ")))
            except (ValueError, TypeError) as exc:
                print(f"not valid JSON arguments: {exc}", file=sys.stderr)
        elif choice == "e" and request.kind == "answer":
            return Decision(decision="edit", answer=input("new answer> "))


#: Characters of one argument value in a one-line gate summary.
ONE_LINE_VALUE = 64


def describe(gate: PendingGate, *, full: bool = False) -> str:
    """What a gate asks: in one line (long values clipped inside their quotes, with their
    length), or in full for a person to decide on (one argument per line, text as text)."""
    r = gate.request
    if r.kind == "tool":
        if full:
            text = f"{r.agent} wants to call {r.tool} with:\n{_args_block(r.args or {})}"
        else:
            shown = ", ".join(f"{k}={_short(v)}" for k, v in (r.args or {}).items())
            text = f"{r.agent} wants to call {r.tool}({shown})"
    elif r.kind == "plan":
        tasks = r.plan or []
        if full:
            text = f"plan of {render.count(len(tasks), 'task')}:\n" + "\n".join(
                f"  {t['id']} {t['agent']}: {t.get('instruction', '')}"
                + (f" (after {', '.join(t['depends_on'])})" if t.get("depends_on") else "")
                for t in tasks
            )
        else:
            text = f"plan of {render.count(len(tasks), 'task')}: " + "; ".join(
                f"{t['id']} {t['agent']}" for t in tasks
            )
    elif r.kind == "answer":
        answer = r.answer or ""
        text = f"final answer:\n{_indent(answer)}" if full else f"final answer: {_short(answer)}"
    elif r.kind == "effect":
        if full:
            text = f"in doubt: did {r.tool} happen? done/retry/abandon\n{_args_block(r.args or {})}"
        else:
            shown = ", ".join(f"{k}={_short(v)}" for k, v in (r.args or {}).items())
            text = f"in doubt: did {r.tool}({shown}) happen? done/retry/abandon"
    else:
        text = f"{r.agent} asks: {r.question}"
    if r.roles:
        text += (
            f"\nmay decide: {', '.join(r.roles)}"
            if full
            else f"  [needs role: {', '.join(r.roles)}]"
        )
    if gate.note:
        text += f"\nnote: {gate.note}" if full else f"  (note: {gate.note})"
    return text


def _short(value: Any) -> str:
    """One argument value for a one-line summary: a string quoted, clipped inside its quotes
    with its full length given; anything else as compact JSON, clipped the same way."""
    if isinstance(value, str):
        flat = " ".join(value.split())
        if len(flat) <= ONE_LINE_VALUE:
            return json.dumps(flat, ensure_ascii=False)
        clipped = json.dumps(flat[: ONE_LINE_VALUE - 1].rstrip() + "…", ensure_ascii=False)
        return f"{clipped} ({len(value)} chars)"
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= ONE_LINE_VALUE else text[: ONE_LINE_VALUE - 1] + "…"


def _args_block(args: dict[str, Any]) -> str:
    """Arguments one per line; multi-line text indented below its name, as it reads."""
    lines = []
    for name, value in args.items():
        if isinstance(value, str) and "\n" not in value:
            lines.append(f"  {name}: {value}")
        elif isinstance(value, str):
            lines.append(f"  {name}:\n{_indent(value, 4)}")
        else:
            text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
            lines.append(
                f"  {name}: {text}" if "\n" not in text else f"  {name}:\n{_indent(text, 4)}"
            )
    return "\n".join(lines) or "  (no arguments)"


def _indent(text: str, spaces: int = 2) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line.strip() else "" for line in text.rstrip().splitlines())


def report(
    rt: PodiumRuntime,
    app: Any,
    thread_id: str,
    tenant: str,
    printer: AnswerPrinter | None = None,
) -> int:
    """Print the answer, the task table and the usage table; 0 when the run completed.

    Usage comes from the ledger, which counts every model call as it is made (failed
    attempts included), so the tables agree with `podium costs`.
    """
    values = app.get_state(config_of(thread_id)).values
    if tracer() is not None:
        usage = values.get("usage") or {}
        tracer().record_cost(
            thread_id=thread_id,
            usage=usage,
            cost_usd=sum(u.get("cost_usd", 0.0) for u in usage.values()),
        )

    ledger = rt.services.ledger
    spent = task_tokens(ledger, thread_id, tenant, values)
    if printer is None or not printer.finish(values.get("answer", "")):
        print(values.get("answer", ""))
    print()
    print(render.task_table(values, tokens=spent))
    print()
    print(usage_table(ledger.for_thread(thread_id, tenant)))
    return EXIT_OK if values.get("status") == RunStatus.COMPLETED else EXIT_RUN_FAILED


def task_tokens(ledger: Any, thread_id: str, tenant: str, values: dict[str, Any]) -> dict[str, int]:
    """Tokens per task of the thread's latest round, from the ledger (calls of tasks still
    running or waiting at a gate included)."""
    planned = [
        t["history"][0]["at"] for t in (values.get("tasks") or {}).values() if t.get("history")
    ]
    if not planned:
        return {}
    rows = ledger.for_tasks(thread_id, tenant, since=min(planned))
    return {task_id: row.total_tokens for task_id, row in rows.items()}


def usage_table(rows: list[CostRow]) -> str:
    """Calls, tokens and cost per agent from the ledger, with a total row."""
    cells = [
        [r.key, r.calls, r.input_tokens, r.output_tokens, r.total_tokens, f"{r.cost_usd:.4f}"]
        for r in rows
    ]
    cells.append(
        [
            "total",
            sum(r.calls for r in rows),
            sum(r.input_tokens for r in rows),
            sum(r.output_tokens for r in rows),
            sum(r.total_tokens for r in rows),
            f"{sum(r.cost_usd for r in rows):.4f}",
        ]
    )
    return render.table(["agent", "calls", "input", "output", "tokens", "cost_usd"], cells)
