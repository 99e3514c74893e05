"""Database URLs: parse_url classifies, mask hides passwords, errors say what is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.errors import DatabaseError
from podium.storage.urls import DEFAULT_URL, DatabaseURL, mask, parse_url

ACCEPTED_FORMS = ["memory://", "sqlite:///relative/path.db", "sqlite:////absolute/path.db"]


@pytest.mark.parametrize(
    ("url", "kind", "path"),
    [
        ("memory://", "memory", None),
        ("memory:", "memory", None),
        ("  memory://\n", "memory", None),
        ("sqlite:///podium.db", "sqlite", Path("podium.db")),
        ("sqlite:///.podium/podium.db", "sqlite", Path(".podium/podium.db")),
        ("sqlite:///data/runs/podium.db", "sqlite", Path("data/runs/podium.db")),
        ("sqlite:////tmp/podium.db", "sqlite", Path("/tmp/podium.db")),
        ("sqlite:////var/lib/podium/p.db", "sqlite", Path("/var/lib/podium/p.db")),
        ("postgresql://user:pw@db.example:5432/podium", "postgres", None),
        ("postgresql://db.example/podium", "postgres", None),
        ("postgres://user:pw@localhost/podium", "postgres", None),
        ("postgresql+psycopg://user@127.0.0.1:5433/podium", "postgres", None),
        ("postgresql:///podium?host=/var/run/postgresql", "postgres", None),
    ],
    ids=[
        "memory",
        "memory-short",
        "memory-padded",
        "sqlite-relative",
        "sqlite-relative-dir",
        "sqlite-relative-nested",
        "sqlite-absolute",
        "sqlite-absolute-nested",
        "postgresql",
        "postgresql-no-user",
        "postgres-alias",
        "psycopg-driver",
        "postgresql-socket",
    ],
)
def test_parse_url(url, kind, path):
    parsed = parse_url(url)
    assert isinstance(parsed, DatabaseURL)
    assert parsed.kind == kind
    assert parsed.path == path
    assert parsed.raw == url.strip()


def test_sqlite_paths_keep_relative_and_absolute_apart():
    assert not parse_url("sqlite:///rel.db").path.is_absolute()
    assert parse_url("sqlite:////abs.db").path.is_absolute()


def test_default_url_is_a_relative_sqlite_file():
    parsed = parse_url(DEFAULT_URL)
    assert (parsed.kind, parsed.path) == ("sqlite", Path(".podium/podium.db"))


@pytest.mark.parametrize(
    ("url", "conninfo"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:pw@h:5432/db"),
        ("postgres://u:pw@h:5432/db", "postgresql://u:pw@h:5432/db"),
        ("postgresql+psycopg://u@h/db", "postgresql://u@h/db"),
    ],
    ids=["postgresql", "postgres-alias", "psycopg-driver"],
)
def test_conninfo_normalises_aliases(url, conninfo):
    assert parse_url(url).conninfo == conninfo


@pytest.mark.parametrize(
    ("url", "fragments"),
    [
        ("", ["empty database URL ''"]),
        ("   ", ["empty database URL '   '"]),
        (None, ["empty database URL None"]),
        ("sqlite://", ["bad SQLite URL 'sqlite://'", "no file path"]),
        ("sqlite:///", ["bad SQLite URL 'sqlite:///'", "no file path"]),
        ("sqlite:////", ["'sqlite:////'", "no file path"]),
        ("sqlite://podium.db", ["bad SQLite URL 'sqlite://podium.db'", "no file path"]),
        ("postgresql:///podium", ["bad PostgreSQL URL 'postgresql:///podium'", "no host"]),
        (
            "postgres://user:secret@/podium",
            ["bad PostgreSQL URL 'postgres://user:***@/podium'", "no host"],
        ),
        (
            "mysql://root:secret@db.example/podium",
            ["unsupported database URL 'mysql://root:***@db.example/podium'", "scheme 'mysql'"],
        ),
        ("redis://localhost:6379/0", ["unsupported database URL", "scheme 'redis'"]),
        ("podium.db", ["unsupported database URL 'podium.db'"]),
        (
            "host=db.example password=secret dbname=podium",
            ["unsupported database URL"],
        ),
    ],
    ids=[
        "empty",
        "blank",
        "none",
        "sqlite-no-path",
        "sqlite-root-only",
        "sqlite-absolute-no-path",
        "sqlite-two-slashes",
        "postgres-no-host",
        "postgres-no-host-with-password",
        "mysql",
        "redis",
        "bare-path",
        "libpq-keyword-string",
    ],
)
def test_bad_urls_name_the_masked_url_and_the_accepted_forms(url, fragments):
    with pytest.raises(DatabaseError) as info:
        parse_url(url)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    for form in ACCEPTED_FORMS:
        assert form in message
    assert "postgresql://user:password@host:5432/dbname" in message
    assert "secret" not in message


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://user:secret@host:5432/db", "postgresql://user:***@host:5432/db"),
        ("postgres://u:secret@h/db?sslmode=require", "postgres://u:***@h/db?sslmode=require"),
        ("postgresql://:secret@h/db", "postgresql://:***@h/db"),
        ("postgresql://pw:pw@h/db", "postgresql://pw:***@h/db"),
        ("postgresql://u:p%40ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:pa:ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://user@host/db", "postgresql://user@host/db"),
        ("postgresql://host/db", "postgresql://host/db"),
        ("sqlite:////tmp/podium.db", "sqlite:////tmp/podium.db"),
        ("memory://", "memory://"),
        ("http://[::1", "<unparseable URL>"),
    ],
    ids=[
        "password",
        "alias-with-query",
        "password-without-user",
        "password-equals-user",
        "encoded-password",
        "password-with-colon",
        "user-only",
        "no-credentials",
        "sqlite",
        "memory",
        "unparseable",
    ],
)
def test_mask(url, masked):
    assert mask(url) == masked


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://h/db?user=u&password=secret",
        "postgresql://u:secret@h/db?password=secret",
    ],
    ids=["query-password", "both"],
)
def test_mask_hides_passwords_given_as_query_parameters(url):
    # libpq accepts the password as a URI query parameter too.
    assert "secret" not in mask(url)


def test_masked_property_and_raw_url():
    parsed = parse_url("postgresql://app:hunter2@db/podium")
    assert parsed.masked == "postgresql://app:***@db/podium"
    assert "hunter2" in parsed.raw
