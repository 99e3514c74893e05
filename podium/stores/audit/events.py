"""Values of the audit log: what a caller records, what the log stores, what verify reports.

Re-exported by `podium.stores.audit.log`; import them from there.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from podium.errors import AuditError

#: The documented event kinds. `kind` is an open string: these, or a namespaced
#: custom kind such as "acme.export" (lowercase words joined by dots).
KINDS: frozenset[str] = frozenset(
    {
        "plan",  # a plan was made, repaired or rejected
        "dispatch",  # tasks were sent to agents
        "transition",  # a task changed lifecycle state
        "model_call",  # a model was called (payload: content hashes, tokens, cost)
        "tool_call",  # a tool was called (payload: tool, argument hash)
        "tool_result",  # a tool returned (payload: result hash, status)
        "policy_decision",  # a policy allowed or refused something
        "approval",  # a human approved, edited or rejected
        "budget",  # a budget was reserved, settled or exceeded
        "error",  # something failed
        "dead_letter",  # a task was dead-lettered
        "escalation",  # a task or run was escalated to a person or fallback
    }
)
ACTOR_TYPES: frozenset[str] = frozenset({"agent", "user", "system"})
_CUSTOM_KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


#: One encoder for every call (`json.dumps` with options builds a new one each time).
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, non-ASCII kept as is (encode as UTF-8 to hash)."""
    return _CANONICAL.encode(value)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did what an event records: an agent, a user or the system, with a name.

    `AuditEvent` also accepts the short form "agent:researcher".
    """

    type: str
    name: str

    def __post_init__(self) -> None:
        if self.type not in ACTOR_TYPES:
            raise AuditError(
                f"unknown actor type {self.type!r}; use one of {', '.join(sorted(ACTOR_TYPES))}"
            )
        if not isinstance(self.name, str) or not self.name:
            raise AuditError(f"actor name {self.name!r} must be a non-empty string")

    @classmethod
    def parse(cls, text: str) -> Actor:
        """`"agent:researcher"` -> `Actor("agent", "researcher")`."""
        return _parse_actor(text)

    def __str__(self) -> str:
        return f"{self.type}:{self.name}"


@functools.lru_cache(maxsize=1024)
def _parse_actor(text: str) -> Actor:
    """`Actor.parse`, remembered: a run names the same few actors in every event (an
    `Actor` is frozen, so one value serves them all)."""
    kind, sep, name = text.partition(":")
    if not sep:
        raise AuditError(f"actor {text!r} has no type; write it as 'agent:NAME', ...")
    return Actor(kind, name)


def _check_kind(kind: Any) -> None:
    if not isinstance(kind, str) or not (kind in KINDS or _CUSTOM_KIND.match(kind)):
        raise AuditError(
            f"unknown audit event kind {kind!r}; use one of {', '.join(sorted(KINDS))}, "
            "or a namespaced custom kind such as 'acme.export'"
        )


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One thing that happened, as a caller records it. Validated when made.

    Attributes:
        kind: One of `KINDS` or a namespaced custom kind ("acme.export").
        actor: An `Actor` or "type:name".
        payload: A JSON object. For model inputs and outputs pass content hashes
            (`content_hash(text)`), and the text only where policy allows keeping it.
        tenant_id: The tenant whose chain the event joins.
        at: Seconds since the epoch; None means the log's clock at append time.
    """

    kind: str
    actor: Actor
    payload: Mapping[str, Any]
    tenant_id: str
    workflow: str | None = None
    thread_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    checkpoint_id: str | None = None
    at: float | None = None
    payload_json: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_kind(self.kind)
        if isinstance(self.actor, str):
            object.__setattr__(self, "actor", Actor.parse(self.actor))
        elif not isinstance(self.actor, Actor):
            raise AuditError(f"actor {self.actor!r} must be an Actor or 'type:name'")
        if not isinstance(self.tenant_id, str) or not self.tenant_id:
            raise AuditError(f"tenant_id {self.tenant_id!r} must be a non-empty string")
        for name in ("workflow", "thread_id", "run_id", "task_id", "checkpoint_id"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise AuditError(f"{name} {value!r} must be a string or None")
        if self.at is not None and not isinstance(self.at, int | float):
            raise AuditError(f"at {self.at!r} must be seconds since the epoch (a float)")
        object.__setattr__(self, "payload_json", _payload_json(self.kind, self.payload))


def _payload_json(kind: str, payload: Any) -> str:
    if not isinstance(payload, Mapping):
        raise AuditError(f"payload of a {kind!r} event must be a JSON object, got {payload!r}")
    try:
        text = canonical_json(payload)
        text.encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise AuditError(
            f"payload of a {kind!r} event is not JSON ({exc}): {payload!r}; pass strings, "
            "numbers, booleans, None, lists and dicts, and hashes instead of raw objects"
        ) from None
    return text


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the log holds it: chained, hashed, numbered within its tenant."""

    tenant_id: str
    seq: int
    at: float
    kind: str
    actor: Actor
    payload: dict[str, Any]
    workflow: str | None
    thread_id: str | None
    run_id: str | None
    task_id: str | None
    checkpoint_id: str | None
    prev_hash: str
    hash: str
    mode: str


@dataclass(frozen=True, slots=True)
class Head:
    """The last link of a tenant's chain; store it elsewhere to detect a truncated tail.

    `seq` 0 with the genesis hash is the head of an empty chain. `seq=None` (a head
    known only by its hash) means "some row of the chain must have this hash".
    """

    tenant_id: str
    seq: int | None
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "seq": self.seq, "hash": self.hash}


#: What verify can find wrong, by problem kind.
PROBLEMS: dict[str, str] = {
    "edited": "a row's content no longer matches its hash",
    "deleted": "rows are missing (a gap in the sequence, or removed and renumbered)",
    "reordered": "a row links to a row that comes after it",
    "inserted": "an extra row: a duplicate sequence number, or a row the chain does not link",
    "truncated": "the chain ends before the stored head",
    "rewritten": "the row at the stored head's sequence has another hash",
    "head_missing": "no row has the stored head's hash",
    "unkeyed": "a row was written without the HMAC key (plain SHA-256)",
    "key_required": "a row is HMAC-signed and verify was not given the key",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """The first thing wrong with a chain: where (`seq`), what (`kind`), and the details."""

    seq: int
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """One tenant's chain: OK with `count` rows up to `head`, or the first `problem`.

    On failure `count` and `head` describe the rows verified before the problem.
    """

    tenant_id: str
    count: int
    head: Head
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """A report per tenant verified; `ok` only if every chain is intact."""

    chains: tuple[ChainReport, ...]

    @property
    def ok(self) -> bool:
        return all(chain.ok for chain in self.chains)

    def __iter__(self) -> Iterator[ChainReport]:
        return iter(self.chains)

    def __getitem__(self, tenant_id: str) -> ChainReport:
        for chain in self.chains:
            if chain.tenant_id == tenant_id:
                return chain
        raise KeyError(tenant_id)
