"""Langfuse tracing: one trace per run, the thread as its session, podium's cost as a score.

Entry points read `settings_from_env(os.environ)`; when it returns settings they make one
`Tracer` per process and merge `tracing_config(tracer, ...)` into each run's config.
Without settings, `tracing_config(None, ...)` is `{}`: langfuse is not imported, no client
exists and nothing is sent.

A run's trace (Langfuse SDK v3+, OpenTelemetry underneath):

    <workflow>                 session = thread id, user = tenant/user, tags
      supervisor -> generation model name and token usage, so Langfuse prices it
      task t1 (researcher) -> generation, search_corpus  (the worker graph folded in)

A run stopped by a human gate and resumed in the same process continues in its trace.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from podium.errors import ConfigurationError
from podium.tracing.masking import redact_spans
from podium.tracing.runs import Link as _Link

if TYPE_CHECKING:
    from langchain_core.outputs import LLMResult

log = logging.getLogger("podium.tracing")

DEFAULT_HOST = "https://cloud.langfuse.com"
#: Name of the score that carries podium's own cost figure (USD) on a trace.
COST_SCORE = "podium_cost_usd"
#: Threads remembered (latest trace, run waiting at a gate); the oldest are forgotten.
_REMEMBERED = 4096


@dataclass(frozen=True, slots=True)
class LangfuseSettings:
    """Where traces go. Entry points build it with `settings_from_env`."""

    public_key: str
    secret_key: str = field(repr=False)
    host: str = DEFAULT_HOST


def settings_from_env(environ: Mapping[str, str]) -> LangfuseSettings | None:
    """Settings from LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY and LANGFUSE_HOST.

    Returns None (tracing off) when neither key is set.

    Raises:
        ConfigurationError: one key without the other, or a host that is not a URL.
    """
    public = (environ.get("LANGFUSE_PUBLIC_KEY") or "").strip()
    secret = (environ.get("LANGFUSE_SECRET_KEY") or "").strip()
    if not public and not secret:
        return None
    if not public or not secret:
        have, lack = (
            ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY")
            if public
            else ("LANGFUSE_SECRET_KEY", "LANGFUSE_PUBLIC_KEY")
        )
        raise ConfigurationError(
            f"{have} is set but {lack} is not; set both to trace runs to Langfuse, "
            "or neither to turn tracing off"
        )
    host = environ.get("LANGFUSE_HOST") or environ.get("LANGFUSE_BASE_URL") or DEFAULT_HOST
    host = host.strip().rstrip("/")
    if not host.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"LANGFUSE_HOST {host!r} is not an http(s) URL; use e.g. {DEFAULT_HOST!r}"
        )
    return LangfuseSettings(public, secret, host)


@dataclass(frozen=True, slots=True)
class _RunIds:
    """Who and what a traced run is: it becomes the trace's session, user and tags."""

    thread_id: str
    tenant_id: str
    user_id: str | None
    workflow: str
    agents: tuple[str, ...]

    @property
    def langfuse_user(self) -> str:
        return f"{self.tenant_id}/{self.user_id}" if self.user_id else self.tenant_id

    @property
    def tags(self) -> list[str]:
        return [f"workflow:{self.workflow}", *(f"agent:{a}" for a in self.agents)]

    def metadata(self) -> dict[str, Any]:
        """Config metadata: Langfuse's trace keys plus podium's identifiers."""
        return {
            "langfuse_session_id": self.thread_id,
            "langfuse_user_id": self.langfuse_user,
            "langfuse_tags": self.tags,
            "podium_tenant_id": self.tenant_id,
            "podium_workflow": self.workflow,
        }


class Tracer:
    """Sends runs to Langfuse. Make one per process; it owns one Langfuse client.

    Spans are exported in batches by a background thread (`flush()` forces it; entry
    points call it before a short-lived process exits, never per request).

    Raises:
        ConfigurationError: langfuse is not installed.

    Args:
        settings: Keys and host (see `settings_from_env`).
        redact_pii: Replace e-mail addresses, phone numbers and card numbers in every
            exported span attribute before it leaves the process.
        flush_interval: Seconds between background exports (None: the SDK's default).
        prices: The price table generations are priced with (`cost_details`), e.g. a
            policy's `price_table`; None for podium's own.
    """

    def __init__(
        self,
        settings: LangfuseSettings,
        *,
        redact_pii: bool = True,
        flush_interval: float | None = None,
        prices: Mapping[str, Any] | None = None,
    ) -> None:
        try:
            from langfuse import Langfuse
            from opentelemetry.sdk.trace import TracerProvider
        except ImportError as exc:
            raise ConfigurationError(
                f"Langfuse tracing needs the langfuse package ({exc}); "
                "install it with: pip install 'langfuse>=5.0.4'"
            ) from exc

        self.settings = settings
        self.prices = prices
        # An own provider: podium's spans never mix with the application's global one,
        # and shutdown() can stop its export thread.
        self._provider = TracerProvider()
        self._client = Langfuse(
            public_key=settings.public_key,
            secret_key=settings.secret_key,
            base_url=settings.host,
            tracer_provider=self._provider,
            mask_otel_spans=redact_spans if redact_pii else None,
            flush_interval=flush_interval,
        )
        self._lock = threading.Lock()
        self._latest: OrderedDict[str, str] = OrderedDict()
        self._waiting: OrderedDict[str, _Link] = OrderedDict()
        self._closed = False

    def callbacks(
        self,
        *,
        thread_id: str,
        tenant_id: str,
        user_id: str | None = None,
        workflow: str,
        agents: Sequence[str] = (),
    ) -> list[Any]:
        """The callback handler for one invocation (`invoke`, `stream`, or a gate's resume).

        Use a fresh list per invocation. The handler itself sets the trace's session,
        user and tags, so these callbacks work without `tracing_config`'s metadata too.
        """
        if self._closed:
            return []
        ids = _RunIds(str(thread_id), tenant_id, user_id, workflow, tuple(agents))
        with self._lock:
            link = self._waiting.get(ids.thread_id)
        return [_handler_class()(self, ids, link)]

    def trace_id(self, thread_id: str) -> str | None:
        """The trace id of the thread's latest run traced by this process, if any."""
        with self._lock:
            return self._latest.get(str(thread_id))

    def record_cost(
        self,
        *,
        thread_id: str,
        cost_usd: float,
        usage: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> str | None:
        """Attach podium's cost figure to the thread's latest trace as a numeric score.

        Langfuse prices generations itself from model and tokens; this score carries the
        figure podium charged to budgets and the ledger, so the two can be compared.
        Calling it again for the same trace (after a gate's resume) replaces the value.

        Args:
            thread_id: The run's thread.
            cost_usd: podium's cost, e.g. the sum of `cost_usd` over the final state's
                `usage`, or the ledger's total for the thread.
            usage: Optional per-agent usage (the final state's `usage`), kept as the
                score's metadata.

        Returns:
            The scored trace id, or None when this process traced no run of the thread.
        """
        trace_id = self.trace_id(thread_id)
        if trace_id is None or self._closed:
            log.debug("no trace of thread %r to attach podium's cost to", thread_id)
            return None
        self._client.create_score(
            name=COST_SCORE,
            value=float(cost_usd),
            trace_id=trace_id,
            score_id=f"{trace_id}-{COST_SCORE}",
            data_type="NUMERIC",
            comment="cost computed by podium from its price table",
            metadata={"usage": {k: dict(v) for k, v in (usage or {}).items()}},
        )
        return trace_id

    def add_span_processor(self, processor: Any) -> None:
        """Also hand every span podium ends to `processor` (an OpenTelemetry
        `SpanProcessor`), e.g. to mirror or count them: podium's spans go through its own
        provider, so one on the global provider never sees them."""
        self._provider.add_span_processor(processor)

    def flush(self) -> None:
        """Send everything buffered now (blocks until sent or the SDK's timeout)."""
        if not self._closed:
            self._client.flush()

    def shutdown(self) -> None:
        """Flush and stop the export threads. Idempotent; callbacks() is empty afterwards."""
        if self._closed:
            return
        self._closed = True
        self._client.shutdown()
        self._provider.shutdown()
        _forget_client(self.settings.public_key)

    # -- called by the handler -----------------------------------------------------------

    def _run_started(self, thread_id: str, trace_id: str | None) -> None:
        if trace_id is None:
            return
        with self._lock:
            _remember(self._latest, thread_id, trace_id)

    def _run_ended(self, thread_id: str, link: _Link | None, *, waiting: bool) -> None:
        with self._lock:
            if waiting and link is not None:
                _remember(self._waiting, thread_id, link)
            else:
                self._waiting.pop(thread_id, None)


def tracing_config(
    tracer: Tracer | None,
    *,
    thread_id: str,
    tenant_id: str,
    user_id: str | None = None,
    workflow: str,
    agents: Sequence[str] = (),
) -> dict[str, Any]:
    """The RunnableConfig fragment (callbacks + metadata) that traces one invocation.

    `{}` when `tracer` is None, so callers need no branch. Merge it into the run's
    config; if the config already has callbacks or metadata, extend them instead.
    """
    if tracer is None:
        return {}
    ids = _RunIds(str(thread_id), tenant_id, user_id, workflow, tuple(agents))
    return {
        "callbacks": tracer.callbacks(
            thread_id=ids.thread_id,
            tenant_id=tenant_id,
            user_id=user_id,
            workflow=workflow,
            agents=ids.agents,
        ),
        "metadata": ids.metadata(),
    }


def generation_costs(response: Any, prices: Mapping[str, Any] | None) -> dict[str, float]:
    """`cost_details` of a model call's result (an `LLMResult`): its last message's usage
    priced per token kind; {} when the model has no price or reported no usage."""
    from podium.pricing import cost_details

    try:
        message = response.generations[-1][-1].message
    except (AttributeError, IndexError):
        return {}
    usage = getattr(message, "usage_metadata", None)
    meta = getattr(message, "response_metadata", None) or {}
    model = meta.get("model_name") or meta.get("model")
    if not usage or not model:
        return {}
    return cost_details(str(model), usage, prices)


def _remember(table: OrderedDict[str, Any], key: str, value: Any) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > _REMEMBERED:
        table.popitem(last=False)


def _forget_client(public_key: str) -> None:
    """Drop the SDK's per-key singleton, so a later Tracer with this key starts afresh
    instead of reusing the resources this one shut down."""
    try:
        from langfuse._client.resource_manager import LangfuseResourceManager
    except ImportError:  # a future SDK layout; at worst a new Tracer reuses the old client
        return
    with LangfuseResourceManager._lock:
        LangfuseResourceManager._instances.pop(public_key, None)


@functools.cache
def _handler_class() -> type:
    """The handler type, built on first use so that podium imports langfuse only then."""
    from langfuse.langchain import CallbackHandler
    from langgraph.errors import GraphInterrupt
    from opentelemetry import trace

    from podium.tracing.runs import FoldedRuns, reparent, span_input, task_of

    @reparent
    class PodiumCallbackHandler(FoldedRuns, CallbackHandler):
        """Langfuse's LangChain handler, plus podium's names, identifiers and gate links;
        a task's worker graph is folded into the task's span (`_trace_runs`)."""

        # Async runs would otherwise call this sync handler in an executor, each event in
        # a copied context, and the session/user/tags set at the root would reach no child.
        run_inline = True

        def __init__(self, tracer: Tracer, ids: _RunIds, link: _Link | None) -> None:
            context = None
            if link is not None:
                context = {"trace_id": link.trace_id}
                if link.span_id:
                    context["parent_span_id"] = link.span_id
            super().__init__(
                public_key=tracer.settings.public_key,
                trace_context=context,  # type: ignore[arg-type]  # a TraceContext TypedDict
            )
            self.podium_ids = ids
            self._tracer = tracer
            self._link = link
            self._root: _Link | None = None
            self._waiting = False
            self._init_folding()

        def on_chain_start(
            self,
            serialized: dict[str, Any] | None,
            inputs: Any,
            *,
            run_id: UUID,
            parent_run_id: UUID | None = None,
            **kwargs: Any,
        ) -> Any:
            metadata = kwargs.pop("metadata", None)
            if self._folds(parent_run_id, metadata):
                self._folded[run_id] = parent_run_id
                return
            parent_run_id = self._shown(parent_run_id)
            if parent_run_id is not None:
                inputs = span_input(inputs)
            if parent_run_id is None:
                metadata = {**self.podium_ids.metadata(), **(metadata or {})}
                self._waiting = False
            elif (task := task_of(inputs, metadata)) is not None:
                self._tasks.add(run_id)
                kwargs["name"] = f"task {task['id']} ({task['agent']})"
                metadata = {
                    **(metadata or {}),
                    "podium_task_id": task["id"],
                    "podium_agent": task["agent"],
                }
            super().on_chain_start(
                serialized, inputs, run_id=run_id, parent_run_id=parent_run_id,
                metadata=metadata, **kwargs,
            )  # fmt: skip
            if parent_run_id is None:
                span = trace.get_current_span().get_span_context()
                span_id = format(span.span_id, "016x") if span.is_valid else None
                if self.last_trace_id:
                    self._root = _Link(self.last_trace_id, span_id)
                self._tracer._run_started(self.podium_ids.thread_id, self.last_trace_id)

        def on_chain_end(
            self,
            outputs: dict[str, Any],
            *,
            run_id: UUID,
            parent_run_id: UUID | None = None,
            **kwargs: Any,
        ) -> Any:
            if self._folded.pop(run_id, False) is not False:
                return
            self._tasks.discard(run_id)
            parent_run_id = self._shown(parent_run_id)
            super().on_chain_end(outputs, run_id=run_id, parent_run_id=parent_run_id, **kwargs)
            if parent_run_id is None:
                self._ended()

        def on_llm_end(
            self,
            response: LLMResult,
            *,
            run_id: UUID,
            parent_run_id: UUID | None = None,
            **kwargs: Any,
        ) -> Any:
            # Langfuse reads usage itself; the cost per token kind comes from podium's
            # prices, so Langfuse's cost views show what podium charged (cached and
            # reasoning tokens at their own rates).
            generation = getattr(self, "_runs", {}).get(run_id)
            costs = generation_costs(response, self._tracer.prices)
            if generation is not None and costs:
                generation.update(cost_details=costs)
            super().on_llm_end(response, run_id=run_id, parent_run_id=parent_run_id, **kwargs)

        def on_chain_error(
            self,
            error: BaseException,
            *,
            run_id: UUID,
            parent_run_id: UUID | None = None,
            **kwargs: Any,
        ) -> None:
            if isinstance(error, GraphInterrupt):
                self._waiting = True
            if self._folded.pop(run_id, False) is not False:
                return
            self._tasks.discard(run_id)
            parent_run_id = self._shown(parent_run_id)
            super().on_chain_error(error, run_id=run_id, parent_run_id=parent_run_id, **kwargs)
            if parent_run_id is None:
                self._ended()

        def _ended(self) -> None:
            # A resumed run that stops at another gate still continues the first trace.
            link = self._link or self._root
            self._tracer._run_ended(self.podium_ids.thread_id, link, waiting=self._waiting)

    return PodiumCallbackHandler
