"""The app's configuration (from the environment, read by `app.py`) and its user settings.

`AppConfig` is what the process is started with: database, default model, extra
workflows, audit key, Langfuse. `UserSettings` is what a person picks in the sidebar:
tenant, user, roles and model; it becomes the `RunContext` of runs and decisions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from podium.context import DEFAULT_TENANT, RunContext
from podium.storage.faults import DEFAULT_RETRY_FOR, RETRY_FOR_ENV, retry_window
from podium.storage.urls import DEFAULT_URL, mask

DEFAULT_MODEL = "demo"
#: What the page says of the model of runs on a LangGraph server (the server picks it).
SERVER_MODEL = "server's PODIUM_MODEL"

DEFAULT_USER = "you"
#: Roles offered in the sidebar; "editor" decides the example workflow's publish gate.
ROLE_CHOICES: tuple[str, ...] = ("editor", "reviewer", "admin")
DEFAULT_ROLES: tuple[str, ...] = ("editor",)


@dataclass(frozen=True, slots=True, repr=False)
class AppConfig:
    """How the app was started.

    Attributes:
        database_url: Checkpoints and podium's tables (PODIUM_DATABASE_URL).
        model: The default model (PODIUM_MODEL), "demo" runs offline.
        workflows: Extra workflows, "name=module:function,..." (PODIUM_WORKFLOWS).
        audit_key: HMAC key of the audit chains (PODIUM_AUDIT_KEY).
        langfuse_host: Where trace links point (LANGFUSE_HOST); None hides the link.
        langfuse_project: Langfuse project id (LANGFUSE_PROJECT_ID), for session links.
        tracing: Whether Langfuse keys are set, so runs are traced.
        server_url: A LangGraph server to run on (PODIUM_SERVER_URL) instead of the
            embedded runtime; None runs embedded.
        server_key: The API key for the server (PODIUM_API_KEY), sent as `x-api-key`.
        server_token: A bearer token for the server (PODIUM_SERVER_TOKEN): a JWT from the
            team's identity provider, or a pdm1 token.
        db_retry_for: Seconds a lost PostgreSQL connection is retried (PODIUM_DB_RETRY_FOR);
            a page drawn while the database is down waits that long once, then says so.
    """

    database_url: str = DEFAULT_URL
    model: str = DEFAULT_MODEL
    workflows: str | None = None
    audit_key: bytes | None = None
    langfuse_host: str | None = None
    langfuse_project: str | None = None
    tracing: bool = False
    server_url: str | None = None
    server_key: str | None = None
    server_token: str | None = None
    db_retry_for: float = DEFAULT_RETRY_FOR

    def __repr__(self) -> str:
        # Never the password of the URL, the audit key nor the server's credential.
        return (
            f"AppConfig(database_url={self.masked_url!r}, model={self.model!r}, "
            f"workflows={self.workflows!r}, audit_key={'***' if self.audit_key else None}, "
            f"langfuse_host={self.langfuse_host!r}, tracing={self.tracing}, "
            f"server_url={self.masked_server_url!r}, "
            f"server_key={'***' if self.server_key else None}, "
            f"server_token={'***' if self.server_token else None})"
        )

    @property
    def remote(self) -> bool:
        """Whether runs go to a LangGraph server rather than the embedded runtime."""
        return bool(self.server_url)

    @property
    def masked_url(self) -> str:
        """The database URL with any password replaced by `***`."""
        return mask(self.database_url)

    @property
    def masked_server_url(self) -> str | None:
        """The server URL with any password replaced by `***` (None: runs embedded)."""
        return mask(self.server_url) if self.server_url else None

    @property
    def cache_key(self) -> str:
        """A digest of everything that opens a different runtime (secrets not in clear)."""
        parts = [
            self.database_url,
            str(self.db_retry_for),
            self.workflows or "",
            hashlib.sha256(self.audit_key or b"").hexdigest(),
            str(self.tracing),
            self.langfuse_host or "",
            self.server_url or "",
            hashlib.sha256((self.server_key or "").encode()).hexdigest(),
            hashlib.sha256((self.server_token or "").encode()).hexdigest(),
        ]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def config_from_env(environ: Mapping[str, str]) -> AppConfig:
    """The configuration from PODIUM_* and LANGFUSE_* variables (entry points call this)."""

    def get(name: str) -> str | None:
        value = (environ.get(name) or "").strip()
        return value or None

    key = get("PODIUM_AUDIT_KEY")
    host = get("LANGFUSE_HOST") or get("LANGFUSE_BASE_URL")
    return AppConfig(
        database_url=get("PODIUM_DATABASE_URL") or DEFAULT_URL,
        model=get("PODIUM_MODEL") or DEFAULT_MODEL,
        workflows=get("PODIUM_WORKFLOWS"),
        audit_key=key.encode() if key else None,
        langfuse_host=host,
        langfuse_project=get("LANGFUSE_PROJECT_ID"),
        tracing=bool(get("LANGFUSE_PUBLIC_KEY") or get("LANGFUSE_SECRET_KEY")),
        server_url=get("PODIUM_SERVER_URL"),
        server_key=get("PODIUM_API_KEY"),
        server_token=get("PODIUM_SERVER_TOKEN"),
        db_retry_for=retry_window(get(RETRY_FOR_ENV)),
    )


@dataclass(frozen=True, slots=True)
class UserSettings:
    """What the person at the page picked: who they are and which model runs."""

    tenant_id: str = DEFAULT_TENANT
    user_id: str = DEFAULT_USER
    roles: tuple[str, ...] = DEFAULT_ROLES
    model: str = DEFAULT_MODEL

    @classmethod
    def of(
        cls, tenant: str, user: str, roles: Iterable[str], model: str, *, default_model: str
    ) -> UserSettings:
        """Settings from widget values; blank fields fall back to the defaults."""
        return cls(
            tenant_id=tenant.strip() or DEFAULT_TENANT,
            user_id=user.strip() or DEFAULT_USER,
            roles=tuple(sorted(set(roles))),
            model=model.strip() or default_model,
        )

    @property
    def context(self) -> RunContext:
        """The `RunContext` of runs started and gates decided from the page."""
        return RunContext(
            tenant_id=self.tenant_id, user_id=self.user_id, roles=frozenset(self.roles)
        )
