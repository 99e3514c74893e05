"""Plain-text rendering of runs for the CLI: progress lines, task tables, usage totals."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A left-aligned text table."""
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


def task_rows(values: dict[str, Any]) -> list[list[Any]]:
    tasks, results = values.get("tasks") or {}, values.get("results") or {}
    rows = []
    for task in tasks.values():
        start, end = task.get("started_at"), task.get("finished_at")
        elapsed = f"{end - start:.2f}s" if start and end else "-"
        usage = (results.get(task["id"]) or {}).get("usage") or {}
        note = task.get("error") or ""
        if not note and task["status"] == "cancelled" and task.get("history"):
            note = task["history"][-1].get("reason", "")
        if not note and task.get("model_fallbacks"):
            switch = task["model_fallbacks"][-1]
            note = f"model fallback: {switch['from']} -> {switch['to']}"
        rows.append(
            [
                task["id"],
                task["agent"],
                task["status"],
                ",".join(task["depends_on"]),
                elapsed,
                usage.get("total_tokens", 0),
                note[:60],
            ]
        )
    return rows


def task_table(values: dict[str, Any]) -> str:
    return table(
        ["task", "agent", "status", "needs", "elapsed", "tokens", "note"], task_rows(values)
    )


def usage_table(values: dict[str, Any]) -> str:
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
    """Prints one line per run event (plan made, task started/finished, run finished)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.start = time.monotonic()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        stamp = f"[{time.monotonic() - self.start:6.2f}s]"
        if kind == "plan":
            self._line(f"{stamp} plan: {len(event['tasks'])} tasks")
            for task in event["tasks"]:
                needs = f" (after {', '.join(task['depends_on'])})" if task["depends_on"] else ""
                self._line(f"           {task['id']} {task['agent']}: {task['instruction']}{needs}")
        elif kind == "task_started":
            self._line(f"{stamp} {'started':<10}{event['task_id']} {event['agent']}")
        elif kind == "task_finished":
            self._line(f"{stamp} {event['status']:<10}{event['task_id']} {event['agent']}")
        elif kind == "run_finished":
            self._line(f"{stamp} run {event['status']}")

    def _line(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"
