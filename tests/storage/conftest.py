"""A throwaway PostgreSQL cluster of the storage tests' own, which they may stop and restart.

The shared server is never restarted; this one lives in a temporary directory on a free
port, run as the `postgres` OS user (initdb refuses root) when the tests run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass
class Cluster:
    """A PostgreSQL cluster the tests control: `url`, `stop()`, `start()`, `restart()`."""

    bindir: str
    datadir: str
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        _as_postgres([f"{self.bindir}/pg_ctl", "-D", self.datadir, "-w", "-t", "30", *args])

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


def _as_postgres(cmd: list[str]) -> None:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


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
