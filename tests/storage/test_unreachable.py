"""PostgreSQL unreachable: the CLI answers within seconds with one clear message."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket is


@pytest.mark.parametrize(
    "args", [["run", "research_brief", "a goal"], ["resume", "some-thread"], ["threads"]]
)
def test_the_cli_says_the_database_is_unreachable_at_once(args, tmp_path):
    port = _closed_port()
    url = f"postgresql://podium:s3cret@127.0.0.1:{port}/podium"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "podium.cli", *args],
        env={**os.environ, "PODIUM_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert time.monotonic() - started < 20
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "s3cret" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"podium: error: cannot connect to postgresql://podium:***@127.0.0.1:{port}/podium"
    )
    assert "Check that PostgreSQL is running" in lines[0]
