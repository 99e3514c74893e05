"""Audit records written by the graph's nodes (the governor writes those of calls)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig

from podium.governance.binding import bound


def record(
    config: RunnableConfig,
    kind: str,
    payload: Mapping[str, Any],
    *,
    task_id: str | None = None,
    actor: str | None = None,
    hook: str | None = None,
) -> None:
    """Buffer an audit event for the scope carried by `config` (written at the step's end)."""
    scope = bound(config).scope
    if scope is None:
        return
    bound(config).services.recorder.scope_event(
        scope,
        kind,
        payload,
        actor=actor,
        task_id=task_id,
        checkpoint_id=((config.get("configurable") or {}).get("checkpoint_map") or {}).get(""),
        hook=hook,
    )


def record_transitions(
    config: RunnableConfig,
    before: Mapping[str, Mapping[str, Any]],
    after: Mapping[str, Mapping[str, Any]],
) -> None:
    """One `transition` event (and hook call) per history entry added between two tables."""
    for task_id, task in after.items():
        if task_id.startswith("__"):
            continue
        known = len((before.get(task_id) or {}).get("history") or ())
        for entry in (task.get("history") or ())[known:]:
            payload = {"agent": task["agent"], "from": entry["from"], "to": entry["to"]}
            if entry.get("reason"):
                payload["reason"] = entry["reason"]
            record(
                config,
                "transition",
                payload,
                task_id=task_id,
                actor="system:podium",
                hook="transition",
            )


def set_thread_status(config: RunnableConfig, status: str) -> None:
    """Update the thread index (root graph only; nested workflows share the thread)."""
    configurable = config.get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is not None and "|" not in configurable.get("checkpoint_ns", ""):
        bound(config).services.threads.set_status(str(thread_id), status)
