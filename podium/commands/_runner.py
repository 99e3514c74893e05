"""Running a workflow from the CLI: progress lines, gates, and the final report.

At a gate the runner asks at a terminal, approves everything with `--approve-all`, or
(no terminal, no flag) stops, prints the command that decides the gate, and succeeds:
the run waits in its checkpoint.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from podium import _render
from podium.commands._common import CLI_ROLES_ENV, cli_roles_enabled
from podium.commands._stream import AnswerPrinter, drain, stream_run
from podium.context import RunContext
from podium.errors import PodiumError
from podium.gates.decision import PendingGate, decide, pending_gates
from podium.gates.request import Decision
from podium.graphs.catalog import get_workflow
from podium.runtime import PodiumRuntime
from podium.streaming import STREAM_MODES, parts

#: Exit codes: done (or stopped at an approval gate, as asked); failed; waiting for an
#: operator to say whether a side effect happened (an effect gate).
EXIT_OK, EXIT_RUN_FAILED, EXIT_WAITING = 0, 1, 3


@dataclass(frozen=True, slots=True)
class GateMode:
    """How the CLI meets a gate: "ask" (a terminal), "approve" (unattended) or "stop"."""

    mode: str

    @classmethod
    def choose(cls, approve_all: bool, stdin: TextIO = sys.stdin) -> GateMode:
        if approve_all:
            return cls("approve")
        return cls("ask" if stdin.isatty() else "stop")


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
    progress = _render.Progress(sys.stderr)
    printer = AnswerPrinter(sys.stdout, live=sys.stdout.isatty() if stream is None else stream)
    while True:
        if not _drain(rt, events, thread_id, progress, quiet, printer):
            return EXIT_RUN_FAILED
        pending = pending_gates(app, thread_id)
        if not pending:
            return report(app, thread_id, printer)
        in_doubt = [g for g in pending if g.request.kind == "effect"]
        if in_doubt:
            # Never decided unattended: only an operator knows whether the effect happened.
            return _waiting_in_doubt(rt, thread_id, in_doubt)
        decisions = _decide(pending, gates, thread_id)
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
    printer: AnswerPrinter | None = None,
) -> bool:
    printer = printer or AnswerPrinter(sys.stdout, live=False)
    try:
        drain(parts(events), None if quiet else progress, printer)
    except PodiumError:
        raise
    except Exception as exc:
        rt.threads.set_status(thread_id, "stopped")
        print(
            f"podium: run stopped: {type(exc).__name__}: {exc}\n"
            f"The last checkpoint is kept; continue with `podium resume {thread_id}`.",
            file=sys.stderr,
        )
        return False
    return True


def _waiting_in_doubt(rt: PodiumRuntime, thread_id: str, gates: list[PendingGate]) -> int:
    rt.threads.set_status(thread_id, "waiting")
    for gate in gates:
        print(f"waiting: gate {gate.request.gate_id}: {describe(gate)}", file=sys.stderr)
        print(
            f"  decide with: podium effects resolve {thread_id} --gate {gate.request.gate_id} "
            "done|retry|abandon",
            file=sys.stderr,
        )
    return EXIT_WAITING


def _decider(context: RunContext, pending: list[PendingGate], gates: GateMode) -> RunContext:
    """Who decides: the CLI user, acting with the roles the gates ask for when the operator
    approves at the terminal or with --approve-all (they run the process, so they decide),
    unless PODIUM_CLI_ROLES=off: then only with the roles they hold, that is none."""
    if not cli_roles_enabled():
        return context
    roles = set(context.roles) | {r for g in pending for r in g.request.roles}
    return RunContext(tenant_id=context.tenant_id, user_id=context.user_id, roles=frozenset(roles))


def _decide(
    pending: list[PendingGate], gates: GateMode, thread_id: str
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
            roles = "".join(f" --role {r}" for r in gate.request.roles[:1])
            if roles and not cli_roles_enabled():
                print(
                    f"  it needs the role {gate.request.roles[0]!r} and {CLI_ROLES_ENV}=off: "
                    "decide it on the LangGraph server",
                    file=sys.stderr,
                )
                continue
            print(
                f"  decide with: podium approve {thread_id} --gate {gate.request.gate_id}"
                f"{roles}   (or reject / edit)",
                file=sys.stderr,
            )

        return None
    return {g.request.gate_id: _ask(g) for g in pending}


def _ask(gate: PendingGate) -> Decision:
    request = gate.request
    print(
        f"\n=== approval needed ({request.kind}) ===\n{describe(gate, full=True)}", file=sys.stderr
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


def describe(gate: PendingGate, *, full: bool = False) -> str:
    """What a gate asks, in one line (or in full)."""
    r = gate.request
    if r.kind == "tool":
        args = json.dumps(r.args, ensure_ascii=False)
        text = f"{r.agent} wants to call {r.tool}({args if full else args[:80]})"
    elif r.kind == "plan":
        text = f"plan of {len(r.plan or [])} tasks: " + "; ".join(
            f"{t['id']} {t['agent']}" for t in r.plan or []
        )
    elif r.kind == "answer":
        text = f"final answer: {(r.answer or '') if full else (r.answer or '')[:80]}"
    elif r.kind == "effect":
        args = json.dumps(r.args, ensure_ascii=False)
        text = f"in doubt: did {r.tool}({args if full else args[:60]}) happen? done/retry/abandon"
    else:
        text = f"{r.agent} asks: {r.question}"
    if r.roles:
        text += f"  [needs role: {', '.join(r.roles)}]"
    if gate.note:
        text += f"  (note: {gate.note})"
    return text


def report(app: Any, thread_id: str, printer: AnswerPrinter | None = None) -> int:
    values = app.get_state(config_of(thread_id)).values
    if tracer() is not None:
        usage = values.get("usage") or {}
        tracer().record_cost(
            thread_id=thread_id,
            usage=usage,
            cost_usd=sum(u.get("cost_usd", 0.0) for u in usage.values()),
        )

    if printer is None or not printer.finish(values.get("answer", "")):
        print(values.get("answer", ""))
    print()
    print(_render.task_table(values))
    print()
    print(_render.usage_table(values))
    return EXIT_OK if values.get("status") == "completed" else EXIT_RUN_FAILED
