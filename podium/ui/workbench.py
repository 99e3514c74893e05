"""The app's side of podium: one open runtime, compiled workflows, runs that report events.

A `Workbench` holds a runtime open for the life of the process (the app caches one per
configuration), compiles each workflow once per model, and runs, resumes and decides
threads while handing every custom stream event and every model token to a callback, so
the page can redraw its board and show the answer as it is written. Failures come back
as a `RunOutcome` with a readable message, never as a traceback: podium's own errors by
their message, anything else as "run stopped" with the last checkpoint kept.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from podium.context import RunContext
from podium.errors import PodiumError
from podium.gates.decision import decide, pending_gates
from podium.gates.request import Decision
from podium.graphs.catalog import catalog, get_workflow
from podium.graphs.outage import DATABASE_UNAVAILABLE
from podium.lifecycle import RunStatus
from podium.runtime import open_runtime
from podium.streaming import STREAM_MODES, parts
from podium.tracing.tracer import Tracer, settings_from_env, tracing_config
from podium.ui.session import new_thread_id
from podium.ui.settings import DEFAULT_MODEL, AppConfig
from podium.ui.view import ThreadView, thread_view

#: Called with every progress event of a run, and with every token of its tasks' model
#: calls as a `{"event": "token", ...}` mapping (`podium.streaming.Token.event`).
EventHook = Callable[[Mapping[str, Any]], None]


def stream_run(app: Any, inputs: Any, config: Any, context: RunContext) -> Iterable[Any]:
    """A run's progress events and its tasks' tokens (`podium.streaming.STREAM_MODES`)."""
    stream: Iterator[Any] = app.stream(
        inputs, config, context=context, stream_mode=STREAM_MODES, subgraphs=True
    )
    return stream


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run (or a resume) went.

    Attributes:
        error: A readable message when it did not finish or wait at a gate as it should.
        status: The thread's status afterwards ("completed", "partial", "running"...).
        waiting: Gates are pending afterwards.
    """

    error: str | None = None
    status: str | None = None
    waiting: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def describe_error(exc: BaseException) -> str:
    """A one-line message for the page: podium's own message, or the type and text."""
    if isinstance(exc, PodiumError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def workflow_names(extra: str | None = None) -> list[str]:
    """The catalog's workflows, sorted (`extra` is PODIUM_WORKFLOWS)."""
    return sorted(catalog(extra))


def config_of(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


class Workbench:
    """One open runtime plus what the page needs from it.

    Args:
        config: Database, extra workflows, audit key, tracing.
        environ: Where Langfuse keys are read when `config.tracing` is set (entry points
            pass `os.environ`); ignored otherwise.
        **services: Overrides for the runtime's services (tests pass `clock`, `sleep`).

    Raises:
        DatabaseError: the URL is malformed or the database cannot be reached.
        ConfigurationError: Langfuse keys set but unusable.
    """

    #: Runs here, in this process (`RemoteWorkbench` runs on a LangGraph server).
    remote = False
    #: Who the user is comes from the page's settings (a server names it instead).
    identity = None
    new_thread_id = staticmethod(new_thread_id)

    def __init__(
        self, config: AppConfig, *, environ: Mapping[str, str] | None = None, **services: Any
    ) -> None:
        self.config = config
        self._stack = ExitStack()
        try:
            self.rt = self._stack.enter_context(
                open_runtime(
                    config.database_url,
                    audit_key=config.audit_key,
                    db_retry_for=config.db_retry_for,
                    **services,
                )
            )
            self.tracer = self._tracer(environ or {}) if config.tracing else None
        except BaseException:
            self._stack.close()
            raise
        self._apps: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        # The runtime stays open while the app caches this object; close it when dropped.
        self._closer = weakref.finalize(self, self._stack.close)

    def _tracer(self, environ: Mapping[str, str]) -> Tracer | None:
        settings = settings_from_env(environ)
        if settings is None:
            return None
        tracer = Tracer(settings)
        self._stack.callback(tracer.shutdown)
        return tracer

    def close(self) -> None:
        """Close the runtime (and flush traces). Idempotent."""
        self._closer()

    # -- workflows and threads ------------------------------------------------------------

    def workflows(self) -> list[str]:
        return workflow_names(self.config.workflows)

    def app(self, workflow: str, model: str | None = None) -> Any:
        """The compiled workflow for `model` (compiled once, then reused).

        Raises:
            UnknownWorkflowError: a name the catalog does not have.
            ConfigurationError: a factory that cannot load, an unknown model.
        """
        key = (workflow, model or DEFAULT_MODEL)
        with self._lock:
            if key not in self._apps:
                factory = get_workflow(workflow, self.config.workflows)
                self._apps[key] = self.rt.compile(factory(model=key[1]))
            return self._apps[key]

    def threads(self, tenant_id: str, *, limit: int = 30) -> list[Any]:
        """The tenant's threads, most recently updated first."""
        return self.rt.threads.list(tenant_id=tenant_id, limit=limit)

    def thread_info(self, thread_id: str, tenant_id: str) -> Any:
        """One thread of the tenant (`ThreadIndex.get`).

        Raises:
            ThreadNotFound: no such thread for the tenant.
        """
        return self.rt.threads.get(thread_id, tenant_id=tenant_id)

    def waiting_threads(self, tenant_id: str) -> set[str]:
        """Ids of the tenant's threads that have a gate open."""
        records, _ = self.rt.services.approvals.pending(tenant_id)
        return {r.thread_id for r in records if r.thread_id}

    def view(self, workflow: str, thread_id: str | None) -> ThreadView:
        """The thread as its checkpoint has it (read with the offline model: reading a
        thread never needs the model that ran it)."""
        if thread_id is None:
            return ThreadView(None)
        app = self.app(workflow, DEFAULT_MODEL)
        snapshot = app.get_state(config_of(thread_id))
        gates = pending_gates(app, thread_id) if snapshot.values else []
        return thread_view(thread_id, snapshot.values, gates, tasks=snapshot.tasks)

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
        """Start a thread with `text` as its goal, or start a new round of it.

        A thread waiting at a gate takes no new message: decide the gate first.
        """
        try:
            app = self._traced(self.app(workflow, model), workflow, thread_id, context)
            snapshot = app.get_state(config_of(thread_id))
            if snapshot.values and pending_gates(app, thread_id):
                return RunOutcome(
                    error="this thread is waiting for an approval; approve, edit or reject "
                    "it before sending another message",
                    waiting=True,
                )
            inputs = {"messages": [("user", text)]} if snapshot.values else {"goal": text}
            events = stream_run(app, inputs, config_of(thread_id), context)
        except Exception as exc:  # shown on the page, never as a traceback
            return RunOutcome(error=describe_error(exc))
        return self._follow(app, thread_id, events, on_event)

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
        try:
            app = self._traced(self.app(workflow, model), workflow, thread_id, context)
            events = stream_run(app, None, config_of(thread_id), context)
        except Exception as exc:
            return RunOutcome(error=describe_error(exc))
        return self._follow(app, thread_id, events, on_event)

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
        """Decide one pending gate and let the run continue in place.

        A refusal (missing role, a gate decided elsewhere, a decision of the wrong
        shape) resumes nothing and leaves the gate open.
        """
        try:
            app = self._traced(self.app(workflow, model), workflow, thread_id, context)
            events = decide(
                app,
                thread_id,
                decision,
                context=context,
                gate=gate_id,
                stream_mode=STREAM_MODES,
                subgraphs=True,
            )
        except Exception as exc:
            return RunOutcome(error=describe_error(exc))
        return self._follow(app, thread_id, events, on_event, reopen=gate_id)

    def _follow(
        self,
        app: Any,
        thread_id: str,
        events: Iterable[Any],
        on_event: EventHook | None,
        *,
        reopen: str | None = None,
    ) -> RunOutcome:
        error, unreachable = None, None
        try:
            for kind, data in parts(events):
                if kind == "event" and data.get("reason") == DATABASE_UNAVAILABLE:
                    unreachable = str(data.get("error"))
                if on_event is not None:
                    on_event(data if kind == "event" else data.event())
        except PodiumError as exc:
            error = str(exc)
        except Exception as exc:  # a model or tool crash: keep the checkpoint
            self.rt.threads.set_status(thread_id, "stopped")
            error = (
                f"run stopped: {describe_error(exc)}. The last checkpoint is kept: "
                "continue the run from the page, or with `podium resume "
                f"{thread_id}`"
            )
        if unreachable is not None:
            # The database is unreachable: the run ended `failed` where it was, and nothing
            # of the thread can be read to show more.
            return RunOutcome(error=f"the run failed: {unreachable}", status=RunStatus.FAILED.value)
        gates = pending_gates(app, thread_id)
        if error and reopen and any(g.request.gate_id == reopen for g in gates):
            # The decision never reached the gate: open it again for another decision.
            self.rt.services.approvals.unclaim(reopen)
        values = app.get_state(config_of(thread_id)).values
        status = values.get("status")
        if error is None and status == RunStatus.FAILED and values.get("error"):
            # A run that ended failed says why (a refused input, a budget, a bad plan).
            error = f"the run failed: {values['error']}"
        self._score(thread_id, app)
        return RunOutcome(error=error, status=status, waiting=bool(gates))

    # -- tracing --------------------------------------------------------------------------

    def _traced(self, app: Any, workflow: str, thread_id: str, context: RunContext) -> Any:
        if self.tracer is None:
            return app
        fragment = tracing_config(
            self.tracer,
            thread_id=thread_id,
            tenant_id=context.tenant_id,
            user_id=context.user_id,
            workflow=workflow,
        )
        return app.with_config(fragment)

    def _score(self, thread_id: str, app: Any) -> None:
        if self.tracer is None:
            return
        usage = app.get_state(config_of(thread_id)).values.get("usage") or {}
        cost = sum(float(u.get("cost_usd", 0.0)) for u in usage.values())
        self.tracer.record_cost(thread_id=thread_id, cost_usd=cost, usage=usage)

    def trace_id(self, thread_id: str | None) -> str | None:
        """The trace of the thread's latest run traced by this process, if any."""
        if self.tracer is None or thread_id is None:
            return None
        return self.tracer.trace_id(thread_id)

    # -- insight --------------------------------------------------------------------------

    def costs(self, thread_id: str, tenant_id: str) -> list[Any]:
        """Usage and cost per agent for one thread (`UsageLedger.for_thread`)."""
        return self.rt.services.ledger.for_thread(thread_id, tenant_id)

    def timeline(self, thread_id: str, tenant_id: str) -> list[Any]:
        """The thread's audit events in order."""
        return self.rt.services.audit.timeline(thread_id, tenant_id)

    def verify(self, tenant_id: str) -> Any:
        """The tenant's audit chain, recomputed."""
        return self.rt.services.audit.verify(tenant_id)

    def mermaid(self, workflow: str) -> str:
        """The workflow's graph as Mermaid text (drawn locally, no network)."""
        return str(self.app(workflow, DEFAULT_MODEL).get_graph().draw_mermaid())
