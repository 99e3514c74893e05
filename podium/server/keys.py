"""API keys kept in podium's database as hashes: created, listed and revoked by an operator.

A key is `pdk_<id>_<secret>`: `id` (12 hex digits) is public and names the key in
listings; `secret` is 32 random bytes, base64url. The table `podium_api_keys` holds the
SHA-256 of the whole key, never the key, so a copy of the database signs no one in. The
key is shown once, when it is created (`podium keys create`).

SHA-256 rather than a slow password hash: a key has 256 random bits, so there is no
dictionary to guess from, and a fast hash keeps the lookup on every request cheap.

Every request with a stored key reads its row (one primary-key lookup), with no cache:
a revoked key is refused by every server process on the same database from the moment
`podium keys revoke` commits.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from podium.errors import ApiKeyExists, ApiKeyNotFound, ConfigurationError
from podium.server._credentials import CredentialError, Principal, check_name
from podium.storage.database import Cursor, Database

KEY_PREFIX = "pdk_"
_KEY = re.compile(r"^pdk_([0-9a-f]{12})_([A-Za-z0-9_\-]{43})$")
_LABEL_MAX = 200

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS podium_api_keys (
        key_id TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        tenant_id TEXT NOT NULL,
        identity TEXT NOT NULL,
        roles TEXT NOT NULL,
        label TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        revoked_at DOUBLE PRECISION
    )""",
    "CREATE INDEX IF NOT EXISTS podium_api_keys_tenant ON podium_api_keys (tenant_id)",
]


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What is stored about a key (never the key).

    Attributes:
        key_id: The public part of the key, naming it in listings and `revoke`.
        tenant_id: The tenant the key signs in to.
        identity: The user it signs in as.
        roles: That user's roles.
        label: What the key is for (free text).
        created_at: Seconds since the epoch.
        revoked_at: When it was revoked; None while it works.
    """

    key_id: str
    tenant_id: str
    identity: str
    roles: tuple[str, ...]
    label: str
    created_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def is_stored_key(key: str) -> bool:
    """Whether `key` has the form of a stored key (`pdk_...`)."""
    return key.strip().startswith(KEY_PREFIX)


class ApiKeys:
    """The `podium_api_keys` table on one of podium's databases (SQLite or PostgreSQL).

    Args:
        db: podium's database (the server's `PODIUM_DATABASE_URL`).
        clock: Seconds since the epoch (tests pass a fake one).
    """

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        db.ensure_schema("api_keys", SCHEMA)

    def create(
        self, tenant_id: str, identity: str, roles: Iterable[str] = (), *, label: str = ""
    ) -> tuple[str, ApiKeyInfo]:
        """A new key for `identity` of `tenant_id`; the key itself is returned only here.

        A user of a tenant has at most one active key per label. The same request run
        again (after a lost answer, or a crash between the insert and the output) is
        refused with the existing key's id rather than issuing a second working secret;
        the check and the insert hold one lock, so two concurrent runs make one key.

        Raises:
            ConfigurationError: for a malformed tenant, user, role or label.
            ApiKeyExists: the user already has an active key with this label.
        """
        where = "podium keys create"
        info = ApiKeyInfo(
            key_id=secrets.token_hex(6),
            tenant_id=check_name(tenant_id, "tenant", where),
            identity=check_name(identity, "user", where),
            roles=tuple(dict.fromkeys(check_name(r, "role", where) for r in roles)),
            label=_label(label),
            created_at=self._clock(),
        )
        key = f"{KEY_PREFIX}{info.key_id}_{secrets.token_urlsafe(32)}"

        def insert(cur: Cursor) -> None:
            rows = cur.query(
                "SELECT key_id FROM podium_api_keys WHERE tenant_id = ? AND identity = ? "
                "AND label = ? AND revoked_at IS NULL ORDER BY created_at, key_id",
                (info.tenant_id, info.identity, info.label),
            )
            if rows:
                raise ApiKeyExists(rows[0]["key_id"], info.tenant_id, info.identity, info.label)
            cur.execute(
                "INSERT INTO podium_api_keys (key_id, digest, tenant_id, identity, roles, "
                "label, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    info.key_id,
                    _digest(key),
                    info.tenant_id,
                    info.identity,
                    json.dumps(list(info.roles)),
                    info.label,
                    info.created_at,
                ),
            )

        lock = "api_key_owner:" + json.dumps([info.tenant_id, info.identity, info.label])
        self._db.transact(insert, lock=lock)
        return key, info

    def list(self, tenant_id: str | None = None) -> list[ApiKeyInfo]:
        """Keys of one tenant (None: every tenant), newest first, revoked ones included."""
        sql = "SELECT * FROM podium_api_keys"
        params: tuple[str, ...] = ()
        if tenant_id is not None:
            sql, params = sql + " WHERE tenant_id = ?", (tenant_id,)
        rows = self._db.query(sql + " ORDER BY created_at DESC, key_id", params)
        return [_info(row) for row in rows]

    def revoke(self, key_id: str, *, tenant_id: str | None = None) -> ApiKeyInfo:
        """Revoke a key at once (a key revoked before keeps its first revocation time).

        Args:
            key_id: The key's id (`podium keys list`), or the whole key.
            tenant_id: When given, the key must belong to this tenant.

        Raises:
            ApiKeyNotFound: no such key (of that tenant).
        """
        match = _KEY.match(key_id.strip())
        key_id = match.group(1) if match else key_id.strip()
        now = self._clock()

        def revoke(cur: Cursor) -> dict[str, Any]:
            rows = cur.query("SELECT * FROM podium_api_keys WHERE key_id = ?", (key_id,))
            if not rows or (tenant_id is not None and rows[0]["tenant_id"] != tenant_id):
                raise ApiKeyNotFound(key_id, tenant_id)
            if rows[0]["revoked_at"] is None:
                rows[0]["revoked_at"] = now
                cur.execute(
                    "UPDATE podium_api_keys SET revoked_at = ? WHERE key_id = ?", (now, key_id)
                )
            return dict(rows[0])

        return _info(self._db.transact(revoke, lock=f"api_key:{key_id}"))

    def authenticate(self, key: str) -> Principal:
        """The principal of a stored key, read from the database on every call.

        Raises:
            CredentialError: for an unknown, wrong or revoked key.
        """
        match = _KEY.match(key.strip())
        if match is None:
            raise CredentialError(
                "malformed API key: a stored key is 'pdk_', 12 hex digits, '_' and 43 "
                "characters, as `podium keys create` printed it"
            )
        rows = self._db.query("SELECT * FROM podium_api_keys WHERE key_id = ?", (match.group(1),))
        # Compare digests, in constant time; an unknown id and a wrong secret read alike.
        if not rows or not hmac.compare_digest(rows[0]["digest"], _digest(key.strip())):
            raise CredentialError("unknown API key")
        info = _info(rows[0])
        if not info.active:
            raise CredentialError(
                f"API key {info.key_id} was revoked; ask for a new key (`podium keys create`)"
            )
        return Principal(info.identity, info.tenant_id, info.roles, credential="api_key")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _label(label: str) -> str:
    label = " ".join(label.split())
    if len(label) > _LABEL_MAX:
        raise ConfigurationError(f"podium keys create: --label is at most {_LABEL_MAX} characters")
    return label


def _info(row: dict[str, Any]) -> ApiKeyInfo:
    return ApiKeyInfo(
        key_id=row["key_id"],
        tenant_id=row["tenant_id"],
        identity=row["identity"],
        roles=tuple(json.loads(row["roles"])),
        label=row["label"],
        created_at=float(row["created_at"]),
        revoked_at=None if row["revoked_at"] is None else float(row["revoked_at"]),
    )
