"""Credentials of the server, without a server: API keys, bearer tokens, webhook signatures,
which credential a request's headers carry, and the replay guard on podium's database."""

from __future__ import annotations

import hashlib
import re

import pytest

from podium.errors import ConfigurationError
from podium.server import (
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
from podium.server._credentials import lookup_api_key, plain_api_keys
from podium.server._replay import ReplayGuard
from podium.server._signin import sign_in_from_env
from podium.server.keys import ApiKeys
from podium.storage.database import SqliteDatabase

NOW = 1_800_000_000.0


def test_api_keys_map_to_principals() -> None:
    keys = parse_api_keys("k1=acme:ana:editor+admin; k2=acme:bob\nk3=globex:gus:")
    assert lookup_api_key(keys, "k1") == Principal("ana", "acme", ("editor", "admin"))
    assert lookup_api_key(keys, " k2 ") == Principal("bob", "acme", ())
    assert lookup_api_key(keys, "k3").roles == ()
    assert "k1" not in keys  # kept hashed
    with pytest.raises(CredentialError, match="unknown API key"):
        lookup_api_key(keys, "k4")


def test_api_keys_may_be_configured_as_digests() -> None:
    digest = hashlib.sha256(b"k1-secret").hexdigest()
    text = f"sha256:{digest}=acme:ana:editor; dev-key=acme:bob"
    keys = parse_api_keys(text)
    assert lookup_api_key(keys, "k1-secret") == Principal("ana", "acme", ("editor",))
    assert lookup_api_key(keys, "k1-secret").credential == "api_key"
    assert lookup_api_key(keys, "dev-key").identity == "bob"
    with pytest.raises(CredentialError, match="unknown API key"):
        lookup_api_key(keys, f"sha256:{digest}")  # the digest is not the key
    assert plain_api_keys(text) == 1
    with pytest.raises(ConfigurationError, match="entry 1: a hashed key is 'sha256:' and 64"):
        parse_api_keys("sha256:abc=acme:ana")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("k1", "entry 1 must look like"),
        ("k1=acme", "entry 1 must look like"),
        ("ok=a:b;=acme:ana", "entry 2 must look like"),
        ("k1=acme:ana:editor:extra", "entry 1 must look like"),
        ("k1=ac me:ana", "bad tenant 'ac me'"),
        ("k1=acme:ana;k1=acme:bob", "repeats a key"),
    ],
)
def test_malformed_api_keys_name_the_entry_never_the_key(text: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem) as info:
        parse_api_keys(text)
    assert "k1=" not in str(info.value)


def test_tokens_round_trip_and_refuse_forgery_and_expiry() -> None:
    token = sign_token("s", tenant_id="acme", identity="ana", roles=["editor"], now=NOW)
    assert verify_token("s", token, now=NOW + 10) == Principal("ana", "acme", ("editor",))
    with pytest.raises(CredentialError, match="bad token signature"):
        verify_token("other", token, now=NOW)
    head, _payload, signature = token.split(".")
    forged = sign_token("x", tenant_id="globex", identity="ana", now=NOW).split(".")[1]
    with pytest.raises(CredentialError, match="bad token signature"):
        verify_token("s", f"{head}.{forged}.{signature}", now=NOW)
    with pytest.raises(CredentialError, match="expired"):
        verify_token("s", token, now=NOW + 3600)
    for bad in ("", "abc", "pdm1.x", "jwt.a.b", "pdm1.!!.??"):
        with pytest.raises(CredentialError):
            verify_token("s", bad, now=NOW)


def test_the_headers_choose_the_credential(tmp_path) -> None:
    db = SqliteDatabase(str(tmp_path / "podium.db"))
    stored, _ = ApiKeys(db).create("initech", "ivy", ["editor"])
    env = {"PODIUM_API_KEYS": "k1=acme:ana:editor", "PODIUM_TOKEN_SECRET": "s"}
    sign_in = sign_in_from_env(env, lambda: ApiKeys(db))
    token = sign_token("s", tenant_id="globex", identity="gus")

    def who(**headers: str) -> Principal:
        return sign_in.authenticate({k.encode(): v.encode() for k, v in headers.items()})

    assert who(**{"x-api-key": "k1"}) == Principal("ana", "acme", ("editor",))
    assert who(**{"x-api-key": stored}) == Principal("ivy", "initech", ("editor",))
    assert who(authorization=f"Bearer {token}").credential == "token"
    refusals = {
        "missing credential": {},
        "unknown API key": {"x-api-key": "k2"},
        "malformed token; expected 'pdm1.": {"authorization": "Bearer eyJ.x.y"},
        "missing credential: send": {"authorization": f"Basic {token}"},
    }
    for problem, headers in refusals.items():
        with pytest.raises(CredentialError, match=re.escape(problem)):
            who(**headers)
    assert sign_in.warnings() == [
        "PODIUM_API_KEYS holds 1 key in plain text: fine for development; elsewhere use "
        "`podium keys create` or sha256: entries"
    ]

    jwt_only = sign_in_from_env(
        {"PODIUM_JWT_ISSUER": "https://idp.example/", "PODIUM_JWT_AUDIENCE": "podium"},
        lambda: ApiKeys(db),
    )
    with pytest.raises(CredentialError, match=r"pdm1 tokens are not enabled \(PODIUM_TOKEN"):
        jwt_only.authenticate({b"authorization": f"Bearer {token}".encode()})
    with pytest.raises(CredentialError, match="malformed token: Not enough segments"):
        jwt_only.authenticate({b"authorization": b"Bearer abc"})
    nothing = sign_in_from_env({}, lambda: ApiKeys(db))
    with pytest.raises(CredentialError, match="bearer tokens are not enabled: set PODIUM_JWT"):
        nothing.authenticate({b"authorization": b"Bearer abc"})
    assert "only API keys made with `podium keys create` sign in" in nothing.warnings()[0]
    assert nothing.authenticate({b"x-api-key": stored.encode()}).identity == "ivy"
    db.close()


def test_webhook_signatures() -> None:
    secrets = parse_webhook_secrets("acme=sa; globex=sg")
    body = b'{"goal": "x"}'
    ts = str(int(NOW))
    headers = {
        "x-podium-tenant": "acme",
        "x-podium-timestamp": ts,
        "x-podium-signature": sign_webhook("sa", ts, body),
    }
    assert verify_webhook(secrets, headers, body, now=NOW + 299) == "acme"
    refusals = [
        ("unsigned", {k: v for k, v in headers.items() if k != "x-podium-signature"}, body),
        ("bad signature", {**headers, "x-podium-tenant": "globex"}, body),  # other secret
        ("bad signature", {**headers, "x-podium-tenant": "initech"}, body),  # no secret
        ("bad signature", headers, body + b" "),
        ("window", {**headers, "x-podium-timestamp": str(int(NOW) - 301)}, body),
        ("whole seconds", {**headers, "x-podium-timestamp": "12.5"}, body),
    ]
    for reason, sent, sent_body in refusals:
        with pytest.raises(WebhookRefused, match=reason):
            verify_webhook(secrets, sent, sent_body, now=NOW)
    with pytest.raises(ConfigurationError, match="entry 1 must look like 'tenant=secret'"):
        parse_webhook_secrets("acme")


def test_a_webhook_signature_that_is_not_ascii_is_refused() -> None:
    secrets = parse_webhook_secrets("acme=sa")
    body = b'{"goal": "x"}'
    ts = str(int(NOW))
    for signature in ("sha256=\u00e9", "sha256=" + "\u00ff" * 64):
        headers = {
            "x-podium-tenant": "acme",
            "x-podium-timestamp": ts,
            "x-podium-signature": signature,
        }
        with pytest.raises(WebhookRefused, match="bad signature"):
            verify_webhook(secrets, headers, body, now=NOW)


def test_replay_guard_accepts_a_signature_once_per_window() -> None:
    clock = [NOW]
    db = SqliteDatabase(":memory:")
    guard = ReplayGuard(db, window=300, clock=lambda: clock[0])
    assert guard.first_use("acme", "sha256=ab")
    assert not guard.first_use("acme", "sha256=ab")
    assert guard.first_use("globex", "sha256=ab")  # per tenant
    clock[0] += 601  # forgotten after two windows (the timestamp check refuses it by then)
    assert guard.first_use("acme", "sha256=ab")
    # Another process on the same database sees the same signatures.
    assert not ReplayGuard(db, window=300, clock=lambda: clock[0]).first_use("acme", "sha256=ab")
