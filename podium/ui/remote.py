"""The app against a LangGraph server: the `Workbench` interface over `langgraph-sdk`.

`RemoteWorkbench` does what the embedded `Workbench` does, through the server's API:

    threads        threads.create (a UUID, the workflow and title in metadata),
                   threads.search (the server filters by the credential's tenant)
    runs           runs.stream(stream_mode="custom", stream_subgraphs=True): podium's
                   progress events, gates raised inside worker subgraphs included
    gates          threads.get_state -> interrupts; a decision resumes the run with
                   command={"resume": {interrupt_id: decision}}
    costs, audit   podium's routes on the server (`podium.server.insight`)
    graph          assistants.get_graph, drawn as Mermaid locally

Who the user is (tenant, user, roles) comes from the credential (`PODIUM_API_KEY` or
`PODIUM_SERVER_TOKEN`), never from the page: the server decides, and refuses a gate
decision by a user without the gate's role. The model is the server's (`PODIUM_MODEL`
there). Failures become readable messages: an unreachable server, a refused
credential, a busy thread, a run that stopped.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

import httpx
from langchain_core.messages import convert_to_messages
from langchain_core.runnables.graph import Edge, Graph, Node
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import APIStatusError, LangGraphError

from podium import errors
from podium.context import RunContext
from podium.decisions import PendingGate
from podium.errors import PodiumError, ThreadNotFound
from podium.gates import Decision, GateRequest, fits
from podium.runtime._audit_types import ChainReport, Head, Problem, VerifyReport
from podium.runtime.ledger import CostRow
from podium.runtime.threads import ThreadInfo
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
    """Who the credential names on the server."""

    tenant_id: str
    user_id: str
    roles: tuple[str, ...]

    @property
    def context(self) -> RunContext:
        return RunContext(
            tenant_id=self.tenant_id, user_id=self.user_id, roles=frozenset(self.roles)
        )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An audit event as the server's audit route returns it (what the timeline shows)."""

    seq: int
    at: float
    kind: str
    actor: str
    task_id: str | None
    payload: dict[str, Any]


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
        self.identity = Identity(me["tenant_id"], me["identity"], tuple(me.get("roles") or ()))

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
        if isinstance(exc, APIStatusError | httpx.HTTPStatusError) and exc.response is not None:
            status, detail = exc.response.status_code, _detail(exc.response)
            hint = {
                401: "the server refused the credential; set PODIUM_API_KEY (or "
                "PODIUM_SERVER_TOKEN) to one the server knows",
                403: "not allowed",
                404: "not found (or not your tenant's)",
                409: "the thread is busy with another run; wait for it to finish and retry",
            }.get(status, f"the server answered {status}")
            raise ServerError(f"cannot {what}: {hint}: {detail}") from None
        raise ServerError(
            f"cannot {what}: the LangGraph server at {self.url} is unreachable "
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
        return [self._info(t) for t in found]

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
        return self._info(thread)

    def _info(self, thread: Mapping[str, Any]) -> ThreadInfo:
        metadata = thread.get("metadata") or {}
        raw = thread.get("values")
        values: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        server_status = str(thread.get("status") or "idle")
        status = values.get("status") or _SERVER_STATUS.get(server_status, "new")
        if server_status == "error":
            status = "stopped"

        return ThreadInfo(
            thread_id=thread["thread_id"],
            tenant_id=str(metadata.get("tenant_id") or self.identity.tenant_id),
            workflow=str(metadata.get("workflow") or metadata.get("graph_id") or ""),
            title=str(metadata.get("title") or values.get("goal") or ""),
            status=status,
            created_at=_epoch(thread.get("created_at")),
            updated_at=_epoch(thread.get("updated_at")),
        )

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
            state = self._state(thread_id)
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
        payload = decision.model_dump(exclude_none=True)
        resume = {"resume": {gate.interrupt_id: payload}}
        return self._run(workflow, thread_id, on_event, command=resume)

    def _run(
        self, workflow: str, thread_id: str, on_event: EventHook | None, **kwargs: Any
    ) -> RunOutcome:
        error = None
        try:
            parts = self.client.runs.stream(
                thread_id, workflow, stream_mode="custom", stream_subgraphs=True, **kwargs
            )
            for part in parts:
                if part.event == "error":
                    error = _run_error(part.data, thread_id)
                elif _is_progress(part) and on_event is not None:
                    on_event(part.data)

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
        return _graph(drawn).draw_mermaid()


_SERVER_STATUS = {"busy": "running", "interrupted": "running", "idle": "new"}


def _gates(state: Mapping[str, Any]) -> list[PendingGate]:
    """The podium gates among a state's interrupts (as `podium.decisions.pending_gates`)."""
    gates = []
    for item in state.get("interrupts") or ():
        value = item.get("value")
        if isinstance(value, dict) and "gate_id" in value:
            fields = {k: v for k, v in value.items() if k != "note"}
            request = GateRequest.model_validate(fields)
            gates.append(PendingGate(item["id"], request, value.get("note")))
    return gates


def _is_progress(part: Any) -> bool:
    """A podium progress event (custom stream mode, from the graph or a subgraph)."""
    return part.event.startswith("custom") and isinstance(part.data, Mapping)


def _run_error(data: Any, thread_id: str) -> str:
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


def _detail(response: httpx.Response) -> str:
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


def _graph(drawn: Mapping[str, Any]) -> Graph:
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
