"""Carrying out what the page queued, and reading the page's link.

`perform` runs a queued action (`Send`, `Decide`, `Continue`) on the workbench and turns a
failure into a notice on the session. `choose_workflow` and `apply_link` read the
`?workflow=` and `?thread=` query parameters once per browser session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

from podium.errors import PodiumError, UnknownWorkflowError
from podium.ui.session import Action, ChatSession, Continue, Decide, Send
from podium.ui.settings import UserSettings
from podium.ui.workbench import EventHook, RunOutcome, Workbench

if TYPE_CHECKING:
    from podium.ui.remote import RemoteWorkbench

#: The embedded workbench or a LangGraph server's: the page uses either the same way.
AnyWorkbench = Union[Workbench, "RemoteWorkbench"]


PREFERRED_WORKFLOW = "research_brief"


def perform(
    bench: AnyWorkbench,
    session: ChatSession,
    action: Action,
    settings: UserSettings,
    workflow: str,
    *,
    on_event: EventHook | None = None,
) -> RunOutcome:
    """Run `action` on the session's thread (a `Send` opens one if none is open, and
    closes it again when the first run failed before storing anything).

    The outcome's error, if any, is also added to the session's notices.
    """
    context = settings.context
    if isinstance(action, Send):
        new = session.thread_id is None
        thread = session.ensure_thread(workflow, settings.tenant_id, bench.new_thread_id)
        outcome = bench.send(
            workflow, thread, action.text, context, model=settings.model, on_event=on_event
        )
        if new and outcome.error and outcome.status is None:
            session.new_chat()  # nothing was stored: the next message starts afresh
    elif session.thread_id is None:
        outcome = RunOutcome(error="no thread is open; type a goal to start one")
    elif isinstance(action, Decide):
        outcome = bench.decide(
            workflow,
            session.thread_id,
            action.gate_id,
            action.decision,
            context,
            model=settings.model,
            on_event=on_event,
        )
        if outcome.ok:
            session.decided(action.gate_id)
    elif isinstance(action, Continue):
        outcome = bench.resume(
            workflow, session.thread_id, context, model=settings.model, on_event=on_event
        )
    else:  # pragma: no cover - Action is a closed union
        raise TypeError(f"unknown action {action!r}")
    if outcome.error:
        session.notify("error", outcome.error)
    return outcome


def choose_workflow(requested: str | None, known: Sequence[str]) -> tuple[str | None, str | None]:
    """The workflow to preselect, and an error message when `requested` is unknown.

    Falls back to research_brief (or the first known workflow) when nothing valid is asked.
    """
    fallback = PREFERRED_WORKFLOW if PREFERRED_WORKFLOW in known else (known[0] if known else None)
    if not requested:
        return fallback, None
    if requested in known:
        return requested, None
    return fallback, str(UnknownWorkflowError(requested, known))


def apply_link(
    bench: AnyWorkbench, session: ChatSession, params: Mapping[str, Any], tenant_id: str
) -> str | None:
    """Open the thread a `?thread=ID` link names (once per session).

    Returns the workflow to preselect (the thread's), or None. A thread the tenant does
    not have becomes an error notice.
    """
    if session.links_read:
        return None
    session.links_read = True
    thread_id = params.get("thread")
    if not thread_id:
        return None
    try:
        info = bench.thread_info(str(thread_id), tenant_id)

    except PodiumError as exc:
        session.notify("error", str(exc))
        return None
    session.open_thread(info.thread_id, info.workflow, tenant_id)
    return info.workflow
