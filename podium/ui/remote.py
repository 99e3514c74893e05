"""The app against a LangGraph server: the `Workbench` interface over `langgraph-sdk`.

`RemoteWorkbench` does what the embedded `Workbench` does, through the server's API:

    threads        threads.create (a UUID, the workflow and title in metadata),
                   threads.search (the server filters by the credential's tenant)
    runs           runs.stream(stream_mode=["custom", "messages-tuple"],
                   stream_subgraphs=True): podium's progress events, gates raised inside
                   worker subgraphs included, and the tokens of the tasks' model calls
    gates          threads.get_state -> interrupts; a decision resumes the run with
                   command={"resume": {interrupt_id: decision}}
    costs, audit   podium's routes on the server (`podium.server.insight`)
    graph          assistants.get_graph, drawn as Mermaid locally

Who the user is (tenant, user, roles) comes from the credential (`PODIUM_API_KEY`, or
`PODIUM_SERVER_TOKEN`: a JWT from the team's identity provider or a pdm1 token), never
from the page: the server decides (`GET /podium/me`), and refuses a gate
decision by a user without the gate's role. The model is the server's (`PODIUM_MODEL`
there). Failures become readable messages: an unreachable server, a refused
credential, a busy thread, a run that stopped.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx
from langchain_core.messages import convert_to_messages
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import APIStatusError, LangGraphError

import podium.errors as errors
from podium.context import RunContext
from podium.errors import PodiumError, ThreadNotFound
from podium.gates.decision import PendingGate, gates_of
from podium.gates.request import Decision, fits
from podium.storage.urls import mask
from podium.stores.audit.events import VerifyReport
from podium.stores.ledger import CostRow
from podium.stores.threads import ThreadInfo
from podium.streaming import SERVER_STREAM_MODES, server_part
from podium.ui._server_json import (
    AuditEntry,
    detail_of,
    drawable,
    run_error,
    thread_info,
    verify_report,
)
from podium.ui.settings import AppConfig
from podium.ui.view import ThreadView, thread_view
from podium.ui.workbench import EventHook, RunOutcome

#: Seconds to wait for the server to answer (a streamed run may take longer between
#: events: a model call).
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 600.0


class ServerError(PodiumError):
    """The LangGraph server could not be reached, or refused what was asked."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the credential names on the server (`GET /podium/me`).

    Attributes:
        tenant_id: The tenant.
        user_id: The user (a JWT's user claim, e.g. `sub`).
        roles: The user's roles.
        credential: "jwt", "api_key" or "token" (pdm1); empty when the server does not say.
        name: A name to show (a JWT's `name` or `email` claim).
        issuer: Who issued the credential (a JWT's `iss`).
        expires_at: When the credential expires (seconds since the epoch).
    """

    tenant_id: str
    user_id: str
    roles: tuple[str, ...]
    credential: str = ""
    name: str | None = None
    issuer: str | None = None
    expires_at: float | None = None

    @classmethod
    def of(cls, me: Mapping[str, Any]) -> Identity:
        """The identity of a `GET /podium/me` answer."""
        expires = me.get("expires_at")
        return cls(
            str(me["tenant_id"]),
            str(me["identity"]),
            tuple(str(r) for r in me.get("roles") or ()),
            credential=str(me.get("credential") or ""),
            name=me.get("name") or None,
            issuer=me.get("issuer") or None,
            expires_at=float(expires) if isinstance(expires, int | float) else None,
        )

    @property
    def context(self) -> RunContext:
        return RunContext(
            tenant_id=self.tenant_id, user_id=self.user_id, roles=frozenset(self.roles)
        )

    def credential_note(self, now: float) -> str | None:
        """One line on the credential, e.g. "Ana Lima · token of https://idp/ · expires
        in 59 min" (None when there is nothing to say beyond tenant, user and roles)."""
        parts = [self.name] if self.name else []
        if self.credential == "jwt":
            parts.append(f"token of {self.issuer}" if self.issuer else "identity-provider token")
        elif self.credential == "api_key":
            parts.append("API key")
        elif self.credential == "token":
            parts.append("pdm1 token")
        if self.expires_at is not None:
            left = self.expires_at - now
            parts.append(f"expires in {_duration(left)}" if left > 0 else "expired")
        return " · ".join(parts) or None


def new_server_thread_id(workflow: str) -> str:
    """A thread id the server accepts (it requires UUIDs)."""
    return str(uuid.uuid4())


class RemoteWorkbench:
    """The page's workbench on a LangGraph server.

    Args:
        config: `server_url` and the credential (`server_key` or `server_token`).
        client: A `langgraph_sdk` sync client to use instead of making one (tests).

    Raises:
        ServerError: the server is unreachable or refuses the credential.
    """

    remote = True
    new_thread_id = staticmethod(new_server_thread_id)

    def __init__(self, config: AppConfig, *, client: Any = None) -> None:
        if not config.server_url:
            raise ServerError("no server URL: set PODIUM_SERVER_URL (e.g. http://127.0.0.1:2024)")
        self.config = config
        self.url = config.server_url.rstrip("/")
        token = config.server_token
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self.client = client or get_sync_client(
            url=self.url,
            api_key=config.server_key,
            headers=headers,
            # (connect, read, write, pool)
            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT, CONNECT_TIMEOUT, CONNECT_TIMEOUT),
        )
        me = self._call("read who the credential names", self.client.http.get, "/podium/me")
        self.identity = Identity.of(me)

    def close(self) -> None:
        self.client.close()

    # -- errors ---------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (LangGraphError, httpx.HTTPError) as exc:
            self._fail(what, exc)

    def _fail(self, what: str, exc: BaseException) -> NoReturn:
        """Raise one readable `ServerError` for an SDK or HTTP failure."""
        if isinstance(exc, httpx.HTTPStatusError) and exc.response is not None:
            status, detail = exc.response.status_code, detail_of(exc.response)
            hint = {
                401: "the server refused the credential; set PODIUM_API_KEY (or "
                "PODIUM_SERVER_TOKEN) to one the server knows",
                503: "the server cannot check the credential now",
                403: "not allowed",
                404: "not found (or not your tenant's)",
                409: "the thread is busy with another run, or the gate was decided already",
            }.get(status, f"the server answered {status}")
            raise ServerError(f"cannot {what}: {hint}: {detail}") from None
        raise ServerError(
            f"cannot {what}: the LangGraph server at {mask(self.url)} is unreachable "
            f"({type(exc).__name__}: {exc}); start it (`langgraph dev`) or correct "
            "PODIUM_SERVER_URL"
        ) from None

    # -- workflows and threads ------------------------------------------------------------

    def workflows(self) -> list[str]:
        """The server's workflows (graph ids of its assistants)."""
        found = self._call("list the workflows", self.client.assistants.search, limit=100)
        return sorted({a["graph_id"] for a in found})

    def threads(self, tenant_id: str, *, limit: int = 30) -> list[ThreadInfo]:
        """The credential's threads (the server filters by its tenant), newest first."""
        found = self._call(
            "list the threads",
            self.client.threads.search,
            limit=limit,
            sort_by="updated_at",
            sort_order="desc",
        )
        return [thread_info(t, self.identity.tenant_id) for t in found]

    def waiting_threads(self, tenant_id: str) -> set[str]:
        found = self._call(
            "list the waiting threads",
            self.client.threads.search,
            status="interrupted",
            limit=100,
        )
        return {t["thread_id"] for t in found}

    def thread_info(self, thread_id: str, tenant_id: str) -> ThreadInfo:
        """One thread of the credential's tenant.

        Raises:
            ThreadNotFound: no such thread, or another tenant's (the server says 404).
        """
        try:
            thread = self.client.threads.get(thread_id)
        except APIStatusError as exc:
            if exc.response is not None and exc.response.status_code in (404, 422):
                raise ThreadNotFound(thread_id, tenant_id) from None
            self._fail(f"read thread {thread_id!r}", exc)
        except (LangGraphError, httpx.HTTPError) as exc:
            self._fail(f"read thread {thread_id!r}", exc)
        return thread_info(thread, self.identity.tenant_id)

    def _exists(self, thread_id: str) -> bool:
        """Whether the server has the thread (for the credential's tenant).

        Asked with `threads.get`, never read off `get_state`: some runtimes answer 200 with
        an empty state for a thread they do not have.
        """
        try:
            self.client.threads.get(thread_id)
        except APIStatusError as exc:
            if exc.response is not None and exc.response.status_code in (404, 422):
                return False
            self._fail(f"read thread {thread_id!r}", exc)
        except (LangGraphError, httpx.HTTPError) as exc:
            self._fail(f"read thread {thread_id!r}", exc)
        return True

    def _state(self, thread_id: str) -> Mapping[str, Any] | None:
        """The thread's state, or None for a thread the server does not have yet."""
        try:
            return self.client.threads.get_state(thread_id)
        except APIStatusError as exc:
            if exc.response is not None and exc.response.status_code == 404:
                return None
            self._fail(f"read thread {thread_id!r}", exc)
        except (LangGraphError, httpx.HTTPError) as exc:
            self._fail(f"read thread {thread_id!r}", exc)

    def view(self, workflow: str, thread_id: str | None) -> ThreadView:
        """The thread as the server's checkpoint has it."""
        state = self._state(thread_id) if thread_id else None
        if not state or not state.get("values"):
            return ThreadView(thread_id)
        values = dict(state["values"])
        values["messages"] = convert_to_messages(values.get("messages") or [])
        return thread_view(thread_id, values, _gates(state), tasks=state.get("tasks") or ())

    # -- running --------------------------------------------------------------------------

    def send(
        self,
        workflow: str,
        thread_id: str,
        text: str,
        context: RunContext,
        *,
        model: str | None = None,
        on_event: EventHook | None = None,
    ) -> RunOutcome:
        """Start a thread with `text` as its goal, or a new round of it (see `Workbench`).

        `context` and `model` are the server's to decide: the credential names the user,
        the server's PODIUM_MODEL the model.
        """
        try:
            state = self._state(thread_id) if self._exists(thread_id) else None
            if state is None:
                self._call(
                    "create the thread",
                    self.client.threads.create,
                    thread_id=thread_id,
                    if_exists="do_nothing",
                    metadata={"workflow": workflow, "title": text[:200]},
                )
            elif state.get("values") and _gates(state):
                return RunOutcome(
                    error="this thread is waiting for an approval; approve, edit or reject "
                    "it before sending another message",
                    waiting=True,
                )
            has_values = bool(state and state.get("values"))
            inputs = {"messages": [{"role": "user", "content": text}]} if has_values else None
            return self._run(workflow, thread_id, on_event, input=inputs or {"goal": text})
        except ServerError as exc:
            return RunOutcome(error=str(exc))

    def resume(
        self,
        workflow: str,
        thread_id: str,
        context: RunContext,
        *,
        model: str | None = None,
        on_event: EventHook | None = None,
    ) -> RunOutcome:
        """Continue a run that stopped between steps, from its last checkpoint."""
        return self._run(workflow, thread_id, on_event, input=None)

    def decide(
        self,
        workflow: str,
        thread_id: str,
        gate_id: str,
        decision: Decision,
        context: RunContext,
        *,
        model: str | None = None,
        on_event: EventHook | None = None,
    ) -> RunOutcome:
        """Decide one pending gate; the server checks the user's roles (403 otherwise)."""
        try:
            state = self._state(thread_id)
        except ServerError as exc:
            return RunOutcome(error=str(exc))
        pending = {g.request.gate_id: g for g in _gates(state or {})}
        gate = pending.get(gate_id)
        if gate is None:
            return RunOutcome(
                error=f"gate {gate_id!r} is not pending any more: it was decided already "
                "(another tab or user) or the run moved on; the page now shows the thread "
                "as it is",
                waiting=bool(pending),
            )
        problem = fits(decision, gate.request)
        if problem:
            return RunOutcome(error=f"decision refused: {problem}", waiting=True)
        payload = decision.model_copy(update={"gate_id": gate_id}).model_dump(exclude_none=True)
        resume = {"resume": {gate.interrupt_id: payload}}
        return self._run(workflow, thread_id, on_event, command=resume)

    def _run(
        self, workflow: str, thread_id: str, on_event: EventHook | None, **kwargs: Any
    ) -> RunOutcome:
        error = None
        try:
            parts = self.client.runs.stream(
                thread_id,
                workflow,
                stream_mode=SERVER_STREAM_MODES,
                stream_subgraphs=True,
                **kwargs,
            )
            for part in parts:
                if part.event == "error":
                    error = run_error(part.data)
                elif on_event is not None:
                    _deliver(part, on_event)

        except (LangGraphError, httpx.HTTPError) as exc:
            try:
                self._fail(f"run {workflow!r} on thread {thread_id!r}", exc)
            except ServerError as failed:
                error = str(failed)
        try:
            state = self._state(thread_id)
        except ServerError as exc:
            return RunOutcome(error=error or str(exc))
        values = (state or {}).get("values") or {}
        status = values.get("status") if values else None
        return RunOutcome(error=error, status=status, waiting=bool(_gates(state or {})))

    # -- insight --------------------------------------------------------------------------

    def trace_id(self, thread_id: str | None) -> str | None:
        """None: the server's traces are found by session (the thread id)."""
        return None

    def costs(self, thread_id: str, tenant_id: str) -> list[CostRow]:
        body = self._call(
            "read the costs", self.client.http.get, f"/podium/threads/{thread_id}/costs"
        )
        return [CostRow(**row) for row in body["rows"]]

    def timeline(self, thread_id: str, tenant_id: str) -> list[AuditEntry]:
        body = self._call(
            "read the audit timeline", self.client.http.get, f"/podium/threads/{thread_id}/audit"
        )
        return [AuditEntry(**event) for event in body["events"]]

    def verify(self, tenant_id: str) -> VerifyReport:
        body = self._call("verify the audit chain", self.client.http.get, "/podium/audit/verify")
        return verify_report(body)

    def mermaid(self, workflow: str) -> str:
        """The workflow's graph as the server compiled it, as Mermaid text."""
        found = self._call(
            "find the workflow", self.client.assistants.search, graph_id=workflow, limit=1
        )
        if not found:
            raise errors.UnknownWorkflowError(workflow, self.workflows())
        drawn = self._call(
            "read the workflow graph", self.client.assistants.get_graph, found[0]["assistant_id"]
        )
        return drawable(drawn).draw_mermaid()


def _duration(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _gates(state: Mapping[str, Any]) -> list[PendingGate]:
    """The podium gates among a server state's interrupts."""
    return gates_of((i["id"], i.get("value")) for i in state.get("interrupts") or ())


def _deliver(part: Any, on_event: EventHook) -> None:
    """Hand a podium progress event (custom stream mode, from the graph or a subgraph) or
    a task's token (messages-tuple mode) to `on_event`; other parts are ignored."""
    item = server_part(part.event, part.data)
    if item is not None:
        kind, data = item
        on_event(data if kind == "event" else data.event())
