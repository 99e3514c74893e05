"""podium's chat front end: `streamlit run app.py`.

Thin on purpose: it reads the environment, asks `podium.ui` what to show and draws it.
Runs use the embedded database (PODIUM_DATABASE_URL, default sqlite:///.podium/podium.db)
and the offline "demo" model (PODIUM_MODEL) unless told otherwise. With
PODIUM_SERVER_URL (and PODIUM_API_KEY, or PODIUM_SERVER_TOKEN: a JWT of the team's identity
provider) they run on that LangGraph server instead, through langgraph-sdk, as the user
the credential names.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from podium import ui

st.set_page_config(page_title="podium", page_icon=":material/hub:", layout="wide")

CONFIG = ui.config_from_env(os.environ)
TABS = ["Chat", "Costs & tokens", "Audit", "Graph"]
VERB_LABELS = {"approve": "Approve", "edit": "Edit", "reject": "Reject", "respond": "Send answer"}


@st.cache_resource(show_spinner="Opening the database…")
def workbench(cache_key: str, _config: ui.AppConfig) -> ui.AnyWorkbench:
    """One open runtime (or server client) per configuration, shared by every session."""
    return ui.open_workbench(_config, environ=os.environ)


#: Messages shown on this drawing of the page (Streamlit runs this script afresh each time).
SHOWN: set[str] = set()


@contextmanager
def shown_errors() -> Iterator[None]:
    """Show a failure of one part of the page as a message; the rest is still drawn. A
    message already shown (an unreachable database fails every part alike) is not repeated."""
    try:
        yield
    except Exception as exc:
        message = ui.describe_error(exc)
        if message not in SHOWN:
            SHOWN.add(message)
            st.error(message)


# -- sidebar ------------------------------------------------------------------------------


def sidebar_settings(
    session: ui.ChatSession, workflows: list[str], identity: Any
) -> tuple[ui.UserSettings, str]:
    if workflows and st.session_state.get("workflow") not in workflows:
        requested, problem = ui.choose_workflow(st.query_params.get("workflow"), workflows)
        st.session_state["workflow"] = requested
        if problem:
            session.notify("error", problem)
    with st.sidebar:
        st.title("podium")
        workflow = ""
        if workflows:
            workflow = st.selectbox(
                "Workflow", workflows, key="workflow", on_change=session.new_chat
            )
        st.button("New chat", icon=":material/add:", on_click=session.new_chat, width="stretch")
        with st.expander("Settings", expanded=identity is not None):
            if identity is not None:  # a server names the user: its credential decides
                roles_text = ", ".join(identity.roles) or "none"
                st.caption(
                    f"Signed in as `{identity.user_id}` of tenant `{identity.tenant_id}` "
                    f"(roles: {roles_text}). The model is the server's."
                )
                note = identity.credential_note(time.time())
                if note:
                    st.caption(note)
                st.caption(f"Server: `{CONFIG.masked_server_url}`")
                return ui.UserSettings.of(
                    identity.tenant_id,
                    identity.user_id,
                    identity.roles,
                    ui.SERVER_MODEL,
                    default_model=ui.SERVER_MODEL,
                ), workflow
            tenant = st.text_input("Tenant", value="default", key="tenant")
            user = st.text_input("User", value=ui.DEFAULT_USER, key="user")
            roles = st.multiselect(
                "Roles", ui.ROLE_CHOICES, default=list(ui.DEFAULT_ROLES), key="roles"
            )
            model = st.text_input("Model", value=CONFIG.model, key="model")
            st.caption(f"Database: `{CONFIG.masked_url}`")
    settings = ui.UserSettings.of(tenant, user, roles, model, default_model=CONFIG.model)
    return settings, workflow


def sidebar_threads(bench: ui.AnyWorkbench, session: ui.ChatSession, tenant: str) -> None:
    entries = ui.thread_entries(
        bench.threads(tenant), now=time.time(), waiting=bench.waiting_threads(tenant)
    )
    with st.sidebar:
        st.subheader("Threads")
        if not entries:
            st.caption(f"No threads yet for tenant `{tenant}`.")
        for entry in entries:
            st.button(
                entry.label,
                key=f"thread-{entry.thread_id}",
                help=f"{entry.thread_id} ({entry.workflow})",
                type="primary" if entry.thread_id == session.thread_id else "secondary",
                on_click=open_thread,
                args=(session, entry, tenant),
                width="stretch",
            )


def open_thread(session: ui.ChatSession, entry: ui.ThreadEntry, tenant: str) -> None:
    session.open_thread(entry.thread_id, entry.workflow, tenant)
    st.session_state["workflow"] = entry.workflow


# -- chat ---------------------------------------------------------------------------------


def send_prompt(session: ui.ChatSession) -> None:
    session.queue_send(st.session_state.get("prompt"))


def draw_messages(slot: Any, view: ui.ThreadView) -> None:
    with slot.container():
        for line in view.messages:
            with st.chat_message(line.role):
                st.markdown(line.markdown)


def run_action(
    bench: ui.AnyWorkbench,
    session: ui.ChatSession,
    settings: ui.UserSettings,
    workflow: str,
    view: ui.ThreadView,
    action: ui.Action,
) -> None:
    """Carry out a queued action, redrawing the live board on every run event."""
    live = st.empty()
    board = ui.LiveBoard(view.board)
    said = action.text if isinstance(action, ui.Send) else None

    def draw(event: Any = None) -> None:
        if event is not None:
            board.apply(event)
        with live.container():
            if said:
                with st.chat_message("user"):
                    st.markdown(said)
            with st.chat_message("assistant"):
                st.caption(board.headline())
                if board.rows():
                    st.dataframe(board.records(), hide_index=True)

    draw()
    writing = st.empty()
    ui.perform(bench, session, action, settings, workflow, on_event=streamed(draw, writing))
    live.empty()
    writing.empty()  # the thread is drawn from its checkpoint next: the stored answer


def streamed(draw_progress: Any, slot: Any) -> Any:
    """An event hook that shows the answer growing in `slot` (under the live board) as
    tokens arrive, and hands progress events to `draw_progress`."""
    answer = ui.LiveAnswer()

    def on_event(event: Any) -> None:
        changed = answer.apply(event)
        if not ui.is_token(event):
            draw_progress(event)
        elif changed and answer.writing.markdown:
            with slot.container(), st.chat_message("assistant"):
                st.markdown(answer.writing.markdown)

    return on_event


def draw_card(card: ui.GateCard, session: ui.ChatSession, settings: ui.UserSettings) -> None:
    gid = card.gate_id
    with st.container(border=True):
        st.markdown(f"**Approval needed:** {card.title}")
        roles = ", ".join(card.roles) or "anyone"
        st.caption(f"gate `{gid}` · rule `{card.rule or '-'}` · may decide: {roles}")
        if card.note:
            st.warning(f"The last decision did not pass: {card.note}")
        for name, text, language in card.fields:
            st.markdown(f"`{name}`")
            st.code(text, language=language, wrap_lines=True)
        if not card.fields and card.body_format == "json":
            st.code(card.body, language="json", wrap_lines=True)
        elif not card.fields:
            st.markdown(card.body)
        # Buttons for a decision the user may not take are shown, but disabled.
        locked = not card.allows(settings.roles)
        if locked:
            st.info(
                f"Your roles ({', '.join(settings.roles) or 'none'}) cannot decide this gate; "
                f"it needs one of: {roles}."
            )
        if card.kind == "question":
            st.text_input("Your answer", key=f"edit-text-{gid}")
        st.text_input("Comment (a rejection's comment goes back to the agent)", key=f"note-{gid}")
        columns = st.columns(len(card.verbs) + 2)
        for column, verb in zip(columns, card.verbs, strict=False):
            if verb == "edit":
                column.button(
                    "Edit",
                    key=f"edit-{gid}",
                    on_click=session.toggle_edit,
                    args=(gid,),
                    disabled=locked,
                )
            else:
                column.button(
                    VERB_LABELS[verb],
                    key=f"{verb}-{gid}",
                    type="primary" if verb in ("approve", "respond") else "secondary",
                    on_click=decide,
                    args=(session, card, verb),
                    disabled=locked,
                )
        if gid in session.editing and card.editable is not None:
            st.text_area(card.edit_label, value=card.editable, key=f"edit-text-{gid}", height=240)
            if gid in session.edit_errors:
                st.error(session.edit_errors[gid])
            st.button(
                "Submit edit",
                key=f"submit-{gid}",
                type="primary",
                on_click=decide,
                args=(session, card, "edit"),
                disabled=locked,
            )


def decide(session: ui.ChatSession, card: ui.GateCard, verb: str) -> None:
    text = st.session_state.get(f"edit-text-{card.gate_id}")
    comment = st.session_state.get(f"note-{card.gate_id}") or ""
    session.queue_decision(card, verb, comment=comment, text=text)


def chat_tab(
    bench: ui.AnyWorkbench,
    session: ui.ChatSession,
    settings: ui.UserSettings,
    workflow: str,
    view: ui.ThreadView,
) -> ui.ThreadView:
    conversation = st.empty()
    draw_messages(conversation, view)
    action = session.take_action()
    if action is not None:
        run_action(bench, session, settings, workflow, view, action)
        view = bench.view(workflow, session.thread_id)
        draw_messages(conversation, view)
    for notice in session.take_notices():
        getattr(st, notice.level)(notice.text)
    if view.outcome:
        st.warning(view.outcome)
    if view.stalled:
        st.info("This run stopped between steps; it can continue from its last checkpoint.")
        st.button("Continue the run", on_click=session.queue, args=(ui.Continue(),))
    if view.board:
        st.markdown("**Task board**")
        st.dataframe(ui.records(view.board), hide_index=True)
    for card in view.cards:
        draw_card(card, session, settings)
    if not view.messages and action is None:
        st.info(f"Type a goal below to start a **{workflow}** run.")
    return view


# -- insight tabs -------------------------------------------------------------------------


def costs_tab(bench: ui.AnyWorkbench, thread_id: str | None, tenant: str) -> None:
    rows = bench.costs(thread_id, tenant) if thread_id else []
    if not rows:
        st.info("Tokens and costs per agent appear here once the thread has run.")
        return
    st.bar_chart(ui.cost_chart(rows), x="agent", y=["input tokens", "output tokens"])
    st.dataframe(ui.cost_table(rows), hide_index=True)


def audit_tab(bench: ui.AnyWorkbench, thread_id: str | None, tenant: str) -> None:
    status = ui.chain_status(bench.verify(tenant), tenant)
    (st.success if status.ok else st.error)(status.text)
    events = bench.timeline(thread_id, tenant) if thread_id else []
    if events:
        st.dataframe(ui.timeline_rows(events), hide_index=True)
    else:
        st.caption("No audit events for this thread yet.")


def graph_tab(bench: ui.AnyWorkbench, workflow: str) -> None:
    mermaid = bench.mermaid(workflow)
    st.caption("The compiled workflow graph, drawn in the page from its Mermaid text.")
    st.markdown(ui.mermaid_block(mermaid))
    with st.expander("Mermaid source"):
        st.code(mermaid, language="text")


# -- page ---------------------------------------------------------------------------------


def page(
    bench: ui.AnyWorkbench, session: ui.ChatSession, settings: ui.UserSettings, workflow: str
) -> None:
    workflow = session.workflow or workflow
    header = st.empty()
    chat, costs, audit, graph = st.tabs(TABS)
    view = ui.ThreadView(session.thread_id)
    with chat, shown_errors():
        view = chat_tab(bench, session, settings, workflow, bench.view(workflow, session.thread_id))
    header.caption(
        f"workflow **{workflow}** · thread `{session.thread_id or 'new'}` · "
        f"model `{settings.model}` · tenant `{settings.tenant_id}` · user `{settings.user_id}`"
    )
    with shown_errors():
        link = ui.trace_link(
            CONFIG.langfuse_host,
            thread_id=session.thread_id,
            trace_id=bench.trace_id(session.thread_id),
            project_id=CONFIG.langfuse_project,
        )
        if link and session.thread_id:
            st.markdown(f"[Langfuse trace of this thread]({link})")
    with costs, shown_errors():
        costs_tab(bench, session.thread_id, settings.tenant_id)
    with audit, shown_errors():
        audit_tab(bench, session.thread_id, settings.tenant_id)
    with graph, shown_errors():
        graph_tab(bench, workflow)
    st.chat_input(
        "Decide the approval above first" if view.waiting else "Type a goal or a follow-up",
        key="prompt",
        on_submit=send_prompt,
        args=(session,),
        disabled=view.waiting,
    )
    if session.thread_id:
        st.query_params["thread"] = session.thread_id
    elif "thread" in st.query_params:
        del st.query_params["thread"]


def main() -> None:
    session = ui.session_of(st.session_state)
    try:
        bench, problem = workbench(CONFIG.cache_key, CONFIG), None
        workflows = bench.workflows()
    except Exception as exc:
        workflows, bench, problem = [], None, ui.describe_error(exc)
    identity = bench.identity if bench is not None else None
    if bench is not None:
        # A `?thread=` link opens its thread once, before the workflow picker is drawn.
        tenant = identity.tenant_id if identity else st.session_state.get("tenant") or "default"
        linked = ui.apply_link(bench, session, st.query_params, tenant)
        if linked in workflows:
            st.session_state["workflow"] = linked
    settings, workflow = sidebar_settings(session, workflows, identity)

    if bench is None:
        st.error(f"podium cannot start: {problem}")
        return
    session.follow_tenant(settings.tenant_id)
    with shown_errors():
        page(bench, session, settings, workflow)
    with shown_errors():
        sidebar_threads(bench, session, settings.tenant_id)


main()
