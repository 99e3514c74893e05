"""What a LangGraph server's JSON becomes on the page: podium's own record types.

Threads (`threads.search` / `threads.get`) become `ThreadInfo`, the audit routes'
rows `AuditEntry` and a `VerifyReport`, a run's error event one readable message, and
`assistants.get_graph` a graph that draws as Mermaid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from langchain_core.runnables.graph import Edge, Graph, Node

import podium.errors as errors
from podium.errors import PodiumError
from podium.lifecycle import RunStatus
from podium.stores.audit.events import ChainReport, Head, Problem, VerifyReport
from podium.stores.threads import ThreadInfo


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An audit event as the server's audit route returns it (what the timeline shows)."""

    seq: int
    at: float
    kind: str
    actor: str
    task_id: str | None
    payload: dict[str, Any]


#: What a thread's server status reads as before its run wrote a status of its own.
_SERVER_STATUS = {
    "busy": RunStatus.RUNNING.value,
    "interrupted": RunStatus.RUNNING.value,
    "idle": "new",
}


def thread_info(thread: Mapping[str, Any], tenant_id: str) -> ThreadInfo:
    """A server thread as the sidebar lists it (`tenant_id` when its metadata has none)."""
    metadata = thread.get("metadata") or {}
    raw = thread.get("values")
    values: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    server_status = str(thread.get("status") or "idle")
    status = values.get("status") or _SERVER_STATUS.get(server_status, "new")
    if server_status == "error":
        status = "stopped"
    return ThreadInfo(
        thread_id=thread["thread_id"],
        tenant_id=str(metadata.get("tenant_id") or tenant_id),
        workflow=str(metadata.get("workflow") or metadata.get("graph_id") or ""),
        title=str(metadata.get("title") or values.get("goal") or ""),
        status=status,
        created_at=_epoch(thread.get("created_at")),
        updated_at=_epoch(thread.get("updated_at")),
    )


def verify_report(body: Mapping[str, Any]) -> VerifyReport:
    """The audit chain check the server's `/podium/audit/verify` returned."""
    return VerifyReport(
        tuple(
            ChainReport(
                tenant_id=c["tenant_id"],
                count=c["count"],
                head=Head(**c["head"]),
                problem=Problem(**c["problem"]) if c.get("problem") else None,
            )
            for c in body["chains"]
        )
    )


def run_error(data: Any) -> str:
    """A run's error event as a message: podium's own errors by their message."""
    data = data if isinstance(data, Mapping) else {"message": str(data)}
    name, message = str(data.get("error") or "Error"), str(data.get("message") or "")
    kind = getattr(errors, name, None)
    if isinstance(kind, type) and issubclass(kind, PodiumError):
        return message
    return (
        f"run stopped: {name}: {message}. The last checkpoint is kept: continue the run "
        "from the page"
    )


def detail_of(response: httpx.Response) -> str:
    """The `detail` of an error response, or its text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, Mapping) and "detail" in body:
        return str(body["detail"])
    return str(body)[:300]


def _epoch(stamp: Any) -> float:
    if not stamp:
        return 0.0
    return datetime.fromisoformat(str(stamp)).timestamp()


def drawable(drawn: Mapping[str, Any]) -> Graph:
    """A drawable graph from the server's JSON (`assistants.get_graph`)."""
    nodes = {
        n["id"]: Node(
            id=n["id"],
            name=(n.get("data") or {}).get("name", n["id"])
            if isinstance(n.get("data"), Mapping)
            else n["id"],
            data=None,
            metadata=n.get("metadata"),
        )
        for n in drawn.get("nodes") or ()
    }
    edges = [
        Edge(e["source"], e["target"], e.get("data"), bool(e.get("conditional")))
        for e in drawn.get("edges") or ()
    ]
    return Graph(nodes=nodes, edges=edges)
