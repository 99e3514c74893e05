"""A LangGraph dev server running podium's langgraph.json, started once per session.

The server runs `langgraph dev` in a temporary directory with a copy of the repository's
`langgraph.json` (same graphs, auth and http app; `env` dropped so a developer's `.env`
does not leak in; loopback completion webhooks allowed so a test can receive one). So
files the server writes (its own state, `reports/`, podium's database) stay out of the
source tree. Its Langfuse traces go to a local stand-in collector. A stand-in identity
provider (discovery document and JWKS on 127.0.0.1) starts first; the server learns its
issuer URL from the environment and verifies the JWTs the tests mint. `second_server`
starts another `langgraph dev` on the same podium database, for what several server
processes must agree on. Without langgraph-cli[inmem] the tests skip, or fail when CI is set.
"""

from __future__ import annotations

import contextlib
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

from .idp import AUDIENCE, IdentityProvider, SigningKey

REPO = Path(__file__).resolve().parents[2]
API_KEYS = {
    # key -> (tenant, user, roles)
    "acme-editor-key": ("acme", "ana", ("editor",)),
    "acme-viewer-key": ("acme", "bob", ()),
    "globex-editor-key": ("globex", "gus", ("editor",)),
    # Only the run-limit tests use initech, so no other test's runs count against it.
    "initech-editor-key": ("initech", "ivy", ("editor",)),
    # README's example keys (its Deploy section), so its server blocks run as written.
    "acme-ana-key": ("acme", "ana", ("editor",)),
    "acme-bob-key": ("acme", "bob", ()),
    "globex-key": ("globex", "gus", ("editor",)),
}
TOKEN_SECRET = "test-token-secret"
WEBHOOK_SECRETS = {"acme": "acme-webhook-secret", "globex": "globex-webhook-secret"}
STARTUP_TIMEOUT = 60.0
#: Least seconds between two JWKS fetches caused by unknown key ids, on the test servers.
JWKS_COOLDOWN = 2.0


@dataclass(frozen=True)
class Server:
    """A running server: its URL, where it logs, and where its traces go."""

    url: str
    log: Path
    workdir: Path
    langfuse: Collector
    database_url: str

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


#: A served workflow without policies (so without gates), for clients that cannot resume
#: a gate themselves, e.g. a `RemoteGraph` node of a parent graph.
OPEN_GRAPH = """
from podium.graphs.research_brief import build_research_brief
from podium.server._runtime import server_runtime

open_brief = server_runtime().compile(
    build_research_brief(policies=None), checkpointer=None, name="open_brief"
)
"""


def _config(workdir: Path) -> Path:
    config = json.loads((REPO / "langgraph.json").read_text())
    config.pop("env", None)
    (workdir / "open_graph.py").write_text(OPEN_GRAPH)
    config["graphs"]["open_brief"] = {"path": "./open_graph.py:open_brief"}
    config["webhooks"] = {"url": {"disable_loopback": False, "require_https": False}}
    # A slow workflow whose policy caps each tenant at two runs in flight (capped.py).
    config["graphs"]["capped_brief"] = (
        f"{Path(__file__).resolve().parent / 'capped.py'}:capped_brief"
    )
    path = workdir / "langgraph.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def _env(
    database_url: str, langfuse: Collector, idp: IdentityProvider, **extra: str
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PODIUM_", "LANGGRAPH_", "LANGSMITH_", "LANGCHAIN_", "LANGFUSE_"))
    }
    env.update(
        PODIUM_DATABASE_URL=database_url,
        PODIUM_API_KEYS=";".join(
            f"{key}={tenant}:{user}:{'+'.join(roles)}"
            for key, (tenant, user, roles) in API_KEYS.items()
        ),
        PODIUM_TOKEN_SECRET=TOKEN_SECRET,
        # The identity provider's keys come through its discovery document (no JWKS URL).
        PODIUM_JWT_ISSUER=idp.issuer,
        PODIUM_JWT_AUDIENCE=AUDIENCE,
        PODIUM_JWT_ALGORITHMS="RS256,ES256",
        PODIUM_JWT_LEEWAY="5",
        PODIUM_JWT_JWKS_COOLDOWN=str(JWKS_COOLDOWN),
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
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def idp() -> Iterator[IdentityProvider]:
    """The identity provider the servers trust: an RSA and an EC signing key."""
    provider = IdentityProvider(SigningKey.rsa("rsa-1"), SigningKey.ec("ec-1"))
    try:
        yield provider
    finally:
        provider.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, idp: IdentityProvider) -> Iterator[Server]:
    """`langgraph dev` on a free port, torn down (whole process group) after the session."""
    workdir = tmp_path_factory.mktemp("langgraph-server")
    with _running(workdir, f"sqlite:///{workdir / 'podium.db'}", idp) as running:
        yield running


@pytest.fixture(scope="session")
def second_server(
    tmp_path_factory: pytest.TempPathFactory, server: Server, idp: IdentityProvider
) -> Iterator[Server]:
    """Another `langgraph dev` process on the first one's podium database (SQLite, WAL)."""
    workdir = tmp_path_factory.mktemp("langgraph-server-2")
    with _running(workdir, server.database_url, idp) as running:
        yield running


@contextlib.contextmanager
def _running(
    workdir: Path, database_url: str, idp: IdentityProvider, **env: str
) -> Iterator[Server]:
    cli = _langgraph_cli()
    if cli is None:
        reason = "langgraph-cli[inmem] is not installed (pip install 'langgraph-cli[inmem]')"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so the server tests must run")
        pytest.skip(reason)
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
            env=_env(database_url, langfuse, idp, **env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    running = Server(f"http://127.0.0.1:{port}", log, workdir, langfuse, database_url)
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
