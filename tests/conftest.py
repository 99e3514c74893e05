"""Shared fixtures: database URLs for every back end, and scripted models checked at teardown.

PostgreSQL tests use PODIUM_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test)
and run in a fresh database created for the session. With CI set they fail when the server is
missing; elsewhere they skip and say how to enable them.

Tests that stop and restart PostgreSQL use `own_cluster`: a throwaway cluster in a temporary
directory on a free port, run as the `postgres` OS user (initdb refuses root) when the tests
run as root. The shared server is never restarted.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

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


@dataclass
class Cluster:
    """A PostgreSQL cluster the tests control: `url`, `stop()`, `start()`, `restart()`."""

    bindir: str
    datadir: str
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def command(self, *args: str) -> list[str]:
        """The `pg_ctl` command line (run as the `postgres` OS user when root) for `args`."""
        return _as_postgres_command(
            [f"{self.bindir}/pg_ctl", "-D", self.datadir, "-w", "-t", "30", *args]
        )

    def ctl(self, *args: str) -> None:
        subprocess.run(self.command(*args), check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self.ctl(
            "-o",
            f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1",
            "-l",
            f"{self.datadir}/log",
            "start",
        )

    def stop(self) -> None:
        self.ctl("-m", "fast", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()


def _as_postgres_command(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _as_postgres(cmd: list[str]) -> None:
    subprocess.run(_as_postgres_command(cmd), check=True, capture_output=True, timeout=60)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def own_cluster() -> Iterator[Cluster]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        reason = "no PostgreSQL server binaries (initdb) to make a throwaway cluster"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so the database fault tests must run)")
        pytest.skip(reason)
    bindir = os.path.dirname(found[-1])
    root = tempfile.mkdtemp(prefix="podium-pg-")
    os.chmod(root, 0o777)
    datadir = os.path.join(root, "data")
    _as_postgres([f"{bindir}/initdb", "-D", datadir, "-A", "trust", "-U", "postgres", "-N"])
    cluster = Cluster(bindir, datadir, _free_port())
    cluster.start()
    try:
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)
