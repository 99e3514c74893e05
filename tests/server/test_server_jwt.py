"""Identity-provider JWTs without a LangGraph server: settings, verification, claims, keys.

The identity provider is real HTTP on 127.0.0.1 (`tests/server/idp.py`): discovery
document and JWKS, keys generated with `cryptography`. The same cases run against
`langgraph dev` in `test_server_signin.py`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from podium.errors import ConfigurationError
from podium.server._credentials import CredentialError, Principal
from podium.server._jwt import (
    IssuerKeys,
    JwtSettings,
    JwtVerifier,
    KeysUnavailable,
    jwt_settings_from_env,
    key_algorithms,
    principal_of,
)

from .conftest import _free_port
from .idp import (
    AUDIENCE,
    IdentityProvider,
    SigningKey,
    claims_of,
    hs256_with_public_key,
    tampered,
    unsigned,
)

RSA, EC = SigningKey.rsa("rsa-1"), SigningKey.ec("ec-1")


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider(RSA, EC)
    try:
        yield provider
    finally:
        provider.close()


def settings(idp: IdentityProvider, **changes) -> JwtSettings:
    base = {"issuer": idp.issuer, "audience": (AUDIENCE,), "algorithms": ("RS256", "ES256")}
    return JwtSettings(**{**base, **changes})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- settings -----------------------------------------------------------------------------


def test_settings_from_the_environment() -> None:
    assert jwt_settings_from_env({}) is None
    assert jwt_settings_from_env({"PODIUM_JWT_ISSUER": "  "}) is None
    s = jwt_settings_from_env(
        {
            "PODIUM_JWT_ISSUER": "https://acme.eu.auth0.com/",
            "PODIUM_JWT_AUDIENCE": "https://podium.example.com/api, podium-app",
            "PODIUM_JWT_ALGORITHMS": "RS256,ES256",
            "PODIUM_JWT_LEEWAY": "10",
            "PODIUM_JWT_TENANT_CLAIM": "org_id",
            "PODIUM_JWT_ROLES_CLAIM": "https://podium.example.com/roles",
            "PODIUM_JWT_JWKS_COOLDOWN": "60",
        }
    )
    assert s == JwtSettings(
        issuer="https://acme.eu.auth0.com/",
        audience=("https://podium.example.com/api", "podium-app"),
        algorithms=("RS256", "ES256"),
        leeway=10.0,
        tenant_claims=("org_id",),
        roles_claims=("https://podium.example.com/roles",),
        jwks_cooldown=60.0,
    )
    defaults = jwt_settings_from_env(
        {"PODIUM_JWT_ISSUER": "https://idp/", "PODIUM_JWT_AUDIENCE": "a"}
    )
    assert defaults is not None
    assert (defaults.algorithms, defaults.user_claims) == (("RS256",), ("sub",))
    assert (defaults.tenant_claims, defaults.roles_claims) == (
        ("tenant", "org_id"),
        ("roles", "groups"),
    )
    assert defaults.jwks_url is None  # keys through the discovery document


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"PODIUM_JWT_AUDIENCE": ""}, "PODIUM_JWT_AUDIENCE is required"),
        ({"PODIUM_JWT_ALGORITHMS": "HS256"}, "'HS256' not accepted; use asymmetric"),
        ({"PODIUM_JWT_ALGORITHMS": "RS256,none"}, "'none' not accepted"),
        ({"PODIUM_JWT_ISSUER": "acme.auth0.com"}, "must be the issuer's URL"),
        ({"PODIUM_JWT_JWKS_URL": "file:///etc/keys"}, "PODIUM_JWT_JWKS_URL must be an http"),
        ({"PODIUM_JWT_LEEWAY": "soon"}, "PODIUM_JWT_LEEWAY must be a number of seconds"),
        ({"PODIUM_JWT_LEEWAY": "-1"}, "PODIUM_JWT_LEEWAY must be seconds between 0"),
        ({"PODIUM_JWT_JWKS_CACHE": "0"}, "PODIUM_JWT_JWKS_CACHE must be more than 0"),
        ({"PODIUM_JWT_TENANT_CLAIM": " , "}, "PODIUM_JWT_TENANT_CLAIM must name at least one"),
        (
            {"PODIUM_JWT_ISSUER": "http://idp.example.com/"},
            "document\\) 'http://idp.example.com/' is plain http: the issuer's keys must",
        ),
        (
            {"PODIUM_JWT_JWKS_URL": "http://10.0.0.7/jwks.json"},
            "PODIUM_JWT_JWKS_URL 'http://10.0.0.7/jwks.json' is plain http",
        ),
        ({"PODIUM_JWT_ALLOW_HTTP": "maybe"}, "PODIUM_JWT_ALLOW_HTTP must be true or false"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], problem: str) -> None:
    base = {"PODIUM_JWT_ISSUER": "https://idp.example.com/", "PODIUM_JWT_AUDIENCE": "podium"}
    with pytest.raises(ConfigurationError, match=problem):
        jwt_settings_from_env({**base, **env})


def test_keys_over_plain_http_only_from_this_machine_or_when_allowed() -> None:
    """Over http anyone on the network path could hand the server keys of their own."""
    for url in ("http://127.0.0.1:8080/", "http://localhost:8080/realms/acme", "http://[::1]/"):
        assert JwtSettings(issuer=url, audience=("a",)).issuer == url
    keycloak = {
        "PODIUM_JWT_ISSUER": "http://keycloak:8080/realms/acme",
        "PODIUM_JWT_AUDIENCE": "podium",
    }
    with pytest.raises(ConfigurationError, match="PODIUM_JWT_ALLOW_HTTP=true"):
        jwt_settings_from_env(keycloak)
    allowed = jwt_settings_from_env({**keycloak, "PODIUM_JWT_ALLOW_HTTP": "true"})
    assert allowed is not None and allowed.allow_http
    # An https JWKS URL makes the issuer a name only: it is not fetched.
    entra = JwtSettings(
        issuer="http://sts.windows.net/tid/",
        audience=("a",),
        jwks_url="https://login.microsoftonline.com/common/discovery/v2.0/keys",
    )
    assert entra.jwks_url is not None


def test_a_discovery_document_pointing_to_keys_over_plain_http_is_refused(
    idp: IdentityProvider,
) -> None:
    idp.advertised_jwks_uri = "http://keys.example.com/jwks.json"
    keys = IssuerKeys(settings(idp))
    with pytest.raises(
        KeysUnavailable, match=r"its jwks_uri 'http://keys\.example\.com/jwks\.json'"
    ):
        keys.key("rsa-1")
    assert idp.jwks_fetches == 0


# -- claims -------------------------------------------------------------------------------


def test_claims_map_to_the_principal_by_configuration() -> None:
    s = JwtSettings(issuer="https://idp/", audience=("a",))
    claims = {
        "iss": "https://idp/",
        "sub": "auth0|ana",
        "org_id": "org_acme",
        "groups": ["editor", "viewer", "editor"],
        "email": "ana@acme.example",
        "exp": 1_900_000_000,
    }
    who = principal_of(claims, s)
    assert who == Principal("auth0|ana", "org_acme", ("editor", "viewer"))
    assert (who.credential, who.display_name, who.issuer, who.expires_at) == (
        "jwt",
        "ana@acme.example",
        "https://idp/",
        1_900_000_000.0,
    )
    # `tenant` wins over `org_id`, `roles` over `groups`; a string of roles is split.
    both = {**claims, "tenant": "acme", "roles": "editor publisher"}
    assert principal_of(both, s) == Principal("auth0|ana", "acme", ("editor", "publisher"))
    assert principal_of({**claims, "groups": None}, s).roles == ()

    keycloak = JwtSettings(
        issuer="https://idp/",
        audience=("a",),
        tenant_claims=("tenant",),
        user_claims=("preferred_username",),
        roles_claims=("realm_access.roles",),
    )
    token = {"tenant": "acme", "preferred_username": "ana", "realm_access": {"roles": ["editor"]}}
    assert principal_of(token, keycloak) == Principal("ana", "acme", ("editor",))
    auth0 = JwtSettings(
        issuer="https://idp/",
        audience=("a",),
        roles_claims=("https://podium.example.com/roles",),
    )
    namespaced = {"sub": "x", "tenant": "acme", "https://podium.example.com/roles": ["editor"]}
    assert principal_of(namespaced, auth0).roles == ("editor",)


@pytest.mark.parametrize(
    ("claims", "problem"),
    [
        ({"sub": "ana"}, "token has no tenant claim (looked for 'tenant', 'org_id')"),
        ({"sub": "ana", "tenant": ""}, "token has no tenant claim"),
        ({"sub": "ana", "tenant": ["acme"]}, "tenant claim 'tenant' must be a string"),
        ({"sub": "ana", "tenant": "ac me"}, "tenant claim 'tenant': bad tenant 'ac me'"),
        ({"tenant": "acme"}, "token has no user claim (looked for 'sub')"),
        ({"tenant": "acme", "sub": "a b"}, "user claim 'sub' must be a string"),
        ({"tenant": "acme", "sub": "ana", "roles": {"x": 1}}, "roles claim 'roles' must be"),
        ({"tenant": "acme", "sub": "ana", "roles": ["ok", 3]}, "roles claim 'roles' must be"),
    ],
)
def test_claims_without_a_tenant_or_user_are_refused(claims: dict, problem: str) -> None:
    with pytest.raises(CredentialError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        principal_of(claims, JwtSettings(issuer="https://idp/", audience=("a",)))


# -- verification against the identity provider --------------------------------------------


def test_a_valid_token_names_its_user(idp: IdentityProvider) -> None:
    verifier = JwtVerifier(settings(idp))
    token = idp.token(RSA, roles=["editor"], name="Ana Lima")
    who = verifier.verify(token)
    assert who == Principal("auth0|ana", "acme", ("editor",))
    assert (who.display_name, who.issuer) == ("Ana Lima", idp.issuer)
    assert verifier.verify(idp.token(EC, tenant="globex")).tenant_id == "globex"  # ES256
    # Keys came through discovery, once, and stay cached.
    assert (idp.discovery_fetches, idp.jwks_fetches) == (1, 1)
    verifier.verify(idp.token(RSA))
    assert idp.jwks_fetches == 1


def test_each_refusal_says_what_is_wrong(idp: IdentityProvider) -> None:
    verifier = JwtVerifier(settings(idp, leeway=5))
    now = time.time()
    good = idp.token(RSA)
    cases = {
        "token expired at": idp.token(RSA, now=now - 3600),
        "token not yet valid": idp.token(RSA, nbf=int(now + 600)),
        "token not yet valid (valid from": idp.token(RSA, now=now + 600),  # iat ahead
        "wrong token issuer 'https://evil.example/'": idp.token(RSA, iss="https://evil.example/"),
        "wrong token audience 'https://other.app/'": idp.token(RSA, aud="https://other.app/"),
        "token lacks the 'exp' claim": idp.token(RSA, exp=None),
        "token lacks the 'aud' claim": idp.token(RSA, aud=None),
        "token algorithm 'none' is not accepted": unsigned(claims_of(good), RSA.kid),
        "token algorithm 'HS256' is not accepted": hs256_with_public_key(claims_of(good), RSA),
        "bad token signature": tampered(good, tenant="globex"),
        "unknown token key id 'rsa-9'": idp.token(SigningKey.rsa("rsa-9")),
        "token has no tenant claim (looked for 'tenant', 'org_id')": idp.token(RSA, tenant=None),
        "malformed token": "not-a-jwt",
    }
    for problem, token in cases.items():
        with pytest.raises(CredentialError) as refused:
            verifier.verify(token)
        assert problem in str(refused.value), (problem, str(refused.value))
    # An RS256 token signed by a key the issuer does not publish, under a published kid.
    impostor = SigningKey("rsa-1", "RS256", SigningKey.rsa("x").private)
    with pytest.raises(CredentialError, match="bad token signature"):
        verifier.verify(idp.token(impostor))
    # An ES256 key's kid on an RS256 token: the key's own algorithm decides.
    with pytest.raises(CredentialError, match="token algorithm 'RS256' does not match its key"):
        verifier.verify(idp.token(SigningKey("ec-1", "RS256", RSA.private)))


# Keys published without `alg` (RFC 7517: optional), and two that declare one.
BARE_RSA = SigningKey.rsa("rsa-bare").without_alg()
BARE_P256 = SigningKey.ec("p256-bare").without_alg()
BARE_P384 = SigningKey.ec("p384-bare", ec.SECP384R1()).without_alg()
BARE_ED25519 = SigningKey.ed25519("ed-bare").without_alg()
BARE_SECRET = SigningKey.secret("oct-bare").without_alg()
RS256_ONLY = SigningKey.rsa("rsa-rs256")
# A P-256 key whose JWK claims ES384 (an algorithm of another curve).
MISLABELLED = SigningKey("p256-es384", "ES384", SigningKey.ec("x").private)
OTHER_P384 = SigningKey.ec("other", ec.SECP384R1())
ALGORITHMS = ("RS256", "RS512", "PS256", "ES256", "ES384", "EdDSA")


@pytest.fixture
def bare_idp() -> Iterator[IdentityProvider]:
    keys = (BARE_RSA, BARE_P256, BARE_P384, BARE_ED25519, BARE_SECRET, RS256_ONLY, MISLABELLED)
    provider = IdentityProvider(*keys)
    try:
        yield provider
    finally:
        provider.close()


@pytest.mark.parametrize(
    ("signer", "problem"),
    [
        # Without `alg`, an RSA key verifies every RSA algorithm the server accepts.
        (BARE_RSA, None),
        (BARE_RSA.signing_as("rsa-bare", "PS256"), None),
        (BARE_RSA.signing_as("rsa-bare", "RS512"), None),
        (BARE_RSA.signing_as("rsa-bare", "RS384"), "token algorithm 'RS384' is not accepted"),
        (
            BARE_P256.signing_as("rsa-bare"),
            "token algorithm 'ES256' does not match its key 'rsa-bare' "
            "(RSA: PS256, RS256, RS512 accepted)",
        ),
        # An EC key verifies the algorithm of its curve only.
        (BARE_P256, None),
        (BARE_P384, None),
        (
            BARE_RSA.signing_as("p256-bare"),
            "token algorithm 'RS256' does not match its key 'p256-bare' (EC P-256: ES256 accepted)",
        ),
        (
            BARE_RSA.signing_as("p256-bare", "PS256"),
            "token algorithm 'PS256' does not match its key 'p256-bare'",
        ),
        (
            OTHER_P384.signing_as("p256-bare"),
            "token algorithm 'ES384' does not match its key 'p256-bare' (EC P-256: ES256 accepted)",
        ),
        (
            BARE_P256.signing_as("p384-bare"),
            "token algorithm 'ES256' does not match its key 'p384-bare' (EC P-384: ES384 accepted)",
        ),
        (BARE_ED25519, None),
        (
            BARE_P256.signing_as("ed-bare"),
            "token algorithm 'ES256' does not match its key 'ed-bare' "
            "(OKP Ed25519: EdDSA accepted)",
        ),
        # A symmetric key verifies nothing: HS256 is refused before any key is looked at,
        # and no other algorithm is one of its own.
        (BARE_SECRET, "token algorithm 'HS256' is not accepted"),
        (
            BARE_RSA.signing_as("oct-bare"),
            "token algorithm 'RS256' does not match its key 'oct-bare' (oct: none accepted)",
        ),
        # A declared `alg` decides, and one the key's type cannot use leaves nothing.
        (RS256_ONLY, None),
        (
            RS256_ONLY.signing_as("rsa-rs256", "PS256"),
            "token algorithm 'PS256' does not match its key 'rsa-rs256' "
            "(RSA, alg RS256: RS256 accepted)",
        ),
        (
            OTHER_P384.signing_as("p256-es384"),
            "token algorithm 'ES384' does not match its key 'p256-es384' "
            "(EC P-256, alg ES384: none accepted)",
        ),
    ],
    ids=lambda v: f"{v.kid}:{v.alg}" if isinstance(v, SigningKey) else "",
)
def test_the_key_type_and_curve_decide_the_algorithm(
    bare_idp: IdentityProvider, signer: SigningKey, problem: str | None
) -> None:
    verifier = JwtVerifier(settings(bare_idp, algorithms=ALGORITHMS))
    token = bare_idp.token(signer)
    if problem is None:
        assert verifier.verify(token).identity == "auth0|ana"
        return
    with pytest.raises(CredentialError) as refused:
        verifier.verify(token)
    assert problem in str(refused.value)


@pytest.mark.parametrize(
    ("jwk", "algorithms"),
    [
        ({"kty": "RSA"}, {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}),
        ({"kty": "RSA", "alg": "PS384"}, {"PS384"}),
        ({"kty": "RSA", "alg": "ES256"}, set()),
        ({"kty": "RSA", "alg": "HS256"}, set()),
        ({"kty": "EC", "crv": "P-256"}, {"ES256"}),
        ({"kty": "EC", "crv": "P-384"}, {"ES384"}),
        ({"kty": "EC", "crv": "P-521"}, {"ES512"}),
        ({"kty": "EC", "crv": "P-256", "alg": "ES512"}, set()),
        ({"kty": "EC"}, set()),  # `crv` is required for EC keys
        ({"kty": "EC", "crv": "secp256k1"}, set()),
        ({"kty": "OKP", "crv": "Ed25519"}, {"EdDSA"}),
        ({"kty": "OKP", "crv": "Ed448"}, {"EdDSA"}),
        ({"kty": "OKP", "crv": "X25519"}, set()),  # key agreement, not signatures
        ({"kty": "oct"}, set()),
        ({"kty": "oct", "alg": "HS256"}, set()),
        ({"kty": "unknown"}, set()),
        ({}, set()),
    ],
)
def test_key_algorithms(jwk: dict, algorithms: set[str]) -> None:
    assert key_algorithms(jwk) == algorithms


def test_leeway_absorbs_clock_skew(idp: IdentityProvider) -> None:
    late = idp.token(RSA, now=time.time() - 610)  # expired 10 s ago
    assert JwtVerifier(settings(idp, leeway=30)).verify(late).identity == "auth0|ana"
    with pytest.raises(CredentialError, match="expired"):
        JwtVerifier(settings(idp, leeway=0)).verify(late)


def test_an_unknown_kid_refetches_the_keys_at_most_once_per_cooldown(
    idp: IdentityProvider,
) -> None:
    clock = Clock()
    verifier = JwtVerifier(settings(idp, jwks_cooldown=30))
    verifier._keys = IssuerKeys(verifier.settings, clock=clock)
    assert verifier.verify(idp.token(RSA)).tenant_id == "acme"
    assert idp.jwks_fetches == 1
    rotated = SigningKey.rsa("rsa-2")
    token = idp.token(rotated)
    with pytest.raises(CredentialError, match="unknown token key id 'rsa-2'"):
        verifier.verify(token)
    assert idp.jwks_fetches == 2  # one refetch: the issuer may have rotated
    for n in range(20):
        with pytest.raises(CredentialError, match="unknown token key id"):
            verifier.verify(idp.token(SigningKey.rsa("rsa-2"), jti=str(n)))
    assert idp.jwks_fetches == 2  # made-up key ids cost nothing within the cooldown

    idp.publish(RSA, rotated)  # the issuer rotates
    clock.now += 29
    with pytest.raises(CredentialError, match="unknown token key id 'rsa-2'"):
        verifier.verify(token)
    assert idp.jwks_fetches == 2
    clock.now += 1
    assert verifier.verify(token).identity == "auth0|ana"
    assert idp.jwks_fetches == 3
    assert verifier.verify(idp.token(RSA)).identity == "auth0|ana"  # the old key still works


def test_an_issuer_whose_keys_cannot_be_fetched_is_asked_at_most_once_per_cooldown(
    idp: IdentityProvider,
) -> None:
    """During an outage of the key set, tokens (any token, even made up) must not turn
    into one fetch each: a failure is remembered for the cooldown, like discovery's."""
    clock = Clock()
    verifier = JwtVerifier(settings(idp, jwks_url=idp.jwks_url, jwks_cooldown=30))
    verifier._keys = IssuerKeys(verifier.settings, clock=clock)
    idp.failing = True
    for n in range(20):
        with pytest.raises(KeysUnavailable, match="cannot fetch the issuer's signing keys"):
            verifier.verify(idp.token(RSA, jti=str(n)))
    assert idp.jwks_fetches == 1
    idp.failing = False
    clock.now += 29
    with pytest.raises(KeysUnavailable, match="cannot fetch"):
        verifier.verify(idp.token(RSA))
    assert idp.jwks_fetches == 1
    clock.now += 1
    assert verifier.verify(idp.token(RSA)).identity == "auth0|ana"
    assert idp.jwks_fetches == 2
    # A made-up key id during an outage refetches once and fails, but the cached keys
    # keep verifying the tokens they signed.
    idp.failing = True
    clock.now += 30
    with pytest.raises(CredentialError, match="unknown token key id 'made-up'"):
        verifier.verify(idp.token(SigningKey.rsa("made-up")))
    assert idp.jwks_fetches == 3
    assert verifier.verify(idp.token(RSA)).identity == "auth0|ana"


def test_a_refetch_hanging_on_the_issuer_holds_up_no_token_of_a_known_key(
    idp: IdentityProvider,
) -> None:
    """A made-up key id makes the server refetch the key set (once per cooldown); while
    that fetch hangs on a slow issuer, tokens of cached keys, and other made-up key ids,
    are answered at once: none of them waits for it (nor holds a worker thread)."""
    verifier = JwtVerifier(settings(idp, jwks_url=idp.jwks_url, jwks_cooldown=30, timeout=30))
    assert verifier.verify(idp.token(RSA)).identity == "auth0|ana"  # keys cached
    refused: list[Exception] = []

    def made_up() -> None:
        try:
            verifier.verify(idp.token(SigningKey.rsa("rsa-9")))
        except CredentialError as exc:
            refused.append(exc)

    with idp.hanging():
        stray = threading.Thread(target=made_up)
        stray.start()
        deadline = time.monotonic() + 30
        while idp.jwks_fetches < 2:  # the refetch reached the issuer, which holds it
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert verifier.verify(idp.token(RSA)).identity == "auth0|ana"
        assert verifier.verify(idp.token(EC, tenant="globex")).tenant_id == "globex"
        with pytest.raises(CredentialError, match="unknown token key id 'rsa-8'"):
            verifier.verify(idp.token(SigningKey.rsa("rsa-8")))  # within the cooldown
        assert stray.is_alive() and not refused  # all of the above while the fetch hung
    stray.join(timeout=30)
    assert "unknown token key id 'rsa-9'" in str(refused[0])
    assert idp.jwks_fetches == 2


def test_a_token_without_kid_needs_an_issuer_with_one_key(idp: IdentityProvider) -> None:
    import jwt

    claims = claims_of(idp.token(RSA))
    bare = jwt.encode(claims, RSA.private, algorithm="RS256")
    with pytest.raises(CredentialError, match="no 'kid' header and the issuer publishes 2 keys"):
        JwtVerifier(settings(idp)).verify(bare)
    idp.publish(RSA)
    assert JwtVerifier(settings(idp)).verify(bare).identity == "auth0|ana"


def test_a_configured_jwks_url_skips_discovery(idp: IdentityProvider) -> None:
    verifier = JwtVerifier(settings(idp, jwks_url=idp.jwks_url))
    assert verifier.verify(idp.token(RSA)).identity == "auth0|ana"
    assert (idp.discovery_fetches, idp.jwks_fetches) == (0, 1)


def test_an_unreachable_or_wrong_issuer_is_keys_unavailable(idp: IdentityProvider) -> None:
    clock = Clock()
    down = f"http://127.0.0.1:{_free_port()}/"
    keys = IssuerKeys(settings(idp, issuer=down, jwks_cooldown=30), clock=clock)
    with pytest.raises(KeysUnavailable, match="cannot read the issuer's discovery document"):
        keys.key("rsa-1")
    with pytest.raises(KeysUnavailable, match="cannot read"):  # remembered, not refetched
        keys.key("rsa-1")
    # A discovery document must name the configured issuer (OIDC Discovery 4.3).
    other = IssuerKeys(settings(idp, issuer=idp.url + "/other/"))
    with pytest.raises(KeysUnavailable, match="cannot read"):
        other.key("rsa-1")
    assert idp.discovery_fetches == 0  # /other/.well-known/... is a 404 here
    gone = JwtVerifier(settings(idp, jwks_url=f"{down}jwks.json"))
    with pytest.raises(KeysUnavailable, match="cannot fetch the issuer's signing keys"):
        gone.verify(idp.token(RSA))


def test_a_discovery_document_naming_another_issuer_is_refused(idp: IdentityProvider) -> None:
    # The provider's discovery document names `idp.issuer`; expect it without the slash.
    keys = IssuerKeys(settings(idp, issuer=idp.url))
    with pytest.raises(KeysUnavailable, match=f"names issuer '{idp.issuer}', not"):
        keys.key("rsa-1")
    assert idp.discovery_fetches == 1
