"""API keys kept hashed in podium's database, and `podium keys create|list|revoke`.

The store runs on every back end (in-memory SQLite, a SQLite file, PostgreSQL); the
cross-process revocation runs on the durable ones, through two separate connections.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from podium.cli import main
from podium.errors import ApiKeyExists, ApiKeyNotFound, ConfigurationError
from podium.server._credentials import CredentialError, Principal
from podium.server.keys import ApiKeys, is_stored_key
from podium.storage.database import Database, open_database
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


def test_a_create_run_again_is_refused_with_the_key_to_revoke(durable_url: str, capsys) -> None:
    """A retried `create` (lost answer, crash after the insert) issues no second secret."""
    t = tenant()
    create = ["keys", "create", "--db", durable_url, "--tenant", t, "--user", "ci",
              "--role", "editor", "--label", "nightly brief"]  # fmt: skip
    assert main(create) == 0
    key_id = capsys.readouterr().out.strip().split("_")[1]

    assert main(create) == 2
    out, err = capsys.readouterr()
    assert out == ""  # `KEY=$(podium keys create ...)` gets nothing, and the script stops
    assert err == (
        f"podium: error: user 'ci' of tenant '{t}' already has an active API key {key_id} "
        "labelled 'nightly brief'; no second key was made. Its secret was shown once, when it "
        f"was created: if you did not keep it, revoke it (`podium keys revoke {key_id}`) and "
        "create it again; for a second key at once (a rotation), give the new one another "
        "--label, then revoke the old one\n"
    )
    # Other roles are no way around it: one active key per user and label.
    assert main([*create, "--role", "admin"]) == 2
    assert f"active API key {key_id} " in capsys.readouterr().err

    # A rotation: a second label, then the old key revoked; then the first label is free.
    assert main([*create[:-1], "nightly brief 2"]) == 0
    rotated = capsys.readouterr().out.strip().split("_")[1]
    assert main(["keys", "revoke", key_id, "--db", durable_url]) == 0
    assert main(create) == 0
    again = capsys.readouterr().out.strip().split("_")[1]
    db = open_database(parse_url(durable_url))
    try:
        active = {(k.key_id, k.label) for k in ApiKeys(db).list(t) if k.active}
    finally:
        db.close()
    assert active == {(rotated, "nightly brief 2"), (again, "nightly brief")}


def test_concurrent_identical_creates_make_one_key(durable_url: str) -> None:
    t = tenant()
    dbs = [open_database(parse_url(durable_url)) for _ in range(4)]
    try:
        start = threading.Barrier(len(dbs))

        def create(db: Database) -> str:
            keys = ApiKeys(db)
            start.wait()
            try:
                return keys.create(t, "ci", ["editor"], label="deploy")[1].key_id
            except ApiKeyExists as exc:
                return f"refused {exc.key_id}"

        with ThreadPoolExecutor(len(dbs)) as pool:
            outcomes = list(pool.map(create, dbs))
        (made,) = [o for o in outcomes if not o.startswith("refused")]
        assert sorted(outcomes) == sorted([made] + [f"refused {made}"] * (len(dbs) - 1))
        assert [k.key_id for k in ApiKeys(dbs[0]).list(t)] == [made]
    finally:
        for db in dbs:
            db.close()


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
