"""The fallback model list: when a model endpoint is down, the next model takes the call.

An agent names its models in order (`AgentSpec(model=[primary, secondary, ...])`, or a
policy's `model: [primary, secondary, ...]` for its scope, which wins). The governor tries
them in turn: a model whose transient failures outlast its retries, or whose breaker is
open, hands the call to the next one. Any other failure (a 4xx, a budget refusal) is the
caller's and is raised at once. Each switch is audited (an `escalation` event with
`fallback: model`), sent to
progress displays as a custom stream event, and marked on the reply so the worker can
show it in the task table.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel

import podium.policies as P
from podium.governance.core import GovernorCore
from podium.governance.progress import emit
from podium.governance.recovery import classify
from podium.governance.scope import Scope, call_scope
from podium.governance.structured import StructuredReply
from podium.models import model_label, resolve_model

#: The key of a reply's `response_metadata` that says a fallback model answered.
FALLBACK_KEY = "podium_fallback"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One model of the chain; only the first is routed by policy."""

    model: Any
    label: str
    index: int

    @property
    def route(self) -> bool:
        return self.index == 0


class ModelChain:
    """The models one call may use, in order, and what happened to them."""

    def __init__(
        self,
        governor: GovernorCore,
        model: Any,
        fallbacks: Sequence[Any],
        scope: Scope,
    ) -> None:
        self.governor, self.scope = governor, scope
        listed: tuple[str, ...] = ()
        if scope.policies is not None:
            listed = P.model_fallbacks(scope.policies, call_scope(scope))
        spare = [resolve_model(m) for m in listed] if listed else list(fallbacks)
        self.candidates = [
            Candidate(m, _label(m), i) for i, m in enumerate([model, *spare]) if m is not None
        ]

    def __iter__(self) -> Iterator[Candidate]:
        return iter(self.candidates)

    def failed(self, candidate: Candidate, exc: Exception) -> None:
        """Hand over to the next model, or raise `exc` when there is none or it is not the
        kind of failure another model can help with."""
        last = candidate.index == len(self.candidates) - 1
        if last or classify(exc) != "transient":
            raise exc
        successor = self.candidates[candidate.index + 1]
        switch = {
            "from": candidate.label,
            "to": successor.label,
            "error_type": type(exc).__name__,
            "error": str(exc)[:300],
        }
        # An escalation to a fallback, in the audit log's own words.
        self.governor.record(self.scope, "escalation", {"fallback": "model", **switch})
        emit(
            {
                "event": "model_fallback",
                "task_id": self.scope.task_id,
                "agent": self.scope.agent,
                **switch,
                "at": time.time(),
            }
        )

    def answered(self, candidate: Candidate, reply: Any) -> Any:
        """The reply, marked with the switch when a fallback model gave it."""
        if candidate.index > 0:
            raw = reply.raw if isinstance(reply, StructuredReply) else reply
            raw.response_metadata[FALLBACK_KEY] = {
                "from": self.candidates[0].label,
                "to": candidate.label,
            }
        return reply


def _label(model: Any) -> str:
    return model_label(model) if isinstance(model, BaseChatModel) else type(model).__name__
