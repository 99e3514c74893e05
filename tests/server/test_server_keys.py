"""API keys kept hashed in podium's database, and `podium keys create|list|revoke`.

The store runs on every back end (in-memory SQLite, a SQLite file, PostgreSQL); the
cross-process revocation runs on the durable ones, through two separate connections.
"""

from __future__ import annotations

import hashlib
import uuid

import pytest

from podium.cli import main
from podium.errors import ApiKeyNotFound, ConfigurationError
from podium.server._credentials import CredentialError, Principal
from podium.server.keys import ApiKeys, is_stored_key
from podium.storage.database import open_database
from podium.storage.urls import parse_url


def tenant() -> str:
    """A tenant of this test only (the PostgreSQL database lives for the session)."""
    return f"t{uuid.uuid4().hex[:8]}"


def test_a_key_signs_in_until_revoked(db_url: str) -> None:
    db = open_database(parse_url(db_url))
    try:
        keys = ApiKeys(db, clock=lambda: 1_800_000_000.0)
        t = tenant()
        key, info = keys.create(t, "ana", ["editor", "editor", "admin"], label=" ci  deploy ")
        assert is_stored_key(key) and key.startswith(f"pdk_{info.key_id}_")
        assert (info.roles, info.label, info.active) == (("editor", "admin"), "ci deploy", True)
        who = keys.authenticate(key)
        assert who == Principal("ana", t, ("editor", "admin"))
        assert who.credential == "api_key"
        assert keys.authenticate(f"  {key} ").identity == "ana"

        # Only the digest is stored.
        (row,) = db.query("SELECT * FROM podium_api_keys WHERE key_id = ?", (info.key_id,))
        assert row["digest"] == hashlib.sha256(key.encode()).hexdigest()
        assert key not in str(row)

        wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
        for bad, problem in [
            (wrong, "unknown API key"),
            (f"pdk_{'0' * 12}_{key[-43:]}", "unknown API key"),
            ("pdk_short", "malformed API key"),
        ]:
            with pytest.raises(CredentialError, match=problem):
                keys.authenticate(bad)

        other, _ = keys.create(t, "bob")
        assert {k.identity for k in keys.list(t)} == {"bob", "ana"}
        assert keys.list(tenant()) == []
        revoked = keys.revoke(info.key_id, tenant_id=t)
        assert revoked.revoked_at == 1_800_000_000.0 and not revoked.active
        with pytest.raises(CredentialError, match=f"API key {info.key_id} was revoked"):
            keys.authenticate(key)
        assert keys.authenticate(other).identity == "bob"  # other keys keep working
        assert keys.revoke(key).revoked_at == revoked.revoked_at  # by whole key; idempotent
        assert {k.key_id: k.active for k in keys.list(t)}[info.key_id] is False
        with pytest.raises(ApiKeyNotFound, match="no API key 'feedfeedfeed'"):
            keys.revoke("feedfeedfeed")
        with pytest.raises(ApiKeyNotFound, match="of tenant 'globex'"):
            keys.revoke(info.key_id, tenant_id="globex")
        with pytest.raises(ConfigurationError, match="bad tenant 'a b'"):
            keys.create("a b", "ana")
    finally:
        db.close()


def test_a_revocation_reaches_another_connection_at_once(durable_url: str) -> None:
    first, second = open_database(parse_url(durable_url)), open_database(parse_url(durable_url))
    try:
        t = tenant()
        key, info = ApiKeys(first).create(t, "ana", ["editor"])
        reader = ApiKeys(second)
        assert reader.authenticate(key).tenant_id == t  # a read before: nothing is cached
        ApiKeys(first).revoke(info.key_id)
        with pytest.raises(CredentialError, match="was revoked"):
            reader.authenticate(key)
    finally:
        first.close()
        second.close()


def test_the_keys_commands(tmp_path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 'server.db'}"
    assert main(["keys", "create", "--db", db, "--tenant", "acme", "--user", "ana",
                 "--role", "editor", "--label", "ci"]) == 0  # fmt: skip
    out, err = capsys.readouterr()
    key = out.strip()
    assert is_stored_key(key) and len(out.splitlines()) == 1  # the key alone on stdout
    key_id = key.split("_")[1]
    assert f"created API key {key_id} for 'ana' of tenant 'acme' (roles: editor)" in err
    assert "shown once" in err

    assert main(["keys", "list", "--db", db]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing and "active" in listing and "ci" in listing
    assert key not in listing and key.split("_", 2)[2] not in listing  # never the key

    assert main(["keys", "revoke", key_id, "--db", db, "--tenant", "globex"]) == 2
    assert f"no API key '{key_id}' of tenant 'globex'" in capsys.readouterr().err
    assert main(["keys", "revoke", key_id, "--db", db]) == 0
    assert f"revoked API key {key_id} of 'ana' (tenant 'acme')" in capsys.readouterr().out
    assert main(["keys", "list", "--db", db, "--active"]) == 0
    assert "no API keys" in capsys.readouterr().out
    assert main(["keys", "list", "--db", db, "--tenant", "acme"]) == 0
    assert "revoked" in capsys.readouterr().out

    database = open_database(parse_url(db))
    try:
        with pytest.raises(CredentialError, match="was revoked"):
            ApiKeys(database).authenticate(key)
    finally:
        database.close()
    assert main(["keys", "create", "--db", db, "--tenant", "acme", "--user", "a b"]) == 2
    assert "bad user 'a b'" in capsys.readouterr().err
