"""The audit log: a hash chain (HMAC when keyed) of every decision, call and approval."""

from podium.errors import AuditError
from podium.stores.audit.buffer import AuditBuffer
from podium.stores.audit.events import (
    Actor,
    AuditEvent,
    ChainReport,
    Head,
    StoredEvent,
    VerifyReport,
    canonical_json,
)
from podium.stores.audit.log import AuditLog, content_hash

__all__ = [
    "Actor",
    "AuditBuffer",
    "AuditError",
    "AuditEvent",
    "AuditLog",
    "ChainReport",
    "Head",
    "StoredEvent",
    "VerifyReport",
    "canonical_json",
    "content_hash",
]
