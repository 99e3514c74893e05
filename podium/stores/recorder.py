"""The recorder: one place where run events become audit rows, usage rows and hook calls.

Events and usage rows are buffered in memory and written together in one transaction per
flush; nodes flush at the end of each step, so writing costs one round trip per step, not
one per event.
Lifecycle hooks are called with keyword arguments only (plus `**kwargs` on the hook's
side, so new fields never break old hooks); a hook that raises is logged and ignored.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from podium.stores.audit.log import Actor, AuditBuffer, AuditEvent, AuditLog
from podium.stores.audit.write import Joined
from podium.stores.ledger import MAX_ROWS_PER_INSERT, UsageEntry, UsageLedger

if TYPE_CHECKING:
    from podium.stores.budgets.store import Settlement

log = logging.getLogger("podium.hooks")

#: Hook names and the audit kinds that trigger them.
HOOKS = {
    "transition": "transition",
    "gate": "approval",
    "escalation": "escalation",
    "dead_letter": "dead_letter",
}


class Recorder:
    """Buffers audit events and usage rows; calls lifecycle hooks."""

    def __init__(self, audit: AuditLog, ledger: UsageLedger, *, max_batch: int = 200) -> None:
        self._audit = AuditBuffer(audit, max_size=max_batch)
        self._ledger = ledger
        self._usage: list[UsageEntry] = []
        self._settlements: list[Settlement] = []
        self._lock = threading.Lock()
        self._hooks: dict[str, list[Callable[..., Any]]] = defaultdict(list)

    def on(self, event: str, hook: Callable[..., Any]) -> Callable[..., Any]:
        """Register `hook` for `event` ("transition", "gate", "escalation", "dead_letter").

        The hook is called as `hook(**fields)`; write it with keyword-only parameters and
        `**kwargs`. Returns the hook, so this works as a decorator factory's inner call.
        """
        if event not in HOOKS:
            raise ValueError(f"unknown hook event {event!r}; use one of {', '.join(HOOKS)}")
        self._hooks[event].append(hook)
        return hook

    def event(
        self,
        kind: str,
        actor: str,
        payload: Mapping[str, Any],
        *,
        tenant_id: str,
        workflow: str | None = None,
        thread_id: str | None = None,
        task_id: str | None = None,
        run_id: str | None = None,
        checkpoint_id: str | None = None,
        hook: str | None = None,
    ) -> None:
        """Buffer one audit event, and call the hooks of `hook` if given."""
        self._audit.add(
            AuditEvent(
                kind=kind,
                actor=Actor.parse(actor),
                payload=dict(payload),
                tenant_id=tenant_id,
                workflow=workflow,
                thread_id=thread_id,
                task_id=task_id,
                run_id=run_id,
                checkpoint_id=checkpoint_id,
            )
        )
        if hook is not None:
            fields = {
                **payload,
                "event": hook,
                "tenant_id": tenant_id,
                "workflow": workflow,
                "thread_id": thread_id,
                "task_id": task_id,
            }
            self._call_hooks(hook, **fields)

    def scope_event(
        self,
        scope: Any,
        kind: str,
        payload: Mapping[str, Any],
        *,
        actor: str | None = None,
        task_id: str | None = None,
        checkpoint_id: str | None = None,
        hook: str | None = None,
    ) -> None:
        """`event` for a running `podium.governance.scope.Scope`: its tenant, workflow,
        thread and task, its agent as the actor unless `actor` is given, and, when the
        step that writes it is a retry, its attempts (`step_attempt`, `run_attempt`)."""
        self.event(
            kind,
            actor or f"agent:{scope.agent}",
            {**payload, **scope.retry_marks()},
            tenant_id=scope.tenant_id,
            workflow=scope.workflow,
            thread_id=scope.thread_id,
            task_id=task_id or scope.task_id,
            checkpoint_id=checkpoint_id,
            hook=hook,
        )

    def usage(self, entry: UsageEntry) -> None:
        with self._lock:
            self._usage.append(entry)

    def settle(self, settlement: Settlement) -> None:
        """Buffer a model call's budget settlement, for the step's flush (see `settling`)."""
        with self._lock:
            self._settlements.append(settlement)

    @property
    def settling(self) -> bool:
        """Whether settlements wait for a flush: a budget hold or read must flush first,
        so it sees every spend this process settled before it."""
        return bool(self._settlements)

    def flush(self) -> None:
        """Write buffered audit events, usage rows and budget settlements, in one
        transaction (one statement on PostgreSQL's usual path)."""
        with self._lock:
            usage, self._usage = self._usage, []
            settlements, self._settlements = self._settlements, []
        # One settlement joins the batch's statement: two that add to the same running
        # total (one tenant's day, one run) cannot both update its row in one statement.
        # The others (several runs' calls in one flush) settle on their own.
        joining, alone = settlements[:1], settlements[1:]
        try:
            bill = self._ledger.insert(usage) if 0 < len(usage) <= MAX_ROWS_PER_INSERT else None
            joined = Joined(bill, joining) if bill is not None or joining else None
            wrote = self._audit.flush(also=joined)
        except BaseException:
            with self._lock:  # nothing was written: all of it waits for the next flush
                self._usage[:0] = usage
                self._settlements[:0] = settlements
            raise
        if wrote and joined is not None:
            for settlement, took in zip(joining, joined.took, strict=True):
                settlement.finish(took)
        else:  # no events waited: nothing was written with them
            bill, alone = None, settlements
        for settlement in alone:
            settlement.apply()
        if bill is None and usage:  # not written with the events, or too many for one
            try:
                self._ledger.record(usage)
            except BaseException:
                with self._lock:
                    self._usage[:0] = usage
                raise

    def _call_hooks(self, name: str, **fields: Any) -> None:
        for hook in list(self._hooks.get(name, ())):
            try:
                hook(**fields)
            except Exception:
                log.exception("lifecycle hook %r for %r failed; the run goes on", hook, name)
