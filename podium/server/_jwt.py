"""Bearer JWTs from a team's identity provider (OIDC): verified with PyJWT, mapped to a principal.

A token is accepted when

    - its header names an algorithm this server pins (`PODIUM_JWT_ALGORITHMS`, asymmetric
      only, so `alg: none` and an HS256 token "signed" with the public key are refused
      before any key is looked at);
    - its `kid` names a key of the issuer's JWKS (`PODIUM_JWT_JWKS_URL`, or the `jwks_uri`
      of the issuer's discovery document), the algorithm is one that key may verify
      (`key_algorithms`: the key's `alg` when it names one, else its key type and curve),
      and the signature verifies with that key and that algorithm;
    - `iss` is the configured issuer, `aud` holds the configured audience, `exp` is in the
      future and `nbf` / `iat` are not, each with `leeway` seconds of clock skew;
    - its claims name a tenant and a user (the roles claim may be absent: no roles).

Keys are cached for `jwks_cache` seconds. A token whose `kid` is not in the cached set
triggers one refetch (key rotation), at most once per `jwks_cooldown` seconds, so a
stream of tokens with made-up key ids cannot turn the server into a load generator
against the identity provider. Fetches happen one at a time, and a failed one is
remembered for `jwks_cooldown` seconds (503 meanwhile), so an outage does not either.

Nothing here reads the environment: `jwt_settings_from_env` takes the mapping the
server's entry code (`podium.server.auth`) hands it.
"""

from __future__ import annotations

import ipaddress
import json
import math
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.error import URLError

import jwt
from jwt import PyJWK, PyJWKClient

from podium.errors import ConfigurationError
from podium.server._credentials import CredentialError, Principal, check_name

#: Algorithms a server may pin: asymmetric signatures only. HMAC (HS*) would make every
#: holder of the verification key a possible signer; `none` signs nothing.
ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
#: The algorithms of each key type (RFC 7518 section 3.1): every RSA signature for an RSA
#: key; for EC and OKP keys, the one their curve is for (ES256 is P-256 only, and so on).
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_CURVE_ALGORITHMS = {
    "EC": {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"},
    "OKP": {"Ed25519": "EdDSA", "Ed448": "EdDSA"},
}
DISCOVERY_PATH = "/.well-known/openid-configuration"
#: Claims tried, in order, for the name the app shows ("Signed in as ...").
DISPLAY_CLAIMS = ("name", "email", "preferred_username")
_MAX_USER = 256
_MAX_ROLE = 128


class KeysUnavailable(CredentialError):
    """The issuer's signing keys cannot be fetched now, so no token can be checked (503)."""


@dataclass(frozen=True, slots=True)
class JwtSettings:
    """How the server checks identity-provider tokens and reads podium's principal from them.

    Attributes:
        issuer: The exact `iss` of accepted tokens (PODIUM_JWT_ISSUER), e.g.
            "https://acme.eu.auth0.com/" (Auth0 keeps the trailing slash).
        audience: Accepted `aud` values (PODIUM_JWT_AUDIENCE, comma-separated); a token
            must carry at least one of them.
        jwks_url: Where the issuer publishes its keys (PODIUM_JWT_JWKS_URL); None reads
            `jwks_uri` from the issuer's discovery document.
        algorithms: Pinned signature algorithms (PODIUM_JWT_ALGORITHMS).
        leeway: Seconds of clock skew allowed on `exp`, `nbf` and `iat` (PODIUM_JWT_LEEWAY).
        tenant_claims: Claims tried in order for the tenant (PODIUM_JWT_TENANT_CLAIM).
        user_claims: Claims tried in order for the user (PODIUM_JWT_USER_CLAIM).
        roles_claims: Claims tried in order for the roles (PODIUM_JWT_ROLES_CLAIM).
        jwks_cache: Seconds a fetched key set is used before it is fetched again
            (PODIUM_JWT_JWKS_CACHE).
        jwks_cooldown: Least seconds between two fetches caused by unknown key ids
            (PODIUM_JWT_JWKS_COOLDOWN).
        timeout: Seconds to wait for the identity provider.
        allow_http: Whether the keys may come over plain http from a host other than
            this machine (PODIUM_JWT_ALLOW_HTTP; off: https only).
    """

    issuer: str
    audience: tuple[str, ...]
    jwks_url: str | None = None
    algorithms: tuple[str, ...] = ("RS256",)
    leeway: float = 30.0
    tenant_claims: tuple[str, ...] = ("tenant", "org_id")
    user_claims: tuple[str, ...] = ("sub",)
    roles_claims: tuple[str, ...] = ("roles", "groups")
    jwks_cache: float = 300.0
    jwks_cooldown: float = 30.0
    timeout: float = 10.0
    allow_http: bool = False

    def __post_init__(self) -> None:
        if not self.issuer.startswith(("https://", "http://")):
            raise ConfigurationError(
                f"PODIUM_JWT_ISSUER must be the issuer's URL (the tokens' `iss`), "
                f"got {self.issuer!r}"
            )
        if not self.audience:
            raise ConfigurationError(
                "PODIUM_JWT_AUDIENCE is required with PODIUM_JWT_ISSUER: set it to the "
                "audience your identity provider puts in podium's tokens (the API "
                "identifier or client id), so tokens issued for other applications are refused"
            )
        if self.jwks_url is not None and not self.jwks_url.startswith(("https://", "http://")):
            raise ConfigurationError(
                f"PODIUM_JWT_JWKS_URL must be an http(s) URL, got {self.jwks_url!r}"
            )
        if self.jwks_url is None:
            _check_transport(
                "PODIUM_JWT_ISSUER (its discovery document)", self.issuer, self.allow_http
            )
        else:
            _check_transport("PODIUM_JWT_JWKS_URL", self.jwks_url, self.allow_http)
        bad = [a for a in self.algorithms if a not in ASYMMETRIC]
        if bad or not self.algorithms:
            raise ConfigurationError(
                f"PODIUM_JWT_ALGORITHMS: {', '.join(map(repr, bad)) or 'empty'} not accepted; "
                f"use asymmetric algorithms your identity provider signs with: "
                f"{', '.join(sorted(ASYMMETRIC))}"
            )
        for name, value, top in (
            ("PODIUM_JWT_LEEWAY", self.leeway, 600.0),
            ("PODIUM_JWT_JWKS_CACHE", self.jwks_cache, 86_400.0),
            ("PODIUM_JWT_JWKS_COOLDOWN", self.jwks_cooldown, 86_400.0),
        ):
            if not (math.isfinite(value) and 0 <= value <= top):
                raise ConfigurationError(
                    f"{name} must be seconds between 0 and {top:g}, got {value!r}"
                )
        if self.jwks_cache <= 0:
            raise ConfigurationError("PODIUM_JWT_JWKS_CACHE must be more than 0 seconds")
        for name, claims in (
            ("PODIUM_JWT_TENANT_CLAIM", self.tenant_claims),
            ("PODIUM_JWT_USER_CLAIM", self.user_claims),
            ("PODIUM_JWT_ROLES_CLAIM", self.roles_claims),
        ):
            if not claims or not all(claims):
                raise ConfigurationError(f"{name} must name at least one claim")


def jwt_settings_from_env(environ: Mapping[str, str]) -> JwtSettings | None:
    """The JWT settings of PODIUM_JWT_* variables; None when PODIUM_JWT_ISSUER is unset.

    Raises:
        ConfigurationError: naming the variable that is malformed or missing.
    """

    def get(name: str) -> str | None:
        value = (environ.get(name) or "").strip()
        return value or None

    def names(name: str) -> tuple[str, ...] | None:
        value = get(name)
        return tuple(p.strip() for p in value.split(",") if p.strip()) if value else None

    def flag(name: str) -> bool | None:
        value = get(name)
        if value is None:
            return None
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigurationError(f"{name} must be true or false, got {value!r}")

    def seconds(name: str) -> float | None:
        value = get(name)
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            raise ConfigurationError(f"{name} must be a number of seconds, got {value!r}") from None

    issuer = get("PODIUM_JWT_ISSUER")
    if issuer is None:
        return None
    given: dict[str, Any] = {
        "jwks_url": get("PODIUM_JWT_JWKS_URL"),
        "algorithms": names("PODIUM_JWT_ALGORITHMS"),
        "leeway": seconds("PODIUM_JWT_LEEWAY"),
        "tenant_claims": names("PODIUM_JWT_TENANT_CLAIM"),
        "user_claims": names("PODIUM_JWT_USER_CLAIM"),
        "roles_claims": names("PODIUM_JWT_ROLES_CLAIM"),
        "jwks_cache": seconds("PODIUM_JWT_JWKS_CACHE"),
        "jwks_cooldown": seconds("PODIUM_JWT_JWKS_COOLDOWN"),
        "allow_http": flag("PODIUM_JWT_ALLOW_HTTP"),
    }
    return JwtSettings(
        issuer=issuer,
        audience=names("PODIUM_JWT_AUDIENCE") or (),
        **{k: v for k, v in given.items() if v is not None},
    )


class JwtVerifier:
    """Verifies bearer JWTs of one issuer and maps their claims to a `Principal`.

    Thread-safe; keep one per process so the key cache is shared.

    Args:
        settings: The issuer, audience, algorithms and claim names.
    """

    def __init__(self, settings: JwtSettings) -> None:
        self.settings = settings
        self._keys = IssuerKeys(settings)

    def verify(self, token: str) -> Principal:
        """The principal a token names, once header, key, signature and claims are checked.

        Raises:
            KeysUnavailable: the issuer's keys cannot be fetched (answer 503).
            CredentialError: naming what is wrong with the token (answer 401).
        """
        s = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise CredentialError(f"malformed token: {exc}") from None
        alg = header.get("alg")
        if alg not in s.algorithms:
            raise CredentialError(
                f"token algorithm {_quote(alg)} is not accepted; this server accepts "
                f"{', '.join(s.algorithms)} (PODIUM_JWT_ALGORITHMS)"
            )
        key = self._keys.key(header.get("kid"))
        members = _jwk_members(key)
        usable = key_algorithms(members) & set(s.algorithms)
        if alg not in usable:
            # A key is used with the algorithms of its own type only: an RSA key never
            # checks an HMAC or an EC signature, an EC key never an RSA signature nor one
            # meant for another curve.
            raise CredentialError(
                f"token algorithm {alg!r} does not match its key {key.key_id!r} "
                f"({_describe(members)}: {', '.join(sorted(usable)) or 'none'} accepted)"
            )
        try:
            # The key object, not the PyJWK: a PyJWK is bound to one algorithm (PyJWT's
            # guess, RS256, for an RSA key without `alg`), while the checks above have
            # already settled which one of the key's algorithms this token uses.
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=list(s.audience),
                issuer=s.issuer,
                leeway=s.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.InvalidTokenError as exc:
            raise CredentialError(self._refusal(exc, token)) from None
        except jwt.PyJWTError as exc:  # e.g. a key the signature's algorithm cannot use
            raise CredentialError(f"token refused: {exc}") from None
        return principal_of(claims, s)

    def _refusal(self, exc: jwt.InvalidTokenError, token: str) -> str:
        """One sentence for a refused token. Claims are quoted only once the signature
        is known good (PyJWT checks claims after the signature)."""
        s = self.settings
        if isinstance(exc, jwt.ExpiredSignatureError):
            exp = _unverified(token).get("exp")
            return f"token expired at {_when(exp)}; sign in again for a fresh token"
        if isinstance(exc, jwt.ImmatureSignatureError):
            claims = _unverified(token)
            at = claims.get("nbf", claims.get("iat"))
            return (
                f"token not yet valid (valid from {_when(at)}, leeway {s.leeway:g} s); check "
                "the clocks of the identity provider and this server, or PODIUM_JWT_LEEWAY"
            )
        if isinstance(exc, jwt.InvalidIssuerError):
            return (
                f"wrong token issuer {_quote(_unverified(token).get('iss'))}; this server "
                f"accepts {s.issuer!r} (PODIUM_JWT_ISSUER)"
            )
        if isinstance(exc, jwt.InvalidAudienceError):
            return (
                f"wrong token audience {_quote(_unverified(token).get('aud'))}; this server "
                f"accepts {', '.join(map(repr, s.audience))} (PODIUM_JWT_AUDIENCE)"
            )
        if isinstance(exc, jwt.MissingRequiredClaimError):
            return f"token lacks the {exc.claim!r} claim"
        if isinstance(exc, jwt.InvalidSignatureError):
            return "bad token signature: it does not verify with the issuer's key"
        if isinstance(exc, jwt.InvalidAlgorithmError):
            return f"token algorithm refused: {exc}"
        if isinstance(exc, jwt.DecodeError):
            return f"malformed token: {exc}"
        return f"invalid token: {exc}"


def key_algorithms(jwk: Mapping[str, Any]) -> frozenset[str]:
    """The signature algorithms a JWK may verify (RFC 7517 section 4.4, RFC 7518 3.1).

    `alg` is optional in a JWK, so the key type decides: an RSA key verifies RS256/384/512
    and PS256/384/512, an EC key the ES algorithm of its curve (`crv`), an OKP key EdDSA
    (Ed25519, Ed448). A symmetric (`oct`) key or an unknown type verifies nothing here. A
    key's `alg` narrows this to the one algorithm it names; an `alg` its type cannot use
    (ES384 on a P-256 key, RS256 on an EC key) leaves nothing.
    """
    kty, crv = str(jwk.get("kty")), str(jwk.get("crv"))
    if kty == "RSA":
        fits = _RSA_ALGORITHMS
    else:
        curve = _CURVE_ALGORITHMS.get(kty, {}).get(crv)
        fits = frozenset({curve} if curve is not None else ())
    alg = jwk.get("alg")
    return fits if alg is None else fits & {alg}


def _jwk_members(key: PyJWK) -> Mapping[str, Any]:
    """The members of the JWK `key` was made from.

    PyJWT exposes `kty`, `kid` and `use` only, and its `algorithm_name` cannot tell a
    declared `alg` from its own guess. Should it stop keeping the members, the key is
    taken to declare the algorithm it was bound to: one algorithm, never more.
    """
    members = getattr(key, "_jwk_data", None)
    if isinstance(members, Mapping) and members.get("kty") == key.key_type:
        return members
    return {"kty": key.key_type, "alg": key.algorithm_name}


def _describe(jwk: Mapping[str, Any]) -> str:
    """A key's type for a message: "RSA", "EC P-256", "RSA, alg RS256"."""
    kind = " ".join(str(jwk[m]) for m in ("kty", "crv") if jwk.get(m) is not None)
    return f"{kind}, alg {jwk['alg']}" if jwk.get("alg") is not None else kind


def principal_of(claims: Mapping[str, Any], settings: JwtSettings) -> Principal:
    """podium's principal from verified claims (tenant, user, roles, and what to show).

    A claim name is looked up as given (namespaced claims such as
    "https://podium.example.com/roles" included), then as a dotted path into nested
    objects ("realm_access.roles").

    Raises:
        CredentialError: naming the missing or malformed claim.
    """
    tenant_claim, tenant = _first(claims, settings.tenant_claims)
    if tenant is None:
        raise CredentialError(
            f"token has no tenant claim (looked for {_names(settings.tenant_claims)}); "
            "add the claim at the identity provider or set PODIUM_JWT_TENANT_CLAIM to the "
            "claim that holds the tenant"
        )
    if not isinstance(tenant, str):
        raise CredentialError(
            f"tenant claim {tenant_claim!r} must be a string, got {_quote(tenant)}"
        )
    user_claim, user = _first(claims, settings.user_claims)
    if user is None:
        raise CredentialError(
            f"token has no user claim (looked for {_names(settings.user_claims)}); set "
            "PODIUM_JWT_USER_CLAIM to the claim that names the user"
        )
    if not isinstance(user, str) or not _printable(user, _MAX_USER):
        raise CredentialError(
            f"user claim {user_claim!r} must be a string of at most {_MAX_USER} printable "
            f"characters without spaces, got {_quote(user)}"
        )
    roles_claim, raw_roles = _first(claims, settings.roles_claims)
    roles = _roles(roles_claim, raw_roles)
    try:
        tenant_id = check_name(tenant, "tenant", f"tenant claim {tenant_claim!r}")
    except ConfigurationError as exc:
        raise CredentialError(str(exc)) from None
    name = next((v for c in DISPLAY_CLAIMS if isinstance(v := claims.get(c), str) and v), None)
    exp = claims.get("exp")
    return Principal(
        user,
        tenant_id,
        roles,
        credential="jwt",
        display_name=name[:_MAX_USER] if name else None,
        issuer=str(claims.get("iss")),
        expires_at=float(exp) if isinstance(exp, int | float) else None,
    )


class IssuerKeys:
    """The issuer's signing keys: found through discovery once, fetched and cached by
    PyJWT's `PyJWKClient`, refetched for an unknown key id at most once per cooldown.

    Args:
        settings: The issuer, JWKS URL, cache lifespan and cooldown.
        clock: Monotonic seconds (tests pass a fake one).
    """

    def __init__(self, settings: JwtSettings, *, clock: Any = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._client: PyJWKClient | None = None
        self._failed: tuple[float, str] | None = None
        self._fetching = threading.Lock()
        self._keys_failed: tuple[float, str] | None = None
        self._refreshed: float | None = None

    @property
    def jwks_url(self) -> str | None:
        """Where the keys come from (None until discovery has found it)."""
        return self._client.uri if self._client is not None else self._settings.jwks_url

    def key(self, kid: Any) -> PyJWK:
        """The signing key a token's `kid` names.

        Raises:
            KeysUnavailable: the JWKS (or discovery document) cannot be fetched.
            CredentialError: the key id is not in the issuer's key set.
        """
        client = self._jwks_client()
        claimed = False
        cached = _cached_signing_keys(client)
        if cached is not None and kid is not None:
            # A key of the cached set is found without waiting: a fetch in progress (a
            # rotation's refetch hanging on a slow issuer) must not hold up the tokens
            # of known keys, nor a made-up key id within the cooldown wait for it.
            found = client.match_kid(cached, kid)
            if found is not None:
                return found
            if not self._may_refresh():
                raise self._unknown(client, kid)
            claimed = True
        # One fetch at a time, and a failed fetch is remembered for the cooldown: during
        # an outage (or while the key set hangs) tokens, made-up ones included, do not
        # each cost a request to the issuer and a worker thread waiting on it.
        with self._fetching:
            failed = self._keys_failed
            if failed is not None and self._clock() - failed[0] < self._settings.jwks_cooldown:
                raise KeysUnavailable(failed[1])
            try:
                found = self._find(client, kid, claimed)
            except KeysUnavailable as exc:
                self._keys_failed = (self._clock(), str(exc))
                raise
            self._keys_failed = None
        if found is None:
            raise self._unknown(client, kid)
        return found

    def _unknown(self, client: PyJWKClient, kid: Any) -> CredentialError:
        return CredentialError(
            f"unknown token key id {_quote(kid)}: not in the issuer's key set at "
            f"{client.uri} (refetched for an unknown key id at most every "
            f"{self._settings.jwks_cooldown:g} s)"
        )

    def _find(self, client: PyJWKClient, kid: Any, claimed: bool) -> PyJWK | None:
        """The key `kid` names in the (cached or fetched) key set; None when absent.
        `claimed`: this call already holds the cooldown's one refetch."""
        try:
            keys = client.get_signing_keys()
            if kid is None:
                if len(keys) == 1:
                    return keys[0]
                raise CredentialError(
                    f"token has no 'kid' header and the issuer publishes {len(keys)} keys; "
                    "the identity provider must name the key it signs with"
                )
            found = client.match_kid(keys, kid)
            if found is None and (claimed or self._may_refresh()):
                # Unknown kid: the issuer may have rotated its keys. One refetch per
                # cooldown, so made-up key ids cannot make the server hammer the issuer.
                try:
                    found = client.match_kid(client.get_signing_keys(refresh=True), kid)
                except (jwt.PyJWKClientError, jwt.PyJWKSetError):
                    # The cached keys stay in use: a made-up key id during an outage must
                    # not stop the tokens they verify.
                    found = None
        except jwt.PyJWKClientConnectionError as exc:
            raise KeysUnavailable(
                f"cannot fetch the issuer's signing keys from {client.uri}: {exc}"
            ) from None
        except (jwt.PyJWKClientError, jwt.PyJWKSetError) as exc:
            raise KeysUnavailable(
                f"the issuer's key set at {client.uri} is unusable: {exc}"
            ) from None
        return found

    def _may_refresh(self) -> bool:
        """Whether an unknown key id may refetch the key set now (and note that it did)."""
        with self._lock:
            now = self._clock()
            if self._refreshed is not None and now - self._refreshed < self._settings.jwks_cooldown:
                return False
            self._refreshed = now
            return True

    def _jwks_client(self) -> PyJWKClient:
        with self._lock:
            if self._client is not None:
                return self._client
            s = self._settings
            url = s.jwks_url
            if url is None:
                url = self._discover()
            self._client = PyJWKClient(
                url,
                cache_jwk_set=True,
                lifespan=s.jwks_cache,
                timeout=s.timeout,
                headers={"user-agent": "podium"},
            )
            return self._client

    def _discover(self) -> str:
        """`jwks_uri` of the issuer's discovery document; a failure is remembered for the
        cooldown, so an unreachable provider is not asked on every request."""
        s = self._settings
        now = self._clock()
        if self._failed is not None and now - self._failed[0] < s.jwks_cooldown:
            raise KeysUnavailable(self._failed[1])
        url = s.issuer.rstrip("/") + DISCOVERY_PATH
        try:
            document = _fetch_json(url, s.timeout)
            issuer, jwks_uri = document.get("issuer"), document.get("jwks_uri")
            if issuer != s.issuer:
                # OpenID Connect Discovery 1.0, section 4.3: they must be identical.
                raise ValueError(
                    f"it names issuer {_quote(issuer)}, not PODIUM_JWT_ISSUER {s.issuer!r}"
                )
            if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
                raise ValueError(f"its jwks_uri is {_quote(jwks_uri)}, not an http(s) URL")
            try:
                _check_transport("its jwks_uri", jwks_uri, s.allow_http)
            except ConfigurationError as exc:
                raise ValueError(str(exc)) from None
        except (OSError, ValueError) as exc:
            message = (
                f"cannot read the issuer's discovery document {url}: {exc}; check "
                "PODIUM_JWT_ISSUER or set PODIUM_JWT_JWKS_URL"
            )
            self._failed = (now, message)
            raise KeysUnavailable(message) from None
        self._failed = None
        return jwks_uri


def _check_transport(what: str, url: str, allow_http: bool) -> None:
    """Keys come over https, or over http from this machine, or where allowed.

    Over plain http anyone on the network path can hand the server keys of their own and
    then sign tokens for any user of any tenant.

    Raises:
        ConfigurationError: naming `what`, the URL and the way out.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" or allow_http or _is_loopback(parts.hostname or ""):
        return
    raise ConfigurationError(
        f"{what} {url!r} is plain http: the issuer's keys must come over https (over http "
        "anyone on the network path can swap them and sign tokens for anyone); http is "
        "accepted from localhost only, or anywhere with PODIUM_JWT_ALLOW_HTTP=true on a "
        "network you trust"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _cached_signing_keys(client: PyJWKClient) -> list[PyJWK] | None:
    """The signing keys of the client's key set while its cache is fresh (None otherwise),
    without fetching: the keys `PyJWKClient.get_signing_keys` would return from its cache."""
    cache = client.jwk_set_cache
    jwk_set = cache.get() if cache is not None else None
    if jwk_set is None:
        return None
    return [k for k in jwk_set.keys if k.public_key_use in ("sig", None) and k.key_id]


def _fetch_json(url: str, timeout: float) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"user-agent": "podium"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = json.load(response)
    except URLError as exc:
        raise OSError(str(exc.reason)) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def _first(claims: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str, Any]:
    """The first of `names` present in `claims` (None when none is)."""
    for name in names:
        value = _claim(claims, name)
        if value is not None and value != "":
            return name, value
    return names[0], None


def _claim(claims: Mapping[str, Any], name: str) -> Any:
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _roles(claim: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        # Some providers send a space-separated string, like OAuth's `scope`.
        value = value.split()
    if not isinstance(value, list) or not all(
        isinstance(r, str) and _printable(r, _MAX_ROLE) for r in value
    ):
        raise CredentialError(
            f"roles claim {claim!r} must be a list of role names (strings of at most "
            f"{_MAX_ROLE} printable characters without spaces), got {_quote(value)}"
        )
    return tuple(dict.fromkeys(value))


def _printable(text: str, limit: int) -> bool:
    return 0 < len(text) <= limit and text.isprintable() and not any(c.isspace() for c in text)


def _unverified(token: str) -> dict[str, Any]:
    try:
        return jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return {}


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(repr(n) for n in names)


def _quote(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _when(at: Any) -> str:
    if not isinstance(at, int | float) or not math.isfinite(at):
        return repr(at)
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
