"""A stand-in identity provider on 127.0.0.1: discovery document, JWKS, and token minting.

Keys are generated here with `cryptography`; tokens are signed with PyJWT (or by hand for
the forgeries PyJWT will not make). `publish()` changes the key set the JWKS endpoint
serves (key rotation); `failing` makes it answer 503; `hanging()` makes it answer only
when the block ends (a slow issuer); `jwks_fetches` counts how often it was asked.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

AUDIENCE = "https://podium.test/api"


@dataclass(frozen=True)
class SigningKey:
    """A private key (bytes: a symmetric secret), its key id and algorithm; `declares`:
    whether its JWK names the algorithm (`alg` is optional in a JWK)."""

    kid: str
    alg: str
    private: Any
    declares: bool = True

    @classmethod
    def rsa(cls, kid: str) -> SigningKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str, curve: ec.EllipticCurve | None = None) -> SigningKey:
        curve = curve or ec.SECP256R1()
        alg = {256: "ES256", 384: "ES384", 521: "ES512"}[curve.key_size]
        return cls(kid, alg, ec.generate_private_key(curve))

    @classmethod
    def ed25519(cls, kid: str) -> SigningKey:
        return cls(kid, "EdDSA", ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def secret(cls, kid: str) -> SigningKey:
        return cls(kid, "HS256", b"s" * 32)

    def without_alg(self) -> SigningKey:
        """The same key, published without `alg`."""
        return replace(self, declares=False)

    def signing_as(self, kid: str, alg: str | None = None) -> SigningKey:
        """This private key presented under another key id (and header `alg`)."""
        return replace(self, kid=kid, alg=alg or self.alg)

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        secret = isinstance(self.private, bytes)
        public = json.loads(algorithm.to_jwk(self.private if secret else self.private.public_key()))
        alg = {"alg": self.alg} if self.declares else {}
        return {**public, "kid": self.kid, **alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class IdentityProvider:
    """Serves `/.well-known/openid-configuration` and `/jwks.json` until `close()`."""

    def __init__(self, *keys: SigningKey) -> None:
        self._lock = threading.Lock()
        #: The keys it was started with (`publish` changes what it serves, not this).
        self.keys = keys
        self._keys = list(keys)
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        #: While True the JWKS endpoint answers 503 (an outage).
        self.failing = False
        #: The `jwks_uri` the discovery document names (None: this provider's own).
        self.advertised_jwks_uri: str | None = None
        #: Cleared while the JWKS endpoint hangs (see `hanging`).
        self._answering = threading.Event()
        self._answering.set()
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    with idp._lock:
                        idp.discovery_fetches += 1
                    body = {
                        "issuer": idp.issuer,
                        "jwks_uri": idp.advertised_jwks_uri or idp.jwks_url,
                    }
                elif self.path == "/jwks.json":
                    with idp._lock:
                        idp.jwks_fetches += 1
                        failing = idp.failing
                        body = {"keys": [k.jwk() for k in idp._keys]}
                    idp._answering.wait(timeout=60)
                    if failing:
                        self.send_error(503)
                        return
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def issuer(self) -> str:
        return f"{self.url}/"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks.json"

    def publish(self, *keys: SigningKey) -> None:
        """Serve these keys from now on (a rotation)."""
        with self._lock:
            self._keys = list(keys)

    @contextlib.contextmanager
    def hanging(self) -> Iterator[None]:
        """Within the block, JWKS requests are counted but answered only when it ends."""
        self._answering.clear()
        try:
            yield
        finally:
            self._answering.set()

    def token(
        self,
        key: SigningKey,
        *,
        lifetime: float = 600,
        now: float | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A token signed with `key`: iss, aud, sub, tenant, iat and exp unless overridden
        (a claim given as None is left out)."""
        now = time.time() if now is None else now
        payload = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "auth0|ana",
            "tenant": "acme",
            "iat": int(now),
            "exp": int(now + lifetime),
            **claims,
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(
            payload, key.private, algorithm=key.alg, headers={"kid": key.kid, **(headers or {})}
        )

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def unsigned(claims: dict[str, Any], kid: str) -> str:
    """An `alg: none` token (no signature)."""
    return f"{_segment({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_segment(claims)}."


def hs256_with_public_key(claims: dict[str, Any], key: SigningKey) -> str:
    """An HS256 token whose HMAC secret is the issuer's public key (the key-confusion attack:
    a verifier that lets the token pick the algorithm would check it with the public key)."""
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': key.kid})}.{_segment(claims)}"
    mac = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def tampered(token: str, **changes: Any) -> str:
    """`token` with claims changed and its original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{_segment({**claims, **changes})}.{signature}"


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def _segment(data: dict[str, Any]) -> str:
    return _b64(json.dumps(data, separators=(",", ":")).encode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
