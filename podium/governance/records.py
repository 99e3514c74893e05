"""What the governor writes down: usage and cost (ledger), calls and decisions (audit)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage

import podium.policies as P
from podium.governance.progress import emit
from podium.governance.recovery import describe
from podium.governance.scope import Scope
from podium.governance.usage import model_name_of, priced_usage
from podium.state import Usage
from podium.stores.ledger import UsageEntry
from podium.tokens import message_text

if TYPE_CHECKING:
    from podium.stores.services import Services


class Recording:
    """Mixin of the governor (which sets `services`)."""

    services: Services

    def account(
        self,
        scope: Scope,
        reply: AIMessage,
        *,
        label: str | None = None,
        messages: Sequence[BaseMessage] = (),
    ) -> Usage:
        """Record one model reply's usage and cost (ledger) and the call (audit)."""
        usage, entry = self.bill(scope, reply, label=label)
        self.services.recorder.usage(entry)
        self.audit_model_call(scope, reply, usage, label=label, messages=messages)
        return usage

    def bill(
        self, scope: Scope, reply: AIMessage, *, label: str | None = None
    ) -> tuple[Usage, UsageEntry]:
        """What one model reply costs, and its ledger row (not written)."""
        model = model_name_of(reply, label or "unknown")
        usage = priced_usage(reply, model, scope)
        meta: dict[str, Any] = dict(reply.usage_metadata or {})
        cached = (meta.get("input_token_details") or {}).get("cache_read", 0) or 0
        entry = UsageEntry(
            tenant_id=scope.tenant_id,
            workflow=scope.workflow,
            thread_id=scope.thread_id or "-",
            task_id=scope.task_id,
            agent=scope.agent,
            model=label or model,
            input_tokens=usage["input_tokens"],
            output_tokens=usage["output_tokens"],
            cached_tokens=int(cached),
            cost_usd=usage["cost_usd"],
            step_attempt=scope.step_attempt,
            run_attempt=scope.run_attempt,
        )
        return usage, entry

    def audit_model_call(
        self,
        scope: Scope,
        reply: AIMessage,
        usage: Usage | None,
        *,
        label: str | None = None,
        messages: Sequence[BaseMessage] = (),
        step: str | None = None,
    ) -> None:
        """The audit event of a model call (`usage` None: a recorded reply replayed,
        which costs nothing)."""
        payload: dict[str, Any] = {
            "model": label or model_name_of(reply, "unknown"),
            "input": digest(message_text(messages)),
            "output": digest(reply.text + json.dumps(reply.tool_calls, default=str)),
            "tool_calls": [c["name"] for c in reply.tool_calls],
        }
        if usage is not None:
            payload |= {
                "input_tokens": usage["input_tokens"],
                "output_tokens": usage["output_tokens"],
                "cost_usd": usage["cost_usd"],
            }
        else:
            payload["replayed"] = True
        if step is not None:
            payload["step"] = step
        self.record(scope, "model_call", payload)

    def record(
        self,
        scope: Scope,
        kind: str,
        payload: dict[str, Any],
        *,
        actor: str | None = None,
        hook: str | None = None,
    ) -> None:
        """Buffer an audit event of `scope`."""
        self.services.recorder.scope_event(scope, kind, payload, actor=actor, hook=hook)

    def record_decision(self, scope: Scope, what: str, decision: P.Decision) -> None:
        """Keep a decision that refused, rewrote, redacted or routed something."""
        self.record(
            scope,
            "policy_decision",
            {
                "what": what,
                "allowed": decision.allowed,
                "rule": decision.rule,
                "reason": decision.reason,
                "details": dict(decision.details),
            },
        )

    def _on_retry(self, scope: Scope, what: str) -> Callable[[int, BaseException, float], None]:
        """Audit a failed try that will be tried again, and tell the run's stream (a
        streamed reply cut mid-answer starts over: a display says why)."""

        def note(attempt: int, exc: BaseException, wait: float) -> None:
            said = describe(exc).removeprefix(f"{type(exc).__name__}: ")
            failure = {"error_type": type(exc).__name__, "error": said[:500]}
            self.record(
                scope, "error", {"retrying": what, "attempt": attempt, "wait": wait, **failure}
            )
            emit(
                {
                    "event": "retry",
                    "task_id": scope.task_id,
                    "agent": scope.agent,
                    "what": what,
                    "attempt": attempt,
                    "wait": wait,
                    **failure,
                    "at": time.time(),
                }
            )

        return note


def digest(value: Any) -> str:
    """A content hash for the audit log (model inputs and outputs are not stored as text)."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
