"""A LangGraph dev server running podium's langgraph.json, started once per session.

The server runs `langgraph dev` in a temporary directory with a copy of the repository's
`langgraph.json` (same graphs, auth and http app; `env` dropped so a developer's `.env`
does not leak in; loopback completion webhooks allowed so a test can receive one). So
files the server writes (its own state, `reports/`, podium's database) stay out of the
source tree. Its Langfuse traces go to a local stand-in collector. Without
langgraph-cli[inmem] the tests skip, or fail when CI is set.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench.cases.tracing import Collector  # the stand-in Langfuse endpoint

REPO = Path(__file__).resolve().parents[2]
API_KEYS = {
    # key -> (tenant, user, roles)
    "acme-editor-key": ("acme", "ana", ("editor",)),
    "acme-viewer-key": ("acme", "bob", ()),
    "globex-editor-key": ("globex", "gus", ("editor",)),
}
TOKEN_SECRET = "test-token-secret"
WEBHOOK_SECRETS = {"acme": "acme-webhook-secret", "globex": "globex-webhook-secret"}
STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class Server:
    """A running server: its URL, where it logs, and where its traces go."""

    url: str
    log: Path
    workdir: Path
    langfuse: Collector

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _langgraph_cli() -> Path | None:
    exe = Path(sys.executable).with_name("langgraph")
    try:
        import langgraph_api  # noqa: F401
        import langgraph_runtime_inmem  # noqa: F401
    except ImportError:
        return None
    return exe if exe.exists() else None


def _config(workdir: Path) -> Path:
    config = json.loads((REPO / "langgraph.json").read_text())
    config.pop("env", None)
    config["webhooks"] = {"url": {"disable_loopback": False, "require_https": False}}
    path = workdir / "langgraph.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def _env(workdir: Path, langfuse: Collector) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PODIUM_", "LANGGRAPH_", "LANGSMITH_", "LANGCHAIN_", "LANGFUSE_"))
    }
    env.update(
        PODIUM_DATABASE_URL=f"sqlite:///{workdir / 'podium.db'}",
        PODIUM_API_KEYS=";".join(
            f"{key}={tenant}:{user}:{'+'.join(roles)}"
            for key, (tenant, user, roles) in API_KEYS.items()
        ),
        PODIUM_TOKEN_SECRET=TOKEN_SECRET,
        PODIUM_WEBHOOK_SECRETS=";".join(f"{t}={s}" for t, s in WEBHOOK_SECRETS.items()),
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGSMITH_TRACING="false",
        # The cron scheduler polls every second, so a test cron fires quickly.
        CRON_SCHEDULER_SLEEP_TIME="1",
        LANGFUSE_PUBLIC_KEY="pk-lf-server",
        LANGFUSE_SECRET_KEY="sk-lf-server",
        LANGFUSE_HOST=langfuse.url,
        LANGFUSE_FLUSH_INTERVAL="0.5",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`langgraph dev` on a free port, torn down (whole process group) after the session."""
    cli = _langgraph_cli()
    if cli is None:
        reason = "langgraph-cli[inmem] is not installed (pip install 'langgraph-cli[inmem]')"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so the server tests must run")
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("langgraph-server")
    port = _free_port()
    log = workdir / "server.log"
    command = [
        str(cli),
        "dev",
        "--no-browser",
        "--no-reload",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--config",
        str(_config(workdir)),
    ]
    langfuse = Collector()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=workdir,
            env=_env(workdir, langfuse),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    running = Server(f"http://127.0.0.1:{port}", log, workdir, langfuse)
    try:
        _wait_healthy(proc, running)
        yield running
    finally:
        _stop(proc)
        langfuse.close()


def _wait_healthy(proc: subprocess.Popen, server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"langgraph dev exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.url}/ok", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    pytest.fail(f"langgraph dev not healthy after {STARTUP_TIMEOUT:.0f} s:\n{server.log_tail()}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
