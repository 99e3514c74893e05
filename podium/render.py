"""Plain-text rendering of runs: progress lines, task tables and usage totals.

The `podium` command prints with these, and notebooks can too:

    from podium.render import Progress, task_table, usage_table

    for event in app.stream(inputs, config, context=ctx, stream_mode="custom"):
        Progress(sys.stdout)(event)
    print(task_table(app.get_state(config).values))
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from podium.lifecycle import SETTLED, TaskStatus
from podium.words import count

__all__ = ["Progress", "age", "count", "table", "task_rows", "task_table", "usage_table"]


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A left-aligned text table; None shows as "-", floats with two decimals."""
    cells = [[str(h) for h in headers], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return " ".join(str(value).split())


def task_rows(
    values: Mapping[str, Any],
    gates: Iterable[Any] = (),
    tokens: Mapping[str, int] | None = None,
) -> list[list[Any]]:
    """One row per task of the thread's latest round.

    Args:
        values: The thread's state values (`app.get_state(config).values`).
        gates: Its pending gates (`podium.pending_gates`): a task with an open
            gate shows as `waiting`, with what the gate asks in its note (the checkpoint
            still says where the task was before the gate).
        tokens: Tokens spent per task id, e.g. from the usage ledger, which counts every
            call as it is made; by default a task's tokens come from its result, so a task
            still running or waiting shows none.
    """
    tasks, results = values.get("tasks") or {}, values.get("results") or {}
    waiting = {g.request.task_id: g.request for g in gates if g.request.task_id}
    rows = []
    for task in tasks.values():
        start, end = task.get("started_at"), task.get("finished_at")
        elapsed = f"{end - start:.2f}s" if start and end else "-"
        spent = ((results.get(task["id"]) or {}).get("usage") or {}).get("total_tokens", 0)
        if tokens is not None:
            spent = tokens.get(task["id"], 0)
        status, note = task["status"], task.get("error") or ""
        if not note and status == TaskStatus.CANCELLED and task.get("history"):
            note = task["history"][-1].get("reason", "")
        if not note and task.get("model_fallbacks"):
            switch = task["model_fallbacks"][-1]
            note = f"model fallback: {switch['from']} -> {switch['to']}"
        request = waiting.get(task["id"])
        # A settled task is one a pending gate cannot change any more.
        if request is not None and status not in SETTLED:
            status, note = TaskStatus.WAITING.value, _gate_note(request)
        needs = ",".join(task["depends_on"])
        rows.append([task["id"], task["agent"], status, needs, elapsed, spent, _clip(note, 60)])
    return rows


def _gate_note(request: Any) -> str:
    if request.kind == "tool":
        return f"gate {request.gate_id}: approval of {request.tool}"
    if request.kind == "question":
        return f"gate {request.gate_id}: a question for a person"
    if request.kind == "effect":
        return f"gate {request.gate_id}: effect in doubt: did {request.tool} happen?"
    return f"gate {request.gate_id}: approval of the {request.kind}"


def _clip(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def task_table(
    values: Mapping[str, Any],
    gates: Iterable[Any] = (),
    tokens: Mapping[str, int] | None = None,
) -> str:
    """The task table (see `task_rows` for the arguments)."""
    return table(
        ["task", "agent", "status", "needs", "elapsed", "tokens", "note"],
        task_rows(values, gates, tokens),
    )


def usage_table(values: Mapping[str, Any]) -> str:
    """Calls, tokens and cost per agent from the state's `usage` (completed work), with a
    total row. `podium show` reads the usage ledger instead, which also counts calls of
    tasks still running or waiting at a gate."""
    usage = values.get("usage") or {}
    rows = [
        [
            agent,
            u["calls"],
            u["input_tokens"],
            u["output_tokens"],
            u["total_tokens"],
            f"{u['cost_usd']:.4f}",
        ]
        for agent, u in usage.items()
    ]
    total = {
        k: sum(u[k] for u in usage.values())
        for k in ("calls", "input_tokens", "output_tokens", "total_tokens", "cost_usd")
    }
    rows.append(
        [
            "total",
            total["calls"],
            total["input_tokens"],
            total["output_tokens"],
            total["total_tokens"],
            f"{total['cost_usd']:.4f}",
        ]
    )
    return table(["agent", "calls", "input", "output", "tokens", "cost_usd"], rows)


class Progress:
    """Prints one line per run event (plan made, task started/waiting/finished, run
    finished)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.start = time.monotonic()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        stamp = f"[{time.monotonic() - self.start:6.2f}s]"
        if kind == "plan":
            self._line(f"{stamp} plan: {count(len(event['tasks']), 'task')}")
            for task in event["tasks"]:
                needs = f" (after {', '.join(task['depends_on'])})" if task["depends_on"] else ""
                self._line(f"           {task['id']} {task['agent']}: {task['instruction']}{needs}")
        elif kind == "task_started":
            self._line(f"{stamp} {'started':<10}{event['task_id']} {event['agent']}")
        elif kind == "task_finished":
            self._line(f"{stamp} {event['status']:<10}{event['task_id']} {event['agent']}")
        elif kind == "task_waiting":
            reason = f": {event['reason']}" if event.get("reason") else ""
            waiting = TaskStatus.WAITING.value
            self._line(f"{stamp} {waiting:<10}{event['task_id']} {event['agent']}{reason}")
        elif kind == "retry":
            who = f"{event.get('task_id') or ''} {event.get('agent') or ''}".strip()
            self._line(
                f"{stamp} {'retry':<10}{who}: {event['what']} failed ({event['error_type']}: "
                f"{_clip(event['error'], 80)}); try {event['attempt'] + 1} in {event['wait']:.2f}s"
            )
        elif kind == "model_fallback":
            self._line(
                f"{stamp} {'fallback':<10}{event.get('task_id') or ''} {event.get('agent')}: "
                f"model {event['from']} is down, {event['to']} takes the call"
            )
        elif kind == "run_finished":
            self._line(f"{stamp} run {event['status']}")

    def _line(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def age(seconds: float) -> str:
    """ "12s ago", "5m ago", "3h ago", "2d ago"."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"
