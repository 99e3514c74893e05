"""Shared fixtures: database URLs for every back end, and scripted models checked at teardown.

PostgreSQL tests use PODIUM_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test)
and run in a fresh database created for the session. With CI set they fail when the server is
missing; elsewhere they skip and say how to enable them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from podium.testing import ScriptedChatModel

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def _admin_url() -> str:
    return os.environ.get("PODIUM_TEST_POSTGRES_URL") or DEFAULT_PG


def _fresh_database() -> Iterator[str]:
    """Create a PostgreSQL database, yield its URL, drop it."""
    import psycopg

    admin = _admin_url()
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        reason = f"PostgreSQL not reachable at {admin}: {' '.join(str(exc).split())}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so PostgreSQL tests must run)")
        pytest.skip(f"{reason}; start PostgreSQL or set PODIUM_TEST_POSTGRES_URL to enable")
    name = f"podium_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A URL of a fresh PostgreSQL database, shared by the session, dropped after it."""
    yield from _fresh_database()


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A URL of a PostgreSQL database of this test's own (for tests that need it empty)."""
    yield from _fresh_database()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The same test on every back end."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'podium.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=["sqlite", "postgres"])
def durable_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Back ends that survive a process restart."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'podium.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def scripted() -> Iterator:
    """Make scripted models; every one must have used its whole script by teardown."""
    made: list[ScriptedChatModel] = []

    def make(*responses, name: str = "scripted", latency: float = 0.0) -> ScriptedChatModel:
        model = ScriptedChatModel(responses=list(responses), name=name, latency=latency)
        made.append(model)
        return model

    yield make
    for model in made:
        model.assert_consumed()


@pytest.fixture
def tenant() -> str:
    """A tenant id no other test uses, so shared databases do not mix records."""
    return f"tenant-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path, monkeypatch) -> None:
    """Every test runs in its own directory, so files a run writes (reports/, .podium/)
    never land in the source tree."""
    monkeypatch.chdir(tmp_path)
