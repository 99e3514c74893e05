"""Credentials of the server: configured API keys, pdm1 tokens, webhook secrets (pure code).

An API key maps to one principal (tenant, user, roles). Keys listed in the configuration
are `PODIUM_API_KEYS="key=tenant:user:role1+role2;..."`, where `key` is the key itself
(development) or `sha256:<hex digest of the key>` (the configuration then holds no
secret). Keys kept in podium's database (`podium keys create`) live in
`podium.server.keys`; identity-provider JWTs in `podium.server._jwt`.

A pdm1 token carries the principal itself, signed with HMAC-SHA256 under
`PODIUM_TOKEN_SECRET` (for a single service that signs its users in itself):

    pdm1.<base64url(JSON {"tenant", "identity", "roles", "exp"})>.<base64url(HMAC)>

Webhook secrets are per tenant: `PODIUM_WEBHOOK_SECRETS="tenant=secret;..."`; a sender signs
`timestamp + "." + body` with HMAC-SHA256 (`sign_webhook`). Nothing here reads the
environment; `podium.server.auth` and `podium.server.webhooks` do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from podium.errors import ConfigurationError

TOKEN_PREFIX = "pdm1"
#: How a `PODIUM_API_KEYS` entry gives a key's digest instead of the key.
HASH_PREFIX = "sha256:"
#: Seconds a signed request stays valid before or after its timestamp.
WINDOW = 300.0
TENANT_HEADER = "x-podium-tenant"
TIMESTAMP_HEADER = "x-podium-timestamp"
SIGNATURE_HEADER = "x-podium-signature"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,127}$")


class CredentialError(Exception):
    """A credential that does not authenticate anyone; the message says why."""


class WebhookRefused(CredentialError):
    """A webhook request that is not authentic; the message says why (answered 401)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is from: a user of one tenant, with roles.

    Attributes:
        identity: The user (unique within the tenant).
        tenant_id: The tenant everything the user creates belongs to.
        roles: Roles that gates and policies check (e.g. "editor").
        credential: What authenticated the request: "api_key", "token" (pdm1) or "jwt".
        display_name: A name to show (a JWT's `name` or `email` claim), if any.
        issuer: Who issued the credential (a JWT's `iss`), if known.
        expires_at: When the credential expires (seconds since the epoch), if it does.
    """

    identity: str
    tenant_id: str
    roles: tuple[str, ...] = field(default_factory=tuple)
    # Who the principal is is identity, tenant and roles; the rest describes the credential.
    credential: str = field(default="", compare=False)
    display_name: str | None = field(default=None, compare=False)
    issuer: str | None = field(default=None, compare=False)
    expires_at: float | None = field(default=None, compare=False)

    def as_user(self) -> dict[str, Any]:
        """The user dict the LangGraph server keeps (`langgraph_auth_user`)."""
        roles = list(self.roles)
        return {
            "identity": self.identity,
            "display_name": f"{self.identity}@{self.tenant_id}",
            "tenant_id": self.tenant_id,
            "roles": roles,
            # podium's permissions are its roles: resolve_context falls back to them.
            "permissions": roles,
        }


def check_name(value: str, what: str, where: str) -> str:
    """`value` stripped, when it is a valid tenant, user or role name.

    Raises:
        ConfigurationError: naming `where` and the bad value.
    """
    value = value.strip()
    if not _NAME.match(value):
        raise ConfigurationError(
            f"{where}: bad {what} {value!r}; use letters, digits, '_', '-', '.', '@' "
            "(at most 128, starting with a letter or digit)"
        )
    return value


def _entries(text: str | None) -> list[str]:
    return [e.strip() for e in re.split(r"[;\n]", text or "") if e.strip()]


def parse_api_keys(text: str | None) -> dict[str, Principal]:
    """Parse `PODIUM_API_KEYS` into SHA-256(key) -> principal.

    An entry's key is either the key in plain text (development) or `sha256:` and the
    64 hex digits of its SHA-256 digest. Keys are kept hashed either way.

    Raises:
        ConfigurationError: naming the malformed entry by position (never the key).
    """
    keys: dict[str, Principal] = {}
    for n, entry in enumerate(_entries(text), start=1):
        where = f"PODIUM_API_KEYS entry {n}"
        key, sep, spec = entry.partition("=")
        parts = spec.split(":")
        if not sep or not key.strip() or len(parts) not in (2, 3):
            raise ConfigurationError(
                f"{where} must look like 'key=tenant:user' or 'key=tenant:user:role1+role2'"
            )
        tenant = check_name(parts[0], "tenant", where)
        user = check_name(parts[1], "user", where)
        roles = tuple(
            check_name(r, "role", where)
            for r in (parts[2] if len(parts) == 3 else "").split("+")
            if r.strip()
        )
        digest = _entry_digest(key.strip(), where)
        if digest in keys:
            raise ConfigurationError(f"{where} repeats a key of an earlier entry")
        keys[digest] = Principal(user, tenant, roles)
    return keys


def parse_webhook_secrets(text: str | None) -> dict[str, bytes]:
    """Parse `PODIUM_WEBHOOK_SECRETS` ("tenant=secret;...") into tenant -> secret.

    Raises:
        ConfigurationError: naming the malformed entry by position (never the secret).
    """
    secrets: dict[str, bytes] = {}
    for n, entry in enumerate(_entries(text), start=1):
        where = f"PODIUM_WEBHOOK_SECRETS entry {n}"
        tenant, sep, secret = entry.partition("=")
        if not sep or not secret.strip():
            raise ConfigurationError(f"{where} must look like 'tenant=secret'")
        secrets[check_name(tenant, "tenant", where)] = secret.strip().encode()
    return secrets


def plain_api_keys(text: str | None) -> int:
    """How many entries of `PODIUM_API_KEYS` hold a key in plain text (not `sha256:`)."""
    return sum(not e.partition("=")[0].strip().startswith(HASH_PREFIX) for e in _entries(text))


def lookup_api_key(keys: Mapping[str, Principal], key: str) -> Principal:
    """The principal of an API key, comparing digests in constant time.

    Raises:
        CredentialError: for an unknown key.
    """
    digest = _digest(key.strip())
    found = None
    # Every digest is compared (no early exit) with compare_digest: the time taken does
    # not depend on how much of a digest matched, nor on which entry did.
    for known, principal in keys.items():
        if hmac.compare_digest(known, digest):
            found = principal
    if found is None:
        raise CredentialError("unknown API key")
    return replace(found, credential="api_key")


def sign_token(
    secret: str | bytes,
    *,
    tenant_id: str,
    identity: str,
    roles: Iterable[str] = (),
    expires_in: float = 3600.0,
    now: float | None = None,
) -> str:
    """A bearer token for `identity` of `tenant_id`, valid for `expires_in` seconds.

    Args:
        secret: The server's `PODIUM_TOKEN_SECRET`.
        tenant_id: The tenant.
        identity: The user.
        roles: The user's roles.
        expires_in: Lifetime in seconds.
        now: Seconds since the epoch (tests); None means the current time.
    """
    where = "sign_token"
    payload = {
        "tenant": check_name(tenant_id, "tenant", where),
        "identity": check_name(identity, "user", where),
        "roles": sorted({check_name(r, "role", where) for r in roles}),
        "exp": int((time.time() if now is None else now) + expires_in),
    }
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    signing_input = f"{TOKEN_PREFIX}.{body}"
    return f"{signing_input}.{_b64(_mac(secret, signing_input))}"


def verify_token(secret: str | bytes, token: str, *, now: float | None = None) -> Principal:
    """The principal a bearer token names, once its signature and expiry are checked.

    Raises:
        CredentialError: for a malformed, forged or expired token.
    """
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise CredentialError(f"malformed token; expected '{TOKEN_PREFIX}.<payload>.<signature>'")
    signing_input = f"{parts[0]}.{parts[1]}"
    try:
        signature = _unb64(parts[2])
        payload = json.loads(_unb64(parts[1]))
    except (ValueError, binascii.Error) as exc:
        raise CredentialError("malformed token") from exc
    if not hmac.compare_digest(signature, _mac(secret, signing_input)):
        raise CredentialError("bad token signature")
    if not isinstance(payload, dict):
        raise CredentialError("malformed token payload")
    exp = payload.get("exp")
    if not isinstance(exp, int | float) or exp <= (time.time() if now is None else now):
        raise CredentialError("token expired")
    roles = payload.get("roles") or []
    tenant, identity = payload.get("tenant"), payload.get("identity")
    if not (isinstance(tenant, str) and isinstance(identity, str) and isinstance(roles, list)):
        raise CredentialError("token payload needs tenant, identity and roles")
    try:
        return Principal(
            check_name(identity, "user", "token"),
            check_name(tenant, "tenant", "token"),
            tuple(check_name(str(r), "role", "token") for r in roles),
            credential="token",
            expires_at=float(exp),
        )
    except ConfigurationError as exc:
        raise CredentialError(str(exc)) from None


def sign_webhook(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """The `x-podium-signature` value of `body` sent at `timestamp`."""
    key = secret.encode() if isinstance(secret, str) else secret
    message = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(key, message, hashlib.sha256).hexdigest()


def verify_webhook(
    secrets: Mapping[str, bytes],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    window: float = WINDOW,
) -> str:
    """Check a request's signature and timestamp; returns the signing tenant.

    Raises:
        WebhookRefused: naming what is missing or wrong.
    """
    tenant = (headers.get(TENANT_HEADER) or "").strip()
    timestamp = (headers.get(TIMESTAMP_HEADER) or "").strip()
    signature = (headers.get(SIGNATURE_HEADER) or "").strip()
    if not (tenant and timestamp and signature):
        raise WebhookRefused(
            f"unsigned request: send {TENANT_HEADER}, {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}"
        )
    if not re.fullmatch(r"[0-9]{1,12}", timestamp):
        raise WebhookRefused(f"{TIMESTAMP_HEADER} must be whole seconds since the epoch")
    if abs(now - int(timestamp)) > window:
        raise WebhookRefused(f"timestamp outside the {window:.0f} s window; sign it again")
    secret = secrets.get(tenant)
    # One answer for an unknown tenant and a wrong signature: no oracle for tenant names.
    expected = sign_webhook(secret or b"", timestamp, body)
    # Bytes, not str: compare_digest refuses a str that is not ASCII (a header may be any
    # latin-1), and a refusal must not become a crash.
    if secret is None or not hmac.compare_digest(signature.encode(), expected.encode()):
        raise WebhookRefused("bad signature (or no webhook secret for this tenant)")
    return tenant


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _entry_digest(key: str, where: str) -> str:
    """The digest of a `PODIUM_API_KEYS` entry's key: given (`sha256:...`) or computed."""
    if not key.startswith(HASH_PREFIX):
        return _digest(key)
    digest = key[len(HASH_PREFIX) :].lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ConfigurationError(
            f"{where}: a hashed key is 'sha256:' and 64 hex digits (the SHA-256 of the key, "
            "e.g. from `printf %s KEY | sha256sum`)"
        )
    return digest


def _mac(secret: str | bytes, message: str) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
