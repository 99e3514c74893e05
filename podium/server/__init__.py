"""LangGraph server pieces: graph entry points, tenant isolation, webhook triggers.

`langgraph.json` names the modules the server loads: `podium.server.graphs` (graphs),
`podium.server.auth:auth` (authentication and tenant filters) and `podium.server.app:app`
(`POST /triggers/{workflow}`). Those open podium's database when imported, so this package
re-exports only the credential helpers clients and tests use.
"""

from podium.server._credentials import (
    CredentialError,
    Principal,
    WebhookRefused,
    parse_api_keys,
    parse_webhook_secrets,
    sign_token,
    sign_webhook,
    verify_token,
    verify_webhook,
)

__all__ = [
    "CredentialError",
    "Principal",
    "WebhookRefused",
    "parse_api_keys",
    "parse_webhook_secrets",
    "sign_token",
    "sign_webhook",
    "verify_token",
    "verify_webhook",
]
