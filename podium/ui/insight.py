"""The insight tabs: costs and tokens per agent, the audit timeline, the graph, the trace link.

Pure functions from podium's records (`CostRow`, `StoredEvent`, `VerifyReport`) to rows a
table or chart widget takes, so the page only draws.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from podium.words import count

_P_TAGS = re.compile(r"</?p>")
#: Payload keys worth a glance in the timeline, in the order they are shown.
_SUMMARY_KEYS = (
    "event",
    "status",
    "from",
    "to",
    "tool",
    "decision",
    "rule",
    "reason",
    "allowed",
    "model",
    "input_tokens",
    "output_tokens",
    "error",
)


def cost_chart(rows: Sequence[Any]) -> dict[str, list[Any]]:
    """Columns for a stacked bar chart of tokens per agent (`UsageLedger.for_thread` rows)."""
    return {
        "agent": [r.key for r in rows],
        "input tokens": [r.input_tokens for r in rows],
        "output tokens": [r.output_tokens for r in rows],
    }


def cost_table(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per agent plus a total: calls, tokens and cost in USD."""
    table = [
        {
            "agent": r.key,
            "calls": r.calls,
            "input tokens": r.input_tokens,
            "output tokens": r.output_tokens,
            "total tokens": r.total_tokens,
            "cost (USD)": round(r.cost_usd, 6),
        }
        for r in rows
    ]
    if table:
        total: dict[str, Any] = {"agent": "total"}
        for key in ("calls", "input tokens", "output tokens", "total tokens", "cost (USD)"):
            total[key] = sum(row[key] for row in table)
        total["cost (USD)"] = round(total["cost (USD)"], 6)
        table.append(total)
    return table


def timeline_rows(events: Iterable[Any], *, limit: int | None = None) -> list[dict[str, Any]]:
    """The audit timeline of a thread: time, kind, actor, task and a short summary."""
    rows = [
        {
            "seq": e.seq,
            "time": _clock_time(e.at),
            "kind": e.kind,
            "actor": str(e.actor),
            "task": e.task_id or "",
            "summary": summarize(e.payload),
        }
        for e in events
    ]
    return rows if limit is None else rows[-limit:]


def _clock_time(at: float) -> str:
    local = time.localtime(at)
    return time.strftime("%H:%M:%S", local) + f".{int((at % 1) * 1000):03d}"


def summarize(payload: Mapping[str, Any], width: int = 100) -> str:
    """A one-line digest of an audit payload (the keys a reader looks for first)."""
    parts = [f"{k}={_short(payload[k])}" for k in _SUMMARY_KEYS if k in payload]
    if not parts:
        parts = [f"{k}={_short(v)}" for k, v in list(payload.items())[:3]]
    text = " ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


def _short(value: Any) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= 40 else text[:39] + "…"


@dataclass(frozen=True, slots=True)
class ChainStatus:
    """The audit chain check of one tenant, as the page shows it."""

    ok: bool
    text: str


def chain_status(report: Any, tenant_id: str) -> ChainStatus:
    """What `AuditLog.verify(tenant)` found, in one sentence."""
    try:
        chain = report[tenant_id]
    except KeyError:
        return ChainStatus(True, f"no audit events yet for tenant {tenant_id!r}")
    if chain.ok:
        return ChainStatus(
            True,
            f"audit chain intact: {count(chain.count, 'event')} for tenant {tenant_id!r}, "
            f"head {chain.head.hash[:12]}… (seq {chain.head.seq})",
        )
    problem = chain.problem
    return ChainStatus(
        False,
        f"audit chain broken at seq {problem.seq} ({problem.kind}): {problem.detail}; "
        f"{count(chain.count, 'event')} verified before it",
    )


def mermaid_block(mermaid: str) -> str:
    """Markdown for a graph's Mermaid text (`get_graph().draw_mermaid()`): a fenced block,
    which Markdown renderers that know Mermaid (Streamlit's among them) draw in place.

    LangGraph wraps the start and end labels in `<p>` tags; renderers that escape HTML
    would show the tags, so they are dropped.
    """
    return f"```mermaid\n{_P_TAGS.sub('', mermaid).strip()}\n```"


def trace_link(
    host: str | None,
    *,
    thread_id: str | None,
    trace_id: str | None = None,
    project_id: str | None = None,
) -> str | None:
    """The Langfuse page of a thread's run, or None without a host.

    Langfuse redirects `/trace/<id>` to the trace in its project; a thread's runs form
    the session named by the thread id, reachable with the project id. Without either,
    the host itself (where the session can be searched by the thread id).
    """
    if not host:
        return None
    base = host.rstrip("/")
    if trace_id:
        return f"{base}/trace/{quote(trace_id, safe='')}"
    if project_id and thread_id:
        return f"{base}/project/{quote(project_id, safe='')}/sessions/{quote(thread_id, safe='')}"
    return base
