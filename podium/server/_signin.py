"""Which credential a request carries, and who it names.

    x-api-key: pdk_...              a key kept hashed in podium's database (`podium keys`),
                                    looked up on every request
    x-api-key: KEY                  a key of PODIUM_API_KEYS (plain for development, or
                                    given as its sha256: digest)
    Authorization: Bearer pdm1....  a pdm1 token signed under PODIUM_TOKEN_SECRET
    Authorization: Bearer <JWT>     a token of the identity provider (PODIUM_JWT_ISSUER)

Nothing here reads the environment: `sign_in_from_env` takes the mapping the server's
entry code hands it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from podium.server._credentials import (
    TOKEN_PREFIX,
    CredentialError,
    Principal,
    lookup_api_key,
    parse_api_keys,
    plain_api_keys,
    verify_token,
)
from podium.server._jwt import JwtVerifier, jwt_settings_from_env
from podium.server.keys import ApiKeys, is_stored_key
from podium.words import count

#: The environment variables `sign_in_from_env` reads.
ENVIRONMENT = (
    "PODIUM_API_KEYS",
    "PODIUM_TOKEN_SECRET",
    "PODIUM_JWT_ISSUER",
    "PODIUM_JWT_AUDIENCE",
    "PODIUM_JWT_JWKS_URL",
    "PODIUM_JWT_ALGORITHMS",
    "PODIUM_JWT_LEEWAY",
    "PODIUM_JWT_TENANT_CLAIM",
    "PODIUM_JWT_USER_CLAIM",
    "PODIUM_JWT_ROLES_CLAIM",
    "PODIUM_JWT_JWKS_CACHE",
    "PODIUM_JWT_JWKS_COOLDOWN",
    "PODIUM_JWT_ALLOW_HTTP",
)


@dataclass(frozen=True)
class SignIn:
    """How a server authenticates requests; built once from its configuration.

    Attributes:
        api_keys: SHA-256 of configured keys -> principal (PODIUM_API_KEYS).
        token_secret: The pdm1 signing secret (PODIUM_TOKEN_SECRET); empty: no pdm1 tokens.
        jwt: The identity provider's token verifier; None: no JWTs.
        stored_keys: Opens the database's key table (on first use of a `pdk_` key).
        plain_keys: How many configured keys are in plain text (warned about at start).
    """

    api_keys: Mapping[str, Principal]
    token_secret: str
    jwt: JwtVerifier | None
    stored_keys: Callable[[], ApiKeys]
    plain_keys: int = 0

    def authenticate(self, headers: Mapping[bytes, bytes]) -> Principal:
        """The principal of a request's headers (lower-case names).

        May block (a database read, a fetch of the issuer's keys): call it off the event
        loop.

        Raises:
            KeysUnavailable: the identity provider's keys cannot be fetched (503).
            CredentialError: for a missing, unknown, revoked, forged or expired credential.
        """
        api_key = headers.get(b"x-api-key")
        if api_key:
            key = api_key.decode("utf-8", "replace").strip()
            if is_stored_key(key):
                return self.stored_keys().authenticate(key)
            return lookup_api_key(self.api_keys, key)
        authorization = headers.get(b"authorization", b"").decode("utf-8", "replace").strip()
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise CredentialError(
                "missing credential: send x-api-key or Authorization: Bearer <token>"
            )
        if token.startswith(f"{TOKEN_PREFIX}."):
            if not self.token_secret:
                raise CredentialError("pdm1 tokens are not enabled (PODIUM_TOKEN_SECRET is unset)")
            return verify_token(self.token_secret, token)
        if self.jwt is not None:
            return self.jwt.verify(token)
        if self.token_secret:
            return verify_token(self.token_secret, token)  # says what a pdm1 token looks like
        raise CredentialError(
            "bearer tokens are not enabled: set PODIUM_JWT_ISSUER and PODIUM_JWT_AUDIENCE "
            "(identity-provider tokens) on the server"
        )

    def warnings(self) -> list[str]:
        """What an operator should hear about this configuration at start-up."""
        notes = []
        if not (self.api_keys or self.token_secret or self.jwt):
            notes.append(
                "no PODIUM_JWT_ISSUER, PODIUM_TOKEN_SECRET or PODIUM_API_KEYS: only API keys "
                "made with `podium keys create` sign in"
            )
        if self.plain_keys:
            notes.append(
                f"PODIUM_API_KEYS holds {count(self.plain_keys, 'key')} in plain text: fine for "
                "development; elsewhere use `podium keys create` or sha256: entries"
            )
        return notes


def sign_in_from_env(
    environ: Mapping[str, str | None], stored_keys: Callable[[], ApiKeys]
) -> SignIn:
    """The sign-in configuration of a server's environment.

    Raises:
        ConfigurationError: naming the malformed variable.
    """
    env = {k: v for k, v in environ.items() if v is not None}
    settings = jwt_settings_from_env(env)
    keys_text = env.get("PODIUM_API_KEYS")
    return SignIn(
        api_keys=parse_api_keys(keys_text),
        token_secret=(env.get("PODIUM_TOKEN_SECRET") or "").strip(),
        jwt=JwtVerifier(settings) if settings is not None else None,
        stored_keys=stored_keys,
        plain_keys=plain_api_keys(keys_text),
    )
